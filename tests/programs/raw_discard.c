/*
 * raw_discard: drops written pages behind any interposer's back.
 *
 *   raw_discard MB ROUNDS
 *
 * Maps a region of MB MiB and one of 4 x MB. Each round writes every page
 * of the first, drops its odd pages with a raw madvise(MADV_DONTNEED)
 * system call (not the libc function, so an LD_PRELOAD shim does not see
 * it), writes every page of the second (under a pcache that holds the
 * first region but not the second, this evicts the first region's lines,
 * the dropped ones among them: their pages are gone while their lines are
 * dirty), and reads the first back: the dropped pages must read as zeros,
 * the others as written. Prints a digest per round and "OK", or the first
 * page that differed.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE 4096

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: raw_discard MB ROUNDS\n");
    return 2;
  }
  const size_t bytes = (size_t)strtoul(argv[1], NULL, 10) << 20;
  const int rounds = atoi(argv[2]);
  const size_t pages = bytes / PAGE;
  unsigned char* a = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  unsigned char* b =
      mmap(NULL, 4 * bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (a == MAP_FAILED || b == MAP_FAILED) {
    perror("raw_discard: mmap");
    return 1;
  }
  for (int r = 0; r < rounds; ++r) {
    for (size_t p = 0; p < pages; ++p) a[p * PAGE + (p % 61)] = (unsigned char)(p * 7 + r + 1);
    for (size_t p = 1; p < pages; p += 2) {
      if (syscall(SYS_madvise, a + p * PAGE, PAGE, MADV_DONTNEED) != 0) {
        perror("raw_discard: madvise");
        return 1;
      }
    }
    for (size_t p = 0; p < 4 * pages; ++p) b[p * PAGE + (p % 53)] = (unsigned char)(p * 3 + r);
    uint64_t digest = 1469598103934665603ULL;
    for (size_t p = 0; p < pages; ++p) {
      const unsigned char want = p % 2 ? 0 : (unsigned char)(p * 7 + r + 1);
      const unsigned char got = a[p * PAGE + (p % 61)];
      if (got != want) {
        printf("round %d page %zu: %u, expected %u\n", r, p, got, want);
        return 1;
      }
      digest = (digest ^ got) * 1099511628211ULL;
    }
    printf("round %d digest %016llx\n", r, (unsigned long long)digest);
  }
  printf("OK\n");
  return 0;
}
