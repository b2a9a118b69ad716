/*
 * rand_rmw: random read-modify-write over a region larger than the pcache,
 * the access pattern that costs a missing fault and then a write-protect
 * fault per page when clean pages are installed write-protected.
 *
 *   rand_rmw SIZE_MIB ACCESSES [SEED] [--time]
 *
 * 1. fill: every page of a fresh SIZE_MIB mapping is written (its words
 *    derived from the page number), front to back;
 * 2. rmw: ACCESSES times, a page picked at random (xorshift, from SEED) is
 *    read — its first word, a word picked from the step, its last word — and
 *    then the picked word is overwritten with a value that mixes all three
 *    and the step number: each step depends on what earlier steps wrote, so
 *    a lost write or a stale page changes everything after it;
 * 3. check: every page is summed.
 * Output (stdout): the parameters, a running checksum of every value read in
 * the rmw phase, and the final sum of each eighth of the region and of the
 * whole: equal under Remora and natively, byte for byte. --time prints the
 * rmw phase's cost per access (ns) on stderr.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define PAGE 4096UL
#define WORDS_PER_PAGE (PAGE / sizeof(uint64_t))

static uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int main(int argc, char** argv) {
  int timed = 0;
  const char* pos[3] = {NULL, NULL, NULL};
  int npos = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--time") == 0)
      timed = 1;
    else if (npos < 3)
      pos[npos++] = argv[i];
  }
  if (npos < 2) {
    fprintf(stderr, "usage: rand_rmw SIZE_MIB ACCESSES [SEED] [--time]\n");
    return 2;
  }
  const uint64_t mib = strtoull(pos[0], NULL, 10);
  const uint64_t accesses = strtoull(pos[1], NULL, 10);
  uint64_t seed = npos > 2 ? strtoull(pos[2], NULL, 10) : 1;
  if (mib == 0) {
    fprintf(stderr, "rand_rmw: SIZE_MIB must be > 0\n");
    return 2;
  }
  const uint64_t pages = mib * (1UL << 20) / PAGE;
  volatile uint64_t* mem =
      mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    perror("rand_rmw: mmap");
    return 1;
  }

  for (uint64_t p = 0; p < pages; p++)
    for (uint64_t w = 0; w < WORDS_PER_PAGE; w++)
      mem[p * WORDS_PER_PAGE + w] = mix64((p << 12) ^ w ^ 0x7a3dULL) | 1;

  uint64_t x = mix64(seed) | 1;
  uint64_t running = 0;
  const uint64_t t0 = now_ns();
  for (uint64_t k = 0; k < accesses; k++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const uint64_t p = x % pages;
    const uint64_t w = 1 + k % (WORDS_PER_PAGE - 2);
    volatile uint64_t* q = mem + p * WORDS_PER_PAGE;
    const uint64_t a = q[0], b = q[w], c = q[WORDS_PER_PAGE - 1];
    running = mix64(running ^ a ^ (b << 1) ^ (c << 2));
    q[w] = mix64(a ^ b ^ c ^ k) | 1;
  }
  const uint64_t t1 = now_ns();

  printf("rand_rmw %" PRIu64 " MiB, %" PRIu64 " accesses, seed %" PRIu64 "\n", mib, accesses, seed);
  printf("read checksum %016" PRIx64 "\n", running);
  uint64_t total = 0;
  for (int part = 0; part < 8; part++) {
    uint64_t sum = 0;
    for (uint64_t p = part * pages / 8; p < (part + 1) * pages / 8; p++)
      for (uint64_t w = 0; w < WORDS_PER_PAGE; w++) sum += mem[p * WORDS_PER_PAGE + w] * (w + 1);
    printf("part %d sum %016" PRIx64 "\n", part, sum);
    total ^= mix64(sum + (uint64_t)part);
  }
  printf("total %016" PRIx64 "\n", total);
  if (timed && accesses > 0)
    fprintf(stderr, "rand_rmw: %.1f ns per access\n", (double)(t1 - t0) / (double)accesses);
  return 0;
}
