/*
 * fork_cycles: one process forks many short-lived children, one at a time,
 * so that whatever a fork and a child's exit leave behind adds up.
 *
 *   fork_cycles CYCLES PAGES [MARKER_DIR]
 *
 * The parent maps PAGES pages and writes all of them. Then, CYCLES times:
 * fork; the child checks 16 scattered inherited pages, writes 4 pages
 * (its own data) and checks them, and _exits (status 1 on a wrong word);
 * the parent waits for it. At the end the parent checks that all its pages
 * still hold its own data (no child's write shows).
 *
 * With MARKER_DIR, the program lets a test read the runtime's gauges at two
 * exact points: after a few warm-up cycles (whatever a first fork sets up
 * once is not counted) it creates MARKER_DIR/baseline and waits for
 * MARKER_DIR/go; after the cycles it creates MARKER_DIR/done and waits for
 * MARKER_DIR/go2 (each wait polls every 10 ms and gives up after a minute:
 * exit status 3). While it waits it touches no memory but its stack, so the
 * two readings see the same resident set.
 *
 * Output: the parameters, the number of children that passed, and "OK".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "page_pattern.h"

#define WARMUP 3
#define CHILD_READS 16
#define CHILD_WRITES 4

static uint64_t* base;
static uint64_t pages;

static void write_page(uint64_t p, uint64_t writer) {
  fill_page(base + p * WORDS_PER_PAGE, writer, p);
}
static int page_is(uint64_t p, uint64_t writer) {
  return page_holds(base + p * WORDS_PER_PAGE, writer, p);
}

static void marker(const char* dir, const char* name) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    fprintf(stderr, "fork_cycles: cannot create %s: %s\n", path, strerror(errno));
    exit(3);
  }
  close(fd);
}

static void await(const char* dir, const char* name) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  const struct timespec tick = {0, 10 * 1000 * 1000};
  for (int i = 0; i < 6000; i++) {
    if (access(path, F_OK) == 0) return;
    nanosleep(&tick, NULL);
  }
  fprintf(stderr, "fork_cycles: %s did not appear within a minute\n", path);
  exit(3);
}

/* One cycle; returns 1 if the child passed. */
static int cycle(uint64_t c) {
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "fork_cycles: fork %llu: %s\n", (unsigned long long)c, strerror(errno));
    exit(2);
  }
  if (pid == 0) {
    uint64_t first = (c * 2654435761u) % pages;
    for (unsigned i = 0; i < CHILD_READS; i++) {
      uint64_t p = (first + i * 37) % pages;
      if (!page_is(p, 1)) _exit(1);
    }
    for (unsigned i = 0; i < CHILD_WRITES; i++) write_page((first + i * 101) % pages, 2 + c);
    for (unsigned i = 0; i < CHILD_WRITES; i++)
      if (!page_is((first + i * 101) % pages, 2 + c)) _exit(1);
    _exit(0);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) {
      fprintf(stderr, "fork_cycles: waitpid: %s\n", strerror(errno));
      exit(2);
    }
  }
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    fprintf(stderr, "usage: fork_cycles CYCLES PAGES [MARKER_DIR]\n");
    return 2;
  }
  uint64_t cycles = strtoull(argv[1], NULL, 10);
  pages = strtoull(argv[2], NULL, 10);
  const char* markers = argc > 3 ? argv[3] : NULL;
  if (cycles == 0 || pages < 128 || pages > (1u << 20)) {
    fprintf(stderr, "fork_cycles: need CYCLES > 0 and 128 <= PAGES <= 2^20\n");
    return 2;
  }
  base = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) {
    fprintf(stderr, "fork_cycles: mmap: %s\n", strerror(errno));
    return 2;
  }
  for (uint64_t p = 0; p < pages; p++) write_page(p, 1);
  /* Nothing is printed before the forks: a child must not inherit (and
   * flush again) buffered output. */

  uint64_t passed = 0;
  for (uint64_t c = 0; c < WARMUP; c++) passed += (uint64_t)cycle(c);
  if (markers) {
    marker(markers, "baseline");
    await(markers, "go");
  }
  for (uint64_t c = WARMUP; c < WARMUP + cycles; c++) passed += (uint64_t)cycle(c);
  if (markers) {
    marker(markers, "done");
    await(markers, "go2");
  }

  uint64_t bad = 0;
  for (uint64_t p = 0; p < pages; p++) bad += (uint64_t)!page_is(p, 1);
  printf(
      "fork_cycles: %llu cycles (+%d warm-up), %llu pages; %llu children passed; %llu parent pages "
      "wrong\n%s\n",
      (unsigned long long)cycles, WARMUP, (unsigned long long)pages, (unsigned long long)passed,
      (unsigned long long)bad, passed == cycles + WARMUP && bad == 0 ? "OK" : "FAILED");
  munmap(base, pages * PAGE);
  return passed == cycles + WARMUP && bad == 0 ? 0 : 1;
}
