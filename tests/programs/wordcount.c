/*
 * wordcount: a Phoenix-style word count.
 *
 *   wordcount FILE [THREADS [TOP]]      defaults: 4 threads, top 20
 *
 * Like Phoenix's word_count it maps its input MAP_PRIVATE with
 * PROT_READ|PROT_WRITE and rewrites it in place (here: lowercases it), so the
 * private file mapping gets written. The input is split into one chunk per
 * worker at word boundaries (map); each worker counts into its own hash table
 * in malloc'd memory; the tables are merged (reduce), sorted by count
 * (descending) then word, and the top words and the totals are printed.
 *
 * A word is a maximal run of ASCII letters, case-folded: the same as
 * `tr 'A-Z' 'a-z' | tr -cs 'a-z' '\n' | sort | uniq -c`.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct entry {
  const char* word; /* points into the mapped, lowercased input */
  uint32_t len;
  uint32_t hash;
  uint64_t count;
};

struct table {
  struct entry* slots;
  size_t cap; /* power of two */
  size_t used;
};

struct worker {
  pthread_t tid;
  char* begin;
  char* end;
  struct table tab;
  uint64_t words;
};

static void* xcalloc(size_t n, size_t size) {
  void* p = calloc(n, size);
  if (!p) {
    fprintf(stderr, "wordcount: out of memory\n");
    exit(2);
  }
  return p;
}

static uint32_t hash_word(const char* s, uint32_t len) {
  uint32_t h = 2166136261u;
  for (uint32_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

static void table_init(struct table* t, size_t cap) {
  t->cap = cap;
  t->used = 0;
  t->slots = xcalloc(cap, sizeof *t->slots);
}

static void table_add(struct table* t, const char* w, uint32_t len, uint32_t h, uint64_t n);

static void table_grow(struct table* t) {
  struct table bigger;
  table_init(&bigger, t->cap * 2);
  for (size_t i = 0; i < t->cap; i++) {
    struct entry* e = &t->slots[i];
    if (e->word) table_add(&bigger, e->word, e->len, e->hash, e->count);
  }
  free(t->slots);
  *t = bigger;
}

static void table_add(struct table* t, const char* w, uint32_t len, uint32_t h, uint64_t n) {
  if ((t->used + 1) * 4 > t->cap * 3) table_grow(t);
  size_t mask = t->cap - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    struct entry* e = &t->slots[i];
    if (!e->word) {
      e->word = w;
      e->len = len;
      e->hash = h;
      e->count = n;
      t->used++;
      return;
    }
    if (e->hash == h && e->len == len && memcmp(e->word, w, len) == 0) {
      e->count += n;
      return;
    }
  }
}

static int is_letter(char c) { return c >= 'a' && c <= 'z'; }

static void* map_chunk(void* arg) {
  struct worker* wk = arg;
  table_init(&wk->tab, 1024);
  char* p = wk->begin;
  while (p < wk->end) {
    while (p < wk->end && !is_letter(*p)) p++;
    char* s = p;
    while (p < wk->end && is_letter(*p)) p++;
    if (p > s) {
      uint32_t len = (uint32_t)(p - s);
      table_add(&wk->tab, s, len, hash_word(s, len), 1);
      wk->words++;
    }
  }
  return NULL;
}

static int by_count_then_word(const void* a, const void* b) {
  const struct entry* x = a;
  const struct entry* y = b;
  if (x->count != y->count) return x->count > y->count ? -1 : 1;
  uint32_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->word, y->word, n);
  if (c != 0) return c;
  return (x->len > y->len) - (x->len < y->len);
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: wordcount FILE [THREADS [TOP]]\n");
    return 2;
  }
  unsigned threads = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 4;
  unsigned top = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 20;
  if (threads == 0 || threads > 64) {
    fprintf(stderr, "wordcount: THREADS must be 1..64\n");
    return 2;
  }
  int fd = open(argv[1], O_RDONLY);
  if (fd < 0) {
    fprintf(stderr, "wordcount: %s: %s\n", argv[1], strerror(errno));
    return 2;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size == 0) {
    fprintf(stderr, "wordcount: %s: empty or unreadable\n", argv[1]);
    return 2;
  }
  size_t size = (size_t)st.st_size;
  char* data = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  if (data == MAP_FAILED) {
    fprintf(stderr, "wordcount: mmap: %s\n", strerror(errno));
    return 2;
  }
  close(fd);

  /* Lowercase in place: writes to the private file mapping. */
  for (size_t i = 0; i < size; i++) {
    char c = data[i];
    if (c >= 'A' && c <= 'Z') data[i] = (char)(c - 'A' + 'a');
  }

  /* Split at word boundaries. */
  struct worker* w = xcalloc(threads, sizeof *w);
  char* pos = data;
  char* end = data + size;
  for (unsigned i = 0; i < threads; i++) {
    w[i].begin = pos;
    char* cut = i + 1 == threads ? end : data + size / threads * (i + 1);
    if (cut < pos) cut = pos;
    while (cut < end && is_letter(*cut)) cut++;
    w[i].end = cut;
    pos = cut;
  }
  for (unsigned i = 0; i < threads; i++) {
    int e = pthread_create(&w[i].tid, NULL, map_chunk, &w[i]);
    if (e != 0) {
      fprintf(stderr, "wordcount: pthread_create: %s\n", strerror(e));
      return 2;
    }
  }
  for (unsigned i = 0; i < threads; i++) pthread_join(w[i].tid, NULL);

  /* Reduce. */
  struct table all;
  table_init(&all, 4096);
  uint64_t total = 0;
  for (unsigned i = 0; i < threads; i++) {
    total += w[i].words;
    for (size_t j = 0; j < w[i].tab.cap; j++) {
      struct entry* e = &w[i].tab.slots[j];
      if (e->word) table_add(&all, e->word, e->len, e->hash, e->count);
    }
    free(w[i].tab.slots);
  }
  struct entry* list = xcalloc(all.used ? all.used : 1, sizeof *list);
  size_t n = 0;
  for (size_t j = 0; j < all.cap; j++)
    if (all.slots[j].word) list[n++] = all.slots[j];
  qsort(list, n, sizeof *list, by_count_then_word);

  /* A digest of the whole sorted result and of the rewritten input, so the
   * output covers more than the top of the list. */
  uint64_t result_digest = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++) {
    for (uint32_t k = 0; k < list[i].len; k++)
      result_digest = (result_digest ^ (unsigned char)list[i].word[k]) * 1099511628211ULL;
    result_digest = (result_digest ^ list[i].count) * 1099511628211ULL;
  }
  uint64_t text_digest = 1469598103934665603ULL;
  for (size_t i = 0; i < size; i++)
    text_digest = (text_digest ^ (unsigned char)data[i]) * 1099511628211ULL;

  for (size_t i = 0; i < n && i < top; i++)
    printf("%10" PRIu64 " %.*s\n", list[i].count, (int)list[i].len, list[i].word);
  printf("total words: %" PRIu64 "\n", total);
  printf("distinct words: %zu\n", n);
  printf("result digest: %016" PRIx64 "\n", result_digest);
  printf("lowercased text digest: %016" PRIx64 "\n", text_digest);

  free(list);
  free(all.slots);
  free(w);
  munmap(data, size);
  return 0;
}
