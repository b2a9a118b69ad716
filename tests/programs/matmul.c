/*
 * matmul: naive i-j-k multiply of two N x N matrices of doubles.
 *
 *   matmul A B [THREADS]
 *
 * A and B hold row-major doubles (phoenix_gen dmatrix); N comes from the
 * size of A, and both are read into malloc'd memory. C = A * B, with
 * C[i][j] the sum over k of A[i][k] * B[k][j]: the walk down a column of B
 * strides a whole row (N doubles) per step, so one column walk touches a
 * page of B per row: N pages. The threads share each row of C (thread t
 * takes the columns j = t, t + THREADS, ...) and wait for each other at the
 * end of every row, so their column walks go down neighbouring columns of
 * B: they need those N pages together, not N pages each (rows of C split
 * between threads would each walk their own columns). Prints the trace, a
 * few entries and a digest of every entry's bits; each entry is summed in
 * the same order whatever the thread count.
 */
#define _GNU_SOURCE /* pthread barriers */
#include <inttypes.h>

#include "phoenix.h"

static pthread_barrier_t row_done;

struct columns {
  const double *a, *b;
  double* c;
  size_t n;
  unsigned first, step;
};

static void* multiply(void* arg) {
  struct columns* r = arg;
  size_t n = r->n;
  for (size_t i = 0; i < n; i++) {
    for (size_t j = r->first; j < n; j += r->step) {
      double sum = 0;
      for (size_t k = 0; k < n; k++) sum += r->a[i * n + k] * r->b[k * n + j];
      r->c[i * n + j] = sum;
    }
    pthread_barrier_wait(&row_done);
  }
  return NULL;
}

int main(int argc, char** argv) {
  phx_prog = "matmul";
  if (argc < 3 || argc > 4) {
    fprintf(stderr, "usage: matmul A B [THREADS]\n");
    return 2;
  }
  unsigned threads = phx_threads(argc > 3 ? argv[3] : NULL);
  size_t sa, sb;
  double* a = phx_read_file(argv[1], &sa);
  double* b = phx_read_file(argv[2], &sb);
  size_t n = 1;
  while ((n + 1) * (n + 1) * sizeof(double) <= sa) n++;
  if (n * n * sizeof(double) != sa || sb != sa) phx_die("A and B must both be N x N doubles");
  double* c = phx_calloc(n * n, sizeof *c);

  struct columns* r = phx_calloc(threads, sizeof *r);
  for (unsigned t = 0; t < threads; t++) r[t] = (struct columns){a, b, c, n, t, threads};
  if (pthread_barrier_init(&row_done, NULL, threads) != 0) phx_die("pthread_barrier_init failed");
  phx_run(threads, multiply, r, sizeof *r);
  pthread_barrier_destroy(&row_done);

  double trace = 0;
  uint64_t digest = PHX_FNV_INIT;
  for (size_t i = 0; i < n; i++) trace += c[i * n + i];
  digest = phx_fnv(digest, c, n * n * sizeof *c);
  printf("N = %zu\n", n);
  printf("trace: %.4f\n", trace);
  for (size_t i = 0; i < n; i += n / 4 ? n / 4 : 1)
    printf("C[%zu][%zu] = %.4f, C[%zu][0] = %.4f\n", i, n - 1 - i, c[i * n + n - 1 - i], i,
           c[i * n]);
  printf("product digest: %016" PRIx64 "\n", digest);
  free(r), free(a), free(b), free(c);
  return 0;
}
