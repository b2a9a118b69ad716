/*
 * small_blocks: many small heap blocks, from the first line of main.
 *
 *   small_blocks MB THREADS [fork]
 *
 * THREADS threads (the main thread alone if 1) each malloc their share of
 * MB megabytes in 56-byte blocks, chained in a list, each block filled
 * with data that depends on its thread and index. Then every list is
 * walked and checksummed, in thread order. With "fork", the program then
 * forks: the child rewrites every block (so each shared page is written
 * once by the child), allocates as many blocks again, checksums both and
 * reports; the parent waits for it and checksums its own lists again (the
 * child's writes must not show).
 *
 * This is the allocation pattern of most programs (small objects from the
 * allocator's first segment on), which must be paged like the rest: under
 * `remora run` with a pcache far smaller than MB, the blocks fault.
 * Output: one line per result, the same natively and under Remora.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BLOCK 56
#define MAX_THREADS 16

struct block {
  struct block* next;
  uint64_t data[(BLOCK - sizeof(struct block*)) / sizeof(uint64_t)];
};

static size_t per_thread; /* blocks per thread */
static unsigned nthreads;
static struct block* heads[MAX_THREADS];

static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

/* Builds a list of n blocks whose data depend on (seed, index). */
static struct block* build(uint64_t seed, size_t n) {
  struct block* head = NULL;
  for (size_t i = 0; i < n; ++i) {
    struct block* b = malloc(sizeof(*b));
    if (b == NULL) {
      fprintf(stderr, "small_blocks: out of memory\n");
      exit(1);
    }
    for (size_t k = 0; k < sizeof(b->data) / sizeof(b->data[0]); ++k)
      b->data[k] = mix(seed * 0x9e3779b97f4a7c15ULL + i * 8 + k);
    b->next = head;
    head = b;
  }
  return head;
}

static uint64_t checksum(const struct block* b) {
  uint64_t sum = 0;
  size_t i = 0;
  for (; b != NULL; b = b->next, ++i) {
    for (size_t k = 0; k < sizeof(b->data) / sizeof(b->data[0]); ++k)
      sum = sum * 31 + (b->data[k] ^ i);
  }
  return sum;
}

static void* worker(void* arg) {
  const unsigned t = (unsigned)(uintptr_t)arg;
  heads[t] = build(t + 1, per_thread);
  return NULL;
}

static uint64_t checksum_all(void) {
  uint64_t sum = 0;
  for (unsigned t = 0; t < nthreads; ++t) sum = mix(sum ^ checksum(heads[t]));
  return sum;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: small_blocks MB THREADS [fork]\n");
    return 2;
  }
  const long mb = atol(argv[1]);
  nthreads = (unsigned)atoi(argv[2]);
  const int do_fork = argc > 3 && strcmp(argv[3], "fork") == 0;
  if (mb <= 0 || nthreads == 0 || nthreads > MAX_THREADS) {
    fprintf(stderr, "small_blocks: bad arguments\n");
    return 2;
  }
  per_thread = (size_t)mb * 1024 * 1024 / BLOCK / nthreads;
  if (nthreads == 1) {
    heads[0] = build(1, per_thread);
  } else {
    pthread_t tids[MAX_THREADS];
    for (unsigned t = 0; t < nthreads; ++t) {
      if (pthread_create(&tids[t], NULL, worker, (void*)(uintptr_t)t) != 0) {
        fprintf(stderr, "small_blocks: pthread_create failed\n");
        return 1;
      }
    }
    for (unsigned t = 0; t < nthreads; ++t) pthread_join(tids[t], NULL);
  }
  printf("blocks %zu x %u threads, checksum %016llx\n", per_thread, nthreads,
         (unsigned long long)checksum_all());
  if (!do_fork) return 0;

  fflush(stdout);
  const pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    return 1;
  }
  if (pid == 0) {
    for (unsigned t = 0; t < nthreads; ++t) {
      for (struct block* b = heads[t]; b != NULL; b = b->next) b->data[0] ^= 0x5a5a5a5a;
    }
    struct block* more = build(1000, per_thread);
    printf("child: rewritten %016llx, new %016llx\n", (unsigned long long)checksum_all(),
           (unsigned long long)checksum(more));
    fflush(stdout);
    _exit(0);
  }
  int status;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "small_blocks: the child failed\n");
    return 1;
  }
  printf("parent after the child: checksum %016llx\n", (unsigned long long)checksum_all());
  return 0;
}
