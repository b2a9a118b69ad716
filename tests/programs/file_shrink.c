/*
 * file_shrink: a private file mapping whose file shrinks while mapped.
 *
 *   file_shrink DIR
 *
 * Writes a 64-page file with a known pattern into DIR, maps it MAP_PRIVATE,
 * reads pages 0..3 and writes into page 2, then truncates the file to
 * 20 pages + 100 bytes and reads every page. Pages still inside the file
 * must hold the file's bytes (the last one zero past the new end), page 2
 * the program's own write. Natively a touch past the new end raises
 * SIGBUS; under Remora (docs/runtime.md) it reads zeros, so those pages
 * are checked for zeros when REMORA_EXPECT_ZEROS is set and skipped
 * otherwise. Prints one line per kind of page and "OK", or what differed.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096
#define PAGES 64
#define KEEP (20 * PAGE + 100)

static unsigned char pattern(size_t off) {
  return (unsigned char)(off * 131 + (off >> 12) * 7 + 1);
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: file_shrink DIR\n");
    return 2;
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/file_shrink.dat", argv[1]);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    perror("file_shrink: open");
    return 1;
  }
  static unsigned char buf[PAGES * PAGE];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = pattern(i);
  if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) {
    perror("file_shrink: write");
    return 1;
  }
  unsigned char* m = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  if (m == MAP_FAILED) {
    perror("file_shrink: mmap");
    return 1;
  }
  unsigned long sum = 0;
  for (size_t i = 0; i < 4 * PAGE; i++) sum += m[i];
  memset(m + 2 * PAGE, 0xab, PAGE);
  if (ftruncate(fd, KEEP) != 0) {
    perror("file_shrink: ftruncate");
    return 1;
  }
  int bad = 0;
  const int zeros = getenv("REMORA_EXPECT_ZEROS") != NULL;
  for (size_t off = 0; off < PAGES * PAGE; off++) {
    unsigned char want;
    if (off >= 2 * PAGE && off < 3 * PAGE)
      want = 0xab;
    else if (off < KEEP)
      want = pattern(off);
    else if (off < 21 * PAGE)
      want = 0; /* the rest of the last page: zero natively too */
    else if (zeros)
      want = 0;
    else
      break; /* natively SIGBUS from here on */
    if (m[off] != want && bad++ < 5) printf("offset %zu: %u, expected %u\n", off, m[off], want);
  }
  printf("first four pages sum %lu\n", sum);
  printf("%s\n", bad ? "DIFFERENT" : "OK");
  munmap(m, PAGES * PAGE);
  close(fd);
  unlink(path);
  return bad ? 1 : 0;
}
