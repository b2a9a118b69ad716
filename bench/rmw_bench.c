/*
 * rmw_bench: random read-modify-write over an anonymous region, the access
 * pattern that makes every miss evict a dirty line once the region is larger
 * than the pcache. Run it under `remora run`; bench/run_reclaim_bench.py
 * compares background reclaim with direct reclaim.
 *
 *   rmw_bench REGION_MIB OPS [SEED]
 *
 * First every page is written once (sequentially), then OPS times a page is
 * picked at random (xorshift), one word of it read, changed and written back.
 * Prints the ops per second of the random phase and a checksum of the region,
 * which depends only on the arguments: a run under Remora must print the same
 * checksum as a native one.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#define PAGE 4096UL
#define WORDS (PAGE / sizeof(uint64_t))

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t next(uint64_t* s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: rmw_bench REGION_MIB OPS [SEED]\n");
    return 2;
  }
  const size_t pages = (size_t)strtoull(argv[1], NULL, 0) * (1 << 20) / PAGE;
  const uint64_t ops = strtoull(argv[2], NULL, 0);
  uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 0) : 88172645463325252ULL;
  if (pages == 0 || seed == 0) return 2;
  uint64_t* mem =
      mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    perror("rmw_bench: mmap");
    return 1;
  }
  for (size_t p = 0; p < pages; ++p) mem[p * WORDS] = p;

  const double t0 = now_s();
  for (uint64_t i = 0; i < ops; ++i) {
    const uint64_t r = next(&seed);
    uint64_t* w = &mem[(r % pages) * WORDS + (r >> 40) % WORDS];
    *w = *w * 31 + i;
  }
  const double t = now_s() - t0;

  uint64_t sum = 0;
  for (size_t i = 0; i < pages * WORDS; ++i) sum = sum * 1099511628211ULL + mem[i];
  printf("checksum %016llx\n", (unsigned long long)sum);
  fprintf(stderr, "rmw_bench: %zu pages, %llu ops in %.3f s: %.0f ops/s\n", pages,
          (unsigned long long)ops, t, (double)ops / t);
  return 0;
}
