/*
 * pca: the mean of every row and the covariance of every pair of rows of a
 * row-major int32 matrix (each row a variable, each column an observation).
 *
 *   pca MATRIX ROWS COLS [THREADS]
 *
 * The matrix (phoenix_gen imatrix) is read into malloc'd memory. Threads
 * first compute the means of interleaved rows, then the upper triangle of
 * the covariance matrix, row i against every row j >= i: the second walk
 * sweeps the rest of the matrix once per row. Each entry is computed by one
 * thread in a fixed order, so the output does not depend on the thread
 * count. Prints a few means and covariances, the trace and digests.
 */
#include <inttypes.h>

#include "phoenix.h"

struct job {
  const int32_t* m;
  double* mean;
  double* cov; /* rows x rows, upper triangle */
  long rows, cols;
  unsigned first, step;
};

static void* means(void* arg) {
  struct job* j = arg;
  for (long i = j->first; i < j->rows; i += j->step) {
    int64_t s = 0;
    for (long k = 0; k < j->cols; k++) s += j->m[i * j->cols + k];
    j->mean[i] = (double)s / (double)j->cols;
  }
  return NULL;
}

static void* covariances(void* arg) {
  struct job* j = arg;
  for (long i = j->first; i < j->rows; i += j->step) {
    const int32_t* x = j->m + i * j->cols;
    for (long l = i; l < j->rows; l++) {
      const int32_t* y = j->m + l * j->cols;
      double s = 0;
      for (long k = 0; k < j->cols; k++)
        s += ((double)x[k] - j->mean[i]) * ((double)y[k] - j->mean[l]);
      j->cov[i * j->rows + l] = s / (double)(j->cols - 1);
    }
  }
  return NULL;
}

int main(int argc, char** argv) {
  phx_prog = "pca";
  if (argc < 4 || argc > 5) {
    fprintf(stderr, "usage: pca MATRIX ROWS COLS [THREADS]\n");
    return 2;
  }
  long rows = strtol(argv[2], NULL, 10), cols = strtol(argv[3], NULL, 10);
  unsigned threads = phx_threads(argc > 4 ? argv[4] : NULL);
  size_t size;
  int32_t* m = phx_read_file(argv[1], &size);
  if (rows < 1 || cols < 2 || size != (size_t)rows * (size_t)cols * sizeof(int32_t))
    phx_die("the file does not hold ROWS x COLS int32 values");
  double* mean = phx_calloc((size_t)rows, sizeof *mean);
  double* cov = phx_calloc((size_t)(rows * rows), sizeof *cov);
  struct job* j = phx_calloc(threads, sizeof *j);
  for (unsigned t = 0; t < threads; t++) j[t] = (struct job){m, mean, cov, rows, cols, t, threads};
  phx_run(threads, means, j, sizeof *j);
  phx_run(threads, covariances, j, sizeof *j);

  uint64_t mean_digest = phx_fnv(PHX_FNV_INIT, mean, (size_t)rows * sizeof *mean);
  uint64_t cov_digest = PHX_FNV_INIT;
  double trace = 0;
  for (long i = 0; i < rows; i++) {
    trace += cov[i * rows + i];
    cov_digest = phx_fnv(cov_digest, cov + i * rows + i, (size_t)(rows - i) * sizeof *cov);
  }
  printf("%ld x %ld\n", rows, cols);
  for (long i = 0; i < rows; i += rows / 4 ? rows / 4 : 1)
    printf("mean[%ld] = %.6f, cov[%ld][%ld] = %.6f, cov[0][%ld] = %.6f\n", i, mean[i], i, rows - 1,
           cov[i * rows + rows - 1], i, cov[i]);
  printf("covariance trace: %.6f\n", trace);
  printf("mean digest: %016" PRIx64 "\n", mean_digest);
  printf("covariance digest: %016" PRIx64 "\n", cov_digest);
  free(j), free(cov), free(mean), free(m);
  return 0;
}
