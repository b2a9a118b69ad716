/*
 * fork_orphan: a child that outlives its parent.
 *
 *   fork_orphan MIB RESULT_FILE
 *
 * The parent fills MIB MiB (writer 1), forks, overwrites every other page
 * (writer 2) and exits without waiting. The child waits until its parent is
 * gone (the pipe between them reads EOF), then checks that the whole buffer
 * still holds the data as it was at the fork, never the parent's later
 * writes and never zeros; writes every third page itself (writer 3), checks
 * again, and writes its verdict to RESULT_FILE (renamed into place, so a
 * reader never sees half of it). Under `remora run` with a pcache smaller
 * than the buffer, the parent's teardown (its rmaps, victim entries and
 * memory-node pages) runs while the child still uses the lines and pages
 * they shared.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "page_pattern.h"

static uint64_t* page_at(uint64_t* buf, size_t p) { return buf + p * WORDS_PER_PAGE; }

/* Pages that do not hold what they should: page p holds writer 3's data if
 * the child wrote it (p % 3 == 0 after `child_wrote`), else writer 1's. */
static size_t count_bad(uint64_t* buf, size_t pages, int child_wrote) {
  size_t bad = 0;
  for (size_t p = 0; p < pages; p++) {
    const uint64_t writer = (child_wrote && p % 3 == 0) ? 3 : 1;
    if (!page_holds(page_at(buf, p), writer, p)) bad++;
  }
  return bad;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: fork_orphan MIB RESULT_FILE\n");
    return 2;
  }
  const size_t pages = (size_t)atol(argv[1]) * 256;
  uint64_t* buf =
      mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buf == MAP_FAILED) return 2;
  for (size_t p = 0; p < pages; p++) fill_page(page_at(buf, p), 1, p);

  int link[2];
  if (pipe(link) != 0) return 2;
  fflush(stdout);
  const pid_t pid = fork();
  if (pid < 0) return 2;
  if (pid > 0) {
    close(link[0]);
    for (size_t p = 0; p < pages; p += 2) fill_page(page_at(buf, p), 2, p);
    printf("parent: %zu pages, exits first\n", pages);
    return 0; /* closes link[1]: the child's signal */
  }
  close(link[1]);
  char c;
  while (read(link[0], &c, 1) > 0) {
  }
  const size_t bad_before = count_bad(buf, pages, 0);
  for (size_t p = 0; p < pages; p += 3) fill_page(page_at(buf, p), 3, p);
  const size_t bad_after = count_bad(buf, pages, 1);

  char tmp[4096];
  snprintf(tmp, sizeof(tmp), "%s.tmp", argv[2]);
  FILE* f = fopen(tmp, "w");
  if (f == NULL) _exit(2);
  fprintf(f,
          "child: %zu pages, %zu wrong after the parent exited, %zu wrong after its own writes\n",
          pages, bad_before, bad_after);
  fprintf(f, "%s\n", bad_before == 0 && bad_after == 0 ? "OK" : "MISMATCH");
  fclose(f);
  rename(tmp, argv[2]);
  _exit(bad_before == 0 && bad_after == 0 ? 0 : 1);
}
