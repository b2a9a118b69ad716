/*
 * fork_tree: a tree of processes that share one inherited buffer, each
 * checking that copy-on-write keeps every process's view its own.
 *
 *   fork_tree [SIZE_MIB [DEPTH [FANOUT]]]     defaults: 48 3 2 (15 processes)
 *
 * The root allocates SIZE_MIB of memory, half with malloc and half with a
 * direct anonymous mmap, and fills it with an initial pattern. Node n of the
 * tree (the root is 0, the children of n are n*FANOUT+1 .. n*FANOUT+FANOUT)
 * owns slice n of the buffer's pages. Every node:
 *
 *   1. checks the whole buffer against what its parent held at fork;
 *   2. writes generation 1 of its own pattern into its slice;
 *   3. forks its children (if it is not a leaf): they inherit generation 1;
 *   4. writes generation 2 into its slice while the children run, and checks
 *      the whole buffer (its children's writes must not show);
 *   5. waits for its children, then checks the whole buffer again.
 *
 * So at every check a page holds: in the node's own slice its own latest
 * generation; in an ancestor's slice that ancestor's generation 1; anywhere
 * else the initial pattern. Never zeros (no pattern word is zero), never
 * another process's writes. A check reads every word of the buffer, so with
 * a pcache smaller than the buffer each check pages all of it in again.
 *
 * Each node sends one fixed-size record (node, words checked, first mismatch)
 * through a pipe the root created; the root prints the records in node order
 * and "OK", or "FAILED" and exits 1 if any check failed or any process did
 * not exit 0. The output depends only on the arguments. Details of a
 * mismatch go to stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "page_pattern.h"

#define MAX_NODES 4096
#define INITIAL 0xffffu /* writer id of the initial fill */

struct record {
  uint32_t node;
  uint32_t failed;        /* 1 if any check of this node failed */
  uint64_t words_checked; /* over all its checks */
  uint64_t bad_page;      /* first mismatch, if failed */
  uint64_t got, want;
};

static uint64_t* regions[2]; /* the malloc'd half and the mmap'd half */
static size_t region_pages[2];
static size_t total_pages, slice_pages;
static unsigned depth, fanout, nodes;
static int report_fd = -1;

/* The pattern writer id of node n's generation g (the initial fill: INITIAL, 0). */
static uint64_t writer(unsigned n, unsigned g) { return ((uint64_t)n << 8) | g; }

static uint64_t* page_addr(uint64_t p) {
  return p < region_pages[0] ? regions[0] + p * WORDS_PER_PAGE
                             : regions[1] + (p - region_pages[0]) * WORDS_PER_PAGE;
}

static unsigned parent_of(unsigned n) { return (n - 1) / fanout; }

static int is_ancestor(unsigned a, unsigned n) { /* a is n or above n */
  for (;;) {
    if (a == n) return 1;
    if (n == 0) return 0;
    n = parent_of(n);
  }
}

/* Slice s covers pages [s*slice_pages, (s+1)*slice_pages); the pages past
 * the last slice keep the initial fill. */
static unsigned slice_of(uint64_t p) {
  uint64_t s = p / slice_pages;
  return s < nodes ? (unsigned)s : INITIAL;
}

static void write_slice(unsigned n, unsigned g) {
  for (uint64_t p = (uint64_t)n * slice_pages; p < (uint64_t)(n + 1) * slice_pages; p++)
    fill_page(page_addr(p), writer(n, g), p);
}

/* Checks the whole buffer as node n sees it, its own slice at generation
 * own_gen (0: still the inherited data). Returns 0 or 1 (first mismatch
 * recorded in *r). */
static int check_all(unsigned n, unsigned own_gen, const char* when, struct record* r) {
  for (uint64_t p = 0; p < total_pages; p++) {
    unsigned s = slice_of(p);
    uint64_t who = writer(INITIAL, 0);
    if (s == n && own_gen > 0) {
      who = writer(n, own_gen);
    } else if (s != INITIAL && s != n && is_ancestor(s, n)) {
      who = writer(s, 1);
    }
    const uint64_t* q = page_addr(p);
    unsigned w = first_wrong_word(q, who, p);
    if (w < WORDS_PER_PAGE) {
      uint64_t v = ((const volatile uint64_t*)q)[w], want = pattern_word(who, p, w);
      fprintf(stderr,
              "fork_tree: MISMATCH node %u (pid %d) %s: page %" PRIu64
              " (slice %u) word %u at %p: "
              "got %016" PRIx64 " want %016" PRIx64 "%s\n",
              n, (int)getpid(), when, p, s, w, (const void*)(q + w), v, want,
              v == 0 ? " (zero)" : "");
      if (!r->failed) {
        r->failed = 1;
        r->bad_page = p;
        r->got = v;
        r->want = want;
      }
      return 1;
    }
    r->words_checked += WORDS_PER_PAGE;
  }
  return 0;
}

static void send_record(const struct record* r) {
  /* Smaller than PIPE_BUF: one atomic write. */
  if (write(report_fd, r, sizeof *r) != (ssize_t)sizeof *r) {
    fprintf(stderr, "fork_tree: node %u: write to the report pipe: %s\n", r->node, strerror(errno));
    _exit(2);
  }
}

static unsigned node_depth(unsigned n) {
  unsigned d = 0;
  while (n > 0) n = parent_of(n), d++;
  return d;
}

/* Runs node n; returns its exit status (0 if it and every descendant passed). */
static int run_node(unsigned n) {
  struct record r = {.node = n};
  int status = 0;
  if (n != 0) status |= check_all(n, 0, "at start", &r);
  write_slice(n, 1);
  pid_t kids[64];
  unsigned nkids = 0;
  if (node_depth(n) < depth) {
    for (unsigned i = 1; i <= fanout; i++) {
      unsigned c = n * fanout + i;
      fflush(NULL);
      pid_t pid = fork();
      if (pid < 0) {
        fprintf(stderr, "fork_tree: node %u: fork: %s\n", n, strerror(errno));
        status = 2;
        break;
      }
      if (pid == 0) _exit(run_node(c));
      kids[nkids++] = pid;
    }
  }
  write_slice(n, 2);
  status |= check_all(n, 2, "while its children run", &r);
  for (unsigned i = 0; i < nkids; i++) {
    int st = 0;
    while (waitpid(kids[i], &st, 0) < 0) {
      if (errno != EINTR) {
        st = 2 << 8;
        break;
      }
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      fprintf(stderr, "fork_tree: node %u: child %d ended with status 0x%x\n", n, (int)kids[i], st);
      status |= 1;
    }
  }
  status |= check_all(n, 2, "after its children exited", &r);
  send_record(&r);
  return status;
}

static void* xmmap(size_t n) {
  void* p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    fprintf(stderr, "fork_tree: mmap(%zu): %s\n", n, strerror(errno));
    exit(2);
  }
  return p;
}

int main(int argc, char** argv) {
  unsigned long mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 48;
  depth = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 3;
  fanout = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 2;
  nodes = 1;
  for (unsigned d = 0, level = 1; d < depth && nodes < MAX_NODES; d++) {
    level *= fanout;
    nodes += level;
  }
  total_pages = (mib << 20) / PAGE;
  if (mib == 0 || mib > 4096 || depth > 12 || fanout < 1 || fanout > 64 || nodes >= MAX_NODES ||
      total_pages < nodes) {
    fprintf(stderr,
            "usage: fork_tree [SIZE_MIB [DEPTH(0-12) [FANOUT(1-64)]]] (fewer than %d "
            "processes, at least a page each)\n",
            MAX_NODES);
    return 2;
  }
  slice_pages = total_pages / nodes;
  region_pages[0] = total_pages / 2;
  region_pages[1] = total_pages - region_pages[0];
  /* malloc need not page-align: use the page-aligned part. */
  char* raw = malloc(region_pages[0] * PAGE + PAGE);
  if (!raw) {
    fprintf(stderr, "fork_tree: malloc failed\n");
    return 2;
  }
  regions[0] = (uint64_t*)(((uintptr_t)raw + PAGE - 1) & ~(PAGE - 1));
  regions[1] = xmmap(region_pages[1] * PAGE);
  for (uint64_t p = 0; p < total_pages; p++) fill_page(page_addr(p), writer(INITIAL, 0), p);

  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    fprintf(stderr, "fork_tree: pipe: %s\n", strerror(errno));
    return 2;
  }
  report_fd = fds[1];
  int status = run_node(0);
  close(fds[1]);

  /* Every process has exited (each waited for its children): all records
   * are in the pipe. */
  struct record* recs = calloc(nodes, sizeof *recs);
  unsigned char* seen = calloc(nodes, 1);
  struct record r;
  ssize_t got;
  while ((got = read(fds[0], &r, sizeof r)) == (ssize_t)sizeof r) {
    if (r.node < nodes) {
      recs[r.node] = r;
      seen[r.node] = 1;
    }
  }
  printf(
      "fork_tree: %lu MiB (%zu pages, %zu malloc'd + %zu mmap'd), depth %u, fanout %u, "
      "%u processes, %zu pages per slice\n",
      mib, total_pages, region_pages[0], region_pages[1], depth, fanout, nodes, slice_pages);
  for (unsigned n = 0; n < nodes; n++) {
    if (!seen[n]) {
      printf("node %u: no report\n", n);
      status |= 1;
      continue;
    }
    if (recs[n].failed) {
      printf("node %u: MISMATCH at page %" PRIu64 ": got %016" PRIx64 " want %016" PRIx64 "\n", n,
             recs[n].bad_page, recs[n].got, recs[n].want);
      status |= 1;
    } else {
      printf("node %u: depth %u, %" PRIu64 " words checked\n", n, node_depth(n),
             recs[n].words_checked);
    }
  }
  printf(status == 0 ? "OK\n" : "FAILED\n");
  free(recs);
  free(seen);
  return status == 0 ? 0 : 1;
}
