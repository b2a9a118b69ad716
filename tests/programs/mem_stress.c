/*
 * mem_stress: several threads write and verify a large amount of malloc'd and
 * directly mmap'd anonymous memory, in several passes, so that a page that
 * comes back as zeros, a stale copy of itself, another page's data or another
 * thread's data is detected.
 *
 *   mem_stress [SIZE_MIB [THREADS [PASSES]]]     defaults: 256 4 3
 *
 * Every 8-byte word holds a value derived from (thread, region, page, word,
 * generation). The first word of a page also mixes in the page's real virtual
 * address (checked, but left out of the digest so the digest does not depend
 * on where the allocator placed things). Between passes a varying subset of
 * pages is rewritten with a new generation. After the passes each thread
 * exercises memory being given back: madvise(MADV_DONTNEED) and munmap then
 * re-map must read zero, calloc must read zero, realloc growth must keep its
 * prefix, mremap growth must keep its prefix and read zero in the new part.
 *
 * Output (stdout): one line with the parameters and a digest, then "OK".
 * On the first wrong word: "MISMATCH ..." with its address, exit status 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096UL
#define WORDS_PER_PAGE (PAGE / sizeof(uint64_t))
#define MALLOC_CHUNK (4UL << 20) /* malloc'd memory comes in 4 MiB chunks */
#define SMALL_MAPS 8             /* separately mmap'd chunks per thread */
#define SMALL_MAP_PAGES 64

static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

/* Expected value of word w of logical page p of region r of thread t at
 * generation g. Never zero, so a zero-filled page never matches. */
static uint64_t pattern(unsigned t, unsigned r, uint64_t p, unsigned w, unsigned g) {
  uint64_t k = ((uint64_t)t << 56) ^ ((uint64_t)r << 48) ^ (p << 12) ^ ((uint64_t)w << 3) ^
               ((uint64_t)g << 40) ^ 0x5eed5eed5eedULL;
  return mix64(k) | 1;
}

static void fail(const char* what, unsigned t, unsigned r, uint64_t page, unsigned w,
                 const volatile uint64_t* addr, uint64_t got, uint64_t want) {
  pthread_mutex_lock(&report_lock);
  printf("MISMATCH %s: thread %u region %u page %" PRIu64 " word %u at address %p: got %016" PRIx64
         " expected %016" PRIx64 "\n",
         what, t, r, page, w, (const void*)addr, got, want);
  fflush(stdout);
  _exit(1);
}

struct region {
  uint64_t* base;
  size_t pages;
  unsigned id;
  unsigned char* gen; /* generation each page was last written with */
};

struct worker {
  pthread_t tid;
  unsigned id;
  size_t bytes; /* this thread's share of the total */
  unsigned passes;
  uint64_t digest;
};

static void write_page(struct region* rg, unsigned t, uint64_t p, unsigned g) {
  volatile uint64_t* q = rg->base + p * WORDS_PER_PAGE;
  q[0] = pattern(t, rg->id, p, 0, g) ^ (uint64_t)(uintptr_t)q;
  for (unsigned w = 1; w < WORDS_PER_PAGE; w++) q[w] = pattern(t, rg->id, p, w, g);
  rg->gen[p] = (unsigned char)g;
}

static uint64_t check_page(const struct region* rg, unsigned t, uint64_t p, uint64_t digest) {
  const volatile uint64_t* q = rg->base + p * WORDS_PER_PAGE;
  unsigned g = rg->gen[p];
  uint64_t want0 = pattern(t, rg->id, p, 0, g) ^ (uint64_t)(uintptr_t)q;
  uint64_t v = q[0];
  if (v != want0) fail("verify", t, rg->id, p, 0, q, v, want0);
  digest = mix64(digest ^ pattern(t, rg->id, p, 0, g));
  for (unsigned w = 1; w < WORDS_PER_PAGE; w++) {
    v = q[w];
    uint64_t want = pattern(t, rg->id, p, w, g);
    if (v != want) fail("verify", t, rg->id, p, w, q + w, v, want);
    digest += v * (2 * w + 1);
  }
  return mix64(digest);
}

static void check_zero(const char* what, const void* base, size_t bytes, unsigned t) {
  const volatile uint64_t* q = base;
  for (size_t i = 0; i < bytes / sizeof(uint64_t); i++) {
    if (q[i] != 0)
      fail(what, t, 0, i / WORDS_PER_PAGE, (unsigned)(i % WORDS_PER_PAGE), q + i, q[i], 0);
  }
}

static void* xmalloc(size_t n) {
  void* p = malloc(n);
  if (!p) {
    fprintf(stderr, "mem_stress: malloc(%zu) failed\n", n);
    exit(2);
  }
  return p;
}

static void* xmmap(void* hint, size_t n) {
  void* p = mmap(hint, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    fprintf(stderr, "mem_stress: mmap(%zu) failed: %s\n", n, strerror(errno));
    exit(2);
  }
  return p;
}

/* Pages of the regions are visited in an order that differs per pass, so the
 * cache sees sequential, reverse and strided sweeps. */
static uint64_t visit_order(uint64_t i, uint64_t n, unsigned pass) {
  switch (pass % 3) {
    case 0:
      return i;
    case 1:
      return n - 1 - i;
    default: {
      /* A stride co-prime with n visits every page once. */
      uint64_t stride = 97;
      while (n % stride == 0) stride += 2;
      return (i * stride) % n;
    }
  }
}

static void* run_worker(void* arg) {
  struct worker* wk = arg;
  unsigned t = wk->id;
  size_t half = wk->bytes / 2;
  size_t nchunks = half / MALLOC_CHUNK;
  if (nchunks == 0) nchunks = 1;
  size_t chunk_pages = (half / nchunks) / PAGE;
  if (chunk_pages == 0) chunk_pages = 1;
  size_t map_pages = (wk->bytes - nchunks * chunk_pages * PAGE) / PAGE;
  if (map_pages < 16) map_pages = 16;

  /* Regions 0..nchunks-1 come from malloc, region nchunks is one direct
   * mmap, regions nchunks+1.. are small mmaps that get unmapped later. */
  size_t nregions = nchunks + 1 + SMALL_MAPS;
  struct region* rg = xmalloc(nregions * sizeof *rg);
  void** malloc_raw = xmalloc(nchunks * sizeof(void*));
  for (size_t i = 0; i < nchunks; i++) {
    rg[i].pages = chunk_pages;
    malloc_raw[i] = xmalloc(chunk_pages * PAGE + PAGE);
    /* malloc need not page-align: use the page-aligned part. */
    rg[i].base = (uint64_t*)(((uintptr_t)malloc_raw[i] + PAGE - 1) & ~(PAGE - 1));
  }
  rg[nchunks].pages = map_pages;
  rg[nchunks].base = xmmap(NULL, map_pages * PAGE);
  for (size_t i = 0; i < SMALL_MAPS; i++) {
    rg[nchunks + 1 + i].pages = SMALL_MAP_PAGES;
    rg[nchunks + 1 + i].base = xmmap(NULL, SMALL_MAP_PAGES * PAGE);
  }
  for (size_t i = 0; i < nregions; i++) {
    rg[i].id = (unsigned)i;
    rg[i].gen = xmalloc(rg[i].pages);
  }

  uint64_t digest = 0x9e3779b97f4a7c15ULL ^ t;
  /* Pass 0 writes everything; pass k rewrites about a third of the pages
   * (a different third each pass) and then verifies every page. */
  for (unsigned pass = 0; pass < wk->passes; pass++) {
    for (size_t r = 0; r < nregions; r++) {
      for (uint64_t i = 0; i < rg[r].pages; i++) {
        uint64_t p = visit_order(i, rg[r].pages, pass);
        if (pass == 0 || (mix64(p * 31 + r * 7 + pass) % 3) == 0)
          write_page(&rg[r], t, p, pass + 1);
      }
    }
    for (size_t r = 0; r < nregions; r++) {
      for (uint64_t i = 0; i < rg[r].pages; i++) {
        uint64_t p = visit_order(i, rg[r].pages, pass + 1);
        digest = check_page(&rg[r], t, p, digest);
      }
    }
  }

  /* madvise(MADV_DONTNEED) on part of the big mmap region: reads zero, then
   * can be written and read again; the rest of the region is untouched. */
  struct region* big = &rg[nchunks];
  size_t drop_from = big->pages / 4, drop_n = big->pages / 4;
  if (madvise((char*)big->base + drop_from * PAGE, drop_n * PAGE, MADV_DONTNEED) != 0) {
    fprintf(stderr, "mem_stress: madvise failed: %s\n", strerror(errno));
    exit(2);
  }
  check_zero("after MADV_DONTNEED", (char*)big->base + drop_from * PAGE, drop_n * PAGE, t);
  for (uint64_t p = drop_from; p < drop_from + drop_n; p += 2) write_page(big, t, p, 200);
  for (uint64_t p = 0; p < big->pages; p++) {
    if (p >= drop_from && p < drop_from + drop_n && (p - drop_from) % 2 == 1) {
      const volatile uint64_t* q = big->base + p * WORDS_PER_PAGE;
      check_zero("after MADV_DONTNEED (unwritten)", (const void*)q, PAGE, t);
      continue;
    }
    digest = check_page(big, t, p, digest);
  }

  /* munmap the small maps, map fresh memory (preferably at the same place):
   * it must read zero, never the old contents. */
  for (size_t i = 0; i < SMALL_MAPS; i++) {
    struct region* s = &rg[nchunks + 1 + i];
    void* old = s->base;
    if (munmap(old, s->pages * PAGE) != 0) {
      fprintf(stderr, "mem_stress: munmap failed: %s\n", strerror(errno));
      exit(2);
    }
    s->base = xmmap(old, s->pages * PAGE);
    check_zero("after munmap and mmap", s->base, s->pages * PAGE, t);
    for (uint64_t p = 0; p < s->pages; p++) write_page(s, t, p, 100 + (unsigned)i);
  }
  for (size_t i = 0; i < SMALL_MAPS; i++) {
    struct region* s = &rg[nchunks + 1 + i];
    for (uint64_t p = 0; p < s->pages; p++) digest = check_page(s, t, p, digest);
    munmap(s->base, s->pages * PAGE);
  }

  /* Free half of the malloc'd chunks; calloc'd memory (which may reuse
   * them) must read zero; the other half still holds its data. */
  for (size_t i = 0; i < nchunks; i += 2) {
    free(malloc_raw[i]);
    malloc_raw[i] = NULL;
  }
  for (int i = 0; i < 4; i++) {
    size_t n = (1UL << 20) << i;
    void* z = calloc(1, n);
    if (!z) {
      fprintf(stderr, "mem_stress: calloc failed\n");
      exit(2);
    }
    check_zero("calloc", z, n, t);
    memset(z, 0xa5, n);
    free(z);
  }

  /* realloc growth keeps the prefix. */
  size_t cur = 64 * 1024;
  unsigned char* buf = xmalloc(cur);
  for (size_t i = 0; i < cur; i++) buf[i] = (unsigned char)mix64(i ^ ((uint64_t)t << 40));
  while (cur < (16UL << 20)) {
    size_t next = cur * 2;
    unsigned char* nb = realloc(buf, next);
    if (!nb) {
      fprintf(stderr, "mem_stress: realloc failed\n");
      exit(2);
    }
    buf = nb;
    for (size_t i = 0; i < cur; i++) {
      unsigned char want = (unsigned char)mix64(i ^ ((uint64_t)t << 40));
      if (buf[i] != want)
        fail("after realloc", t, 0, i / PAGE, (unsigned)(i % PAGE), (void*)(buf + i), buf[i], want);
    }
    for (size_t i = cur; i < next; i++) buf[i] = (unsigned char)mix64(i ^ ((uint64_t)t << 40));
    cur = next;
  }
  for (size_t i = 0; i < cur; i += 8) digest = mix64(digest ^ buf[i]);
  free(buf);
  for (size_t i = 1; i < nchunks; i += 2) {
    for (uint64_t p = 0; p < rg[i].pages; p++) digest = check_page(&rg[i], t, p, digest);
  }

  /* mremap growth (may move): the old part is kept, the new part is zero. */
  size_t mr_pages = 256;
  struct region mr = {.pages = mr_pages, .id = 250, .gen = xmalloc(2 * mr_pages)};
  mr.base = xmmap(NULL, mr_pages * PAGE);
  for (uint64_t p = 0; p < mr_pages; p++) write_page(&mr, t, p, 7);
  void* grown = mremap(mr.base, mr_pages * PAGE, 2 * mr_pages * PAGE, MREMAP_MAYMOVE);
  if (grown == MAP_FAILED) {
    fprintf(stderr, "mem_stress: mremap failed: %s\n", strerror(errno));
    exit(2);
  }
  uint64_t* old_base = mr.base;
  mr.base = grown;
  for (uint64_t p = 0; p < mr_pages; p++) {
    /* The first word carries the address it was written at. */
    const volatile uint64_t* q = mr.base + p * WORDS_PER_PAGE;
    uint64_t want0 =
        pattern(t, mr.id, p, 0, 7) ^ (uint64_t)(uintptr_t)(old_base + p * WORDS_PER_PAGE);
    if (q[0] != want0) fail("after mremap", t, mr.id, p, 0, q, q[0], want0);
    for (unsigned w = 1; w < WORDS_PER_PAGE; w++) {
      uint64_t want = pattern(t, mr.id, p, w, 7);
      if (q[w] != want) fail("after mremap", t, mr.id, p, w, q + w, q[w], want);
      digest += q[w] * (2 * w + 1);
    }
    digest = mix64(digest);
  }
  check_zero("mremap new part", (char*)mr.base + mr_pages * PAGE, mr_pages * PAGE, t);
  munmap(mr.base, 2 * mr_pages * PAGE);
  free(mr.gen);

  munmap(big->base, big->pages * PAGE);
  for (size_t i = 0; i < nregions; i++) free(rg[i].gen);
  free(rg);
  for (size_t i = 0; i < nchunks; i++) free(malloc_raw[i]);
  free(malloc_raw);
  wk->digest = digest;
  return NULL;
}

int main(int argc, char** argv) {
  unsigned long mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;
  unsigned threads = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 4;
  unsigned passes = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 3;
  if (mib == 0 || threads == 0 || threads > 64 || passes == 0 || passes > 50) {
    fprintf(stderr, "usage: mem_stress [SIZE_MIB [THREADS(1-64) [PASSES(1-50)]]]\n");
    return 2;
  }
  struct worker* w = xmalloc(threads * sizeof *w);
  for (unsigned i = 0; i < threads; i++) {
    w[i].id = i;
    w[i].bytes = (mib << 20) / threads;
    w[i].passes = passes;
    w[i].digest = 0;
    int e = pthread_create(&w[i].tid, NULL, run_worker, &w[i]);
    if (e != 0) {
      fprintf(stderr, "mem_stress: pthread_create: %s\n", strerror(e));
      return 2;
    }
  }
  uint64_t digest = 0;
  for (unsigned i = 0; i < threads; i++) {
    pthread_join(w[i].tid, NULL);
    digest = mix64(digest ^ w[i].digest);
  }
  printf("mem_stress: size=%luMiB threads=%u passes=%u digest=%016" PRIx64 "\n", mib, threads,
         passes, digest);
  printf("OK\n");
  free(w);
  return 0;
}
