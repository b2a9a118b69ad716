/*
 * miss_bench: times single page misses from inside a program. Run it under
 * `remora run` with a pcache of PCACHE_PAGES lines; natively it only measures
 * the kernel's own faults.
 *
 *   miss_bench PCACHE_PAGES [--json]
 *   miss_bench --rmw REGION_MB [--samples N] [--json]
 *
 * Phases, each touching one page at a time and timing each touch:
 *   zero_fill           first write to fresh memory while the pcache still has
 *                       free lines (half its capacity): a local zero-fill
 *   zero_fill_evicting  first writes to 4x the pcache (first half A, then
 *                       half B): zero-fills that also have to evict dirty
 *                       lines; B evicts every line of A (each set sees 2x
 *                       its ways of B's pages)
 *   remote_fill_dirty   reads of A: fills from the memory node, each
 *                       evicting a dirty line of B
 *   remote_fill_clean   reads of B, all evicted by the reads of A: fills
 *                       from the memory node, each evicting a clean line
 * Within each range pages are visited in a scattered order (a stride
 * co-prime with the range), never two neighbours in a row, so that every
 * touch is a miss of its own: a sequential sweep would be served largely by
 * the runtime's read-ahead and would not time single misses.
 *
 * --rmw: the miss a program with a random access pattern sees. A region of
 * REGION_MB (256 under a 64 MiB pcache: three accesses in four miss) is
 * written once, page by page; then N (default 20000) pages chosen at random
 * (a fixed seed) are each read and written back, one word, each
 * read-modify-write timed as a whole: a fill from the memory node (or a hit),
 * then a write-protect fault if the page came back clean. Reports the phase
 * rmw_random; the mean and the percentiles include the hits.
 *
 * Sample buffers are MAP_SHARED (which stays local) and touched before use,
 * so only the measured pages go through the pcache.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define PAGE 4096UL

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

struct phase {
  const char* name;
  uint64_t* v;
  size_t n;
  uint64_t checksum;
};

static uint64_t* local_buffer(size_t n) {
  uint64_t* p =
      mmap(NULL, n * sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    perror("miss_bench: mmap");
    exit(1);
  }
  memset(p, 0, n * sizeof(uint64_t));
  return p;
}

static int cmp_u64(const void* a, const void* b) {
  uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  return (x > y) - (x < y);
}

/* The k-th page of a scattered visit of n pages. */
static size_t scattered(size_t k, size_t n) {
  size_t stride = (n / 2 + 7) | 1;
  while (n > 2) {
    size_t a = stride, b = n; /* gcd(stride, n) == 1 ? */
    while (b) {
      size_t t = a % b;
      a = b;
      b = t;
    }
    if (a == 1) break;
    stride += 2;
  }
  return (k * stride) % n;
}

static void write_pages(struct phase* ph, char* base, size_t from, size_t n) {
  for (size_t k = 0; k < n; k++) {
    size_t i = from + scattered(k, n);
    volatile uint64_t* p = (volatile uint64_t*)(base + i * PAGE);
    uint64_t t0 = now_ns();
    *p = i * 2654435761ULL + 1;
    uint64_t t1 = now_ns();
    ph->v[ph->n++] = t1 - t0;
  }
}

static void read_pages(struct phase* ph, char* base, size_t from, size_t n) {
  for (size_t k = 0; k < n; k++) {
    size_t i = from + scattered(k, n);
    volatile uint64_t* p = (volatile uint64_t*)(base + i * PAGE);
    uint64_t t0 = now_ns();
    uint64_t v = *p;
    uint64_t t1 = now_ns();
    ph->v[ph->n++] = t1 - t0;
    if (v != i * 2654435761ULL + 1) {
      printf("miss_bench: page %zu read %016llx, expected %016llx\n", i, (unsigned long long)v,
             (unsigned long long)(i * 2654435761ULL + 1));
      exit(1);
    }
    ph->checksum += v;
  }
}

static int rmw(size_t region_mb, size_t samples, int json) {
  size_t pages = region_mb * (1UL << 20) / PAGE;
  if (pages < 64 || samples == 0) {
    fprintf(stderr, "miss_bench: --rmw needs REGION_MB >= 1 and N > 0\n");
    return 2;
  }
  struct phase ph = {.name = "rmw_random", .v = local_buffer(samples)};
  char* region =
      mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED) {
    perror("miss_bench: mmap");
    return 1;
  }
  for (size_t i = 0; i < pages; i++) *(volatile uint64_t*)(region + i * PAGE) = i;
  uint64_t x = 0x2545f4914f6cdd1dULL;
  for (size_t k = 0; k < samples; k++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
    size_t i = (size_t)(x % pages);
    volatile uint64_t* p = (volatile uint64_t*)(region + i * PAGE);
    uint64_t t0 = now_ns();
    uint64_t v = *p;
    *p = v + pages;
    uint64_t t1 = now_ns();
    ph.v[ph.n++] = t1 - t0;
    if (v % pages != i) {
      printf("miss_bench: page %zu read %llu\n", i, (unsigned long long)v);
      return 1;
    }
  }
  double sum = 0;
  for (size_t k = 0; k < ph.n; k++) sum += (double)ph.v[k];
  qsort(ph.v, ph.n, sizeof(uint64_t), cmp_u64);
  unsigned long long p50 = ph.v[ph.n / 2], p90 = ph.v[ph.n * 9 / 10], p99 = ph.v[ph.n * 99 / 100];
  if (json)
    printf(
        "{\"region_mb\": %zu, \"phases\": {\"rmw_random\": {\"count\": %zu, \"p50\": %llu, "
        "\"p90\": %llu, \"p99\": %llu, \"mean\": %.1f}}}\n",
        region_mb, ph.n, p50, p90, p99, sum / (double)ph.n);
  else
    printf("rmw_random over %zu MiB: %zu touches, p50 %llu p90 %llu p99 %llu mean %.0f ns\n",
           region_mb, ph.n, p50, p90, p99, sum / (double)ph.n);
  munmap(region, pages * PAGE);
  return 0;
}

int main(int argc, char** argv) {
  if (argc >= 3 && strcmp(argv[1], "--rmw") == 0) {
    size_t samples = 20000;
    int json = 0;
    for (int i = 3; i < argc; i++) {
      if (strcmp(argv[i], "--json") == 0)
        json = 1;
      else if (strcmp(argv[i], "--samples") == 0 && i + 1 < argc)
        samples = strtoul(argv[++i], NULL, 10);
    }
    return rmw(strtoul(argv[2], NULL, 10), samples, json);
  }
  if (argc < 2) {
    fprintf(stderr,
            "usage: miss_bench PCACHE_PAGES [--json] | --rmw REGION_MB [--samples N] [--json]\n");
    return 2;
  }
  size_t lines = strtoul(argv[1], NULL, 10);
  int json = argc > 2 && strcmp(argv[2], "--json") == 0;
  if (lines < 64) {
    fprintf(stderr, "miss_bench: PCACHE_PAGES must be at least 64\n");
    return 2;
  }
  size_t zero_n = lines / 2, big = 4 * lines;
  struct phase ph[4] = {{.name = "zero_fill"},
                        {.name = "zero_fill_evicting"},
                        {.name = "remote_fill_dirty"},
                        {.name = "remote_fill_clean"}};
  ph[0].v = local_buffer(zero_n);
  ph[1].v = local_buffer(big);
  ph[2].v = local_buffer(big / 2);
  ph[3].v = local_buffer(big / 2);

  char* fresh =
      mmap(NULL, zero_n * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  char* region = mmap(NULL, big * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (fresh == MAP_FAILED || region == MAP_FAILED) {
    perror("miss_bench: mmap");
    return 1;
  }
  write_pages(&ph[0], fresh, 0, zero_n);
  munmap(fresh, zero_n * PAGE); /* frees its lines again */
  write_pages(&ph[1], region, 0, big / 2);
  write_pages(&ph[1], region, big / 2, big / 2);
  read_pages(&ph[2], region, 0, big / 2);
  read_pages(&ph[3], region, big / 2, big / 2);

  if (json)
    printf("{\"pcache_pages\": %zu, \"phases\": {", lines);
  else
    printf("%-20s %8s %10s %10s %10s %10s  (ns per touch)\n", "phase", "count", "p50", "p90", "p99",
           "mean");
  for (int i = 0; i < 4; i++) {
    double sum = 0;
    for (size_t k = 0; k < ph[i].n; k++) sum += (double)ph[i].v[k];
    qsort(ph[i].v, ph[i].n, sizeof(uint64_t), cmp_u64);
    uint64_t p50 = ph[i].v[ph[i].n / 2], p90 = ph[i].v[ph[i].n * 9 / 10],
             p99 = ph[i].v[ph[i].n * 99 / 100];
    if (json)
      printf(
          "%s\"%s\": {\"count\": %zu, \"p50\": %llu, \"p90\": %llu, \"p99\": %llu, \"mean\": %.1f}",
          i ? ", " : "", ph[i].name, ph[i].n, (unsigned long long)p50, (unsigned long long)p90,
          (unsigned long long)p99, sum / (double)ph[i].n);
    else
      printf("%-20s %8zu %10llu %10llu %10llu %10.0f\n", ph[i].name, ph[i].n,
             (unsigned long long)p50, (unsigned long long)p90, (unsigned long long)p99,
             sum / (double)ph[i].n);
  }
  if (json) printf("}}\n");
  munmap(region, big * PAGE);
  return 0;
}
