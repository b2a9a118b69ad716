/*
 * reserve_unmap: reserves a large range PROT_NONE (as language runtimes and
 * allocators do for their heaps), commits and fills a small part of it,
 * checks it, and unmaps the whole reservation, timing that munmap.
 *
 *   reserve_unmap [RESERVE_GIB [COMMIT_MIB]]     defaults: 64 16
 *
 * Output (stdout): the parameters and a digest of the committed pages, then
 * "OK". stderr: "munmap_seconds=S" (natively a few microseconds: nothing of
 * the reservation but the committed part was ever touched).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static double Now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
  const uint64_t reserve_gib = argc > 1 ? strtoull(argv[1], NULL, 10) : 64;
  const uint64_t commit_mib = argc > 2 ? strtoull(argv[2], NULL, 10) : 16;
  const size_t reserve = (size_t)(reserve_gib << 30);
  const size_t commit = (size_t)(commit_mib << 20);
  if (commit > reserve) {
    fprintf(stderr, "the committed part must fit in the reservation\n");
    return 2;
  }
  unsigned char* base =
      mmap(NULL, reserve, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) {
    perror("mmap");
    return 2;
  }
  if (commit > 0 && mprotect(base, commit, PROT_READ | PROT_WRITE) != 0) {
    perror("mprotect");
    return 2;
  }
  uint64_t* words = (uint64_t*)base;
  const size_t n = commit / sizeof(uint64_t);
  for (size_t i = 0; i < n; i++) words[i] = i * 0x9E3779B97F4A7C15ull + (i >> 9);
  uint64_t digest = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) {
    if (words[i] != i * 0x9E3779B97F4A7C15ull + (i >> 9)) {
      printf("MISMATCH at word %zu\n", i);
      return 1;
    }
    digest = (digest ^ words[i]) * 1099511628211ull;
  }
  const double t0 = Now();
  if (munmap(base, reserve) != 0) {
    perror("munmap");
    return 2;
  }
  const double t1 = Now();
  printf("reserve_gib=%" PRIu64 " commit_mib=%" PRIu64 " digest=%016" PRIx64 "\nOK\n", reserve_gib,
         commit_mib, digest);
  fprintf(stderr, "munmap_seconds=%.6f\n", t1 - t0);
  return 0;
}
