/*
 * fork_counters: a fork whose write-protect faults can be counted exactly.
 *
 *   fork_counters P K J      (K <= P, J <= P, K + J <= P)
 *
 * Maps P pages and writes all of them, forks; the child writes K of the
 * pages and _exits; the parent waits for it, then writes J other pages.
 * Under `remora run` with a pcache that keeps the P pages resident, at the
 * fork every one of them becomes shared by parent and child and
 * write-protected in both, so:
 *   - each of the child's K writes is a first write to a line still shared:
 *     nr_pgfault_wp_cow == K;
 *   - each of the parent's J writes, after the child exited, is a first write
 *     to a line that was shared but has no other mapper left:
 *     nr_pgfault_wp_reuse == J.
 * The pages written are scattered (a stride co-prime with P), never two
 * neighbours in a row, so no sequential-write heuristic can un-protect a
 * page ahead of its own fault. Between the fork and the last write, neither
 * process touches other memory of its own on purpose: output is formatted
 * on the stack and written with write(2), not stdio, whose buffer is
 * malloc'd (and so would be paged, and written, like the region).
 *
 * Both processes check every page they read (the child: the parent's data
 * on the pages it does not write; the parent, at the end: its own data
 * everywhere, never the child's). Output: "P K J", then the result.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "page_pattern.h"

static void say(const char* s) {
  size_t n = strlen(s);
  while (n > 0) {
    ssize_t w = write(1, s, n);
    if (w <= 0) {
      if (w < 0 && errno == EINTR) continue;
      _exit(2);
    }
    s += w;
    n -= (size_t)w;
  }
}

static uint64_t* base;
static uint64_t pages, stride;

/* The i-th page of a scattered visit of all P pages. */
static uint64_t nth(uint64_t i) { return (i * stride) % pages; }

static void write_nth(uint64_t i, unsigned writer) {
  fill_page(base + nth(i) * WORDS_PER_PAGE, writer, nth(i));
}

static int nth_holds(uint64_t i, unsigned writer) {
  return page_holds(base + nth(i) * WORDS_PER_PAGE, writer, nth(i));
}

int main(int argc, char** argv) {
  if (argc != 4) {
    say("usage: fork_counters P K J\n");
    return 2;
  }
  pages = strtoull(argv[1], NULL, 10);
  uint64_t k = strtoull(argv[2], NULL, 10), j = strtoull(argv[3], NULL, 10);
  if (pages == 0 || pages > (1u << 20) || k + j > pages) {
    say("fork_counters: need 0 < P <= 2^20 and K + J <= P\n");
    return 2;
  }
  stride = 7;
  while (pages > 2 && pages % stride == 0) stride += 2;
  if (pages <= 2) stride = 1;
  base = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) {
    say("fork_counters: mmap failed\n");
    return 2;
  }
  char line[160];
  snprintf(line, sizeof line, "%llu %llu %llu\n", (unsigned long long)pages, (unsigned long long)k,
           (unsigned long long)j);
  say(line);

  /* The visit order i = 0..P-1: the child writes the first K pages of it,
   * the parent the last J. */
  for (uint64_t i = 0; i < pages; i++) write_nth(i, 1);
  pid_t pid = fork();
  if (pid < 0) {
    say("fork_counters: fork failed\n");
    return 2;
  }
  if (pid == 0) {
    for (uint64_t i = 0; i < k; i++) write_nth(i, 2);
    for (uint64_t i = 0; i < pages; i++)
      if (!nth_holds(i, i < k ? 2 : 1)) _exit(3);
    _exit(0);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) {
      say("fork_counters: waitpid failed\n");
      return 2;
    }
  }
  for (uint64_t i = pages - j; i < pages; i++) write_nth(i, 3);

  uint64_t bad = 0;
  for (uint64_t i = 0; i < pages; i++) bad += (uint64_t)!nth_holds(i, i >= pages - j ? 3 : 1);
  const int child_ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
  snprintf(line, sizeof line, "child %s; parent: %llu pages wrong\n%s\n",
           child_ok ? "saw the parent's data and its own writes" : "FAILED",
           (unsigned long long)bad, child_ok && bad == 0 ? "OK" : "FAILED");
  say(line);
  munmap(base, pages * PAGE);
  return child_ok && bad == 0 ? 0 : 1;
}
