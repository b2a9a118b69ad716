/*
 * fork_bench: what fork() costs a process with N resident, written pages.
 * Run it natively and under `remora run` with a pcache that holds all of
 * them (bench/run_fork_bench.py does both and compares).
 *
 *   fork_bench [--pages N[,N...]] [--reps R] [--json]
 *              defaults: --pages 1024,4096,16384,65536 --reps 11
 *
 * For each N: maps N pages and, before every repetition, writes one word of
 * each (so every page is resident and dirty, and not shared with a child of
 * an earlier repetition: that child has exited and been waited for). Then:
 *   fork      the parent's clock from just before fork() to just after it
 *             returned in the parent;
 *   child     from the same start to the child's first instruction after
 *             fork() returned in it (the child reads the clock, writes it
 *             through a pipe and _exits at once).
 * The parent's read of the pipe and waitpid() are outside the timed part.
 * The medians (and minimum) over the repetitions are reported; one untimed
 * fork comes first.
 *
 * The pipe and the page list are the only memory used besides the pages; the
 * samples are kept in a MAP_SHARED buffer, which stays local under Remora.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define MAX_SIZES 16
#define MAX_REPS 1001

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void* a, const void* b) {
  uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t* v, unsigned n) {
  qsort(v, n, sizeof *v, cmp_u64);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One fork; *fork_ns and *child_ns as described above. */
static void one_fork(int fds[2], uint64_t* fork_ns, uint64_t* child_ns) {
  uint64_t t0 = now_ns();
  pid_t pid = fork();
  if (pid == 0) {
    uint64_t t = now_ns();
    ssize_t w = write(fds[1], &t, sizeof t);
    _exit(w == (ssize_t)sizeof t ? 0 : 1);
  }
  uint64_t t1 = now_ns();
  if (pid < 0) {
    fprintf(stderr, "fork_bench: fork: %s\n", strerror(errno));
    exit(1);
  }
  uint64_t tc = 0;
  ssize_t r;
  while ((r = read(fds[0], &tc, sizeof tc)) < 0 && errno == EINTR) {
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (r != (ssize_t)sizeof tc || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fprintf(stderr, "fork_bench: the child did not report (status 0x%x)\n", st);
    exit(1);
  }
  *fork_ns = t1 - t0;
  *child_ns = tc - t0;
}

int main(int argc, char** argv) {
  unsigned long sizes[MAX_SIZES] = {1024, 4096, 16384, 65536};
  unsigned nsizes = 4, reps = 11;
  int json = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0) {
      json = 1;
    } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
      reps = (unsigned)strtoul(argv[++i], NULL, 10);
    } else if (strcmp(argv[i], "--pages") == 0 && i + 1 < argc) {
      nsizes = 0;
      for (char* s = strtok(argv[++i], ","); s && nsizes < MAX_SIZES; s = strtok(NULL, ","))
        sizes[nsizes++] = strtoul(s, NULL, 10);
    } else {
      fprintf(stderr, "usage: fork_bench [--pages N[,N...]] [--reps R] [--json]\n");
      return 2;
    }
  }
  if (reps == 0 || reps > MAX_REPS || nsizes == 0) {
    fprintf(stderr, "fork_bench: need 1..%d reps and at least one size\n", MAX_REPS);
    return 2;
  }
  uint64_t* samples = mmap(NULL, 2 * MAX_REPS * sizeof(uint64_t), PROT_READ | PROT_WRITE,
                           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  int fds[2];
  if (samples == MAP_FAILED || pipe(fds) != 0) {
    fprintf(stderr, "fork_bench: setup: %s\n", strerror(errno));
    return 1;
  }
  uint64_t* fork_ns = samples;
  uint64_t* child_ns = samples + MAX_REPS;

  if (json) printf("{\"reps\": %u, \"cases\": {", reps);
  for (unsigned s = 0; s < nsizes; s++) {
    unsigned long n = sizes[s];
    volatile char* mem =
        mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
      fprintf(stderr, "fork_bench: mmap of %lu pages: %s\n", n, strerror(errno));
      return 1;
    }
    uint64_t ignored_f, ignored_c;
    for (unsigned r = 0; r <= reps; r++) {
      for (unsigned long p = 0; p < n; p++) mem[p * PAGE] = (char)(r + p);
      if (r == 0)
        one_fork(fds, &ignored_f, &ignored_c); /* warm-up */
      else
        one_fork(fds, &fork_ns[r - 1], &child_ns[r - 1]);
    }
    uint64_t fmin = fork_ns[0], cmin = child_ns[0];
    for (unsigned r = 1; r < reps; r++) {
      if (fork_ns[r] < fmin) fmin = fork_ns[r];
      if (child_ns[r] < cmin) cmin = child_ns[r];
    }
    uint64_t fmed = median(fork_ns, reps), cmed = median(child_ns, reps);
    if (json) {
      printf(
          "%s\"%lu\": {\"fork_p50_ns\": %llu, \"fork_min_ns\": %llu, \"child_p50_ns\": %llu, "
          "\"child_min_ns\": %llu}",
          s ? ", " : "", n, (unsigned long long)fmed, (unsigned long long)fmin,
          (unsigned long long)cmed, (unsigned long long)cmin);
    } else {
      printf(
          "%7lu pages (%5lu MiB): fork p50 %8.1f us (min %8.1f), child running p50 %8.1f us (min "
          "%8.1f)\n",
          n, n * PAGE >> 20, fmed / 1e3, fmin / 1e3, cmed / 1e3, cmin / 1e3);
    }
    fflush(stdout);
    munmap((void*)mem, n * PAGE);
  }
  if (json) printf("}}\n");
  return 0;
}
