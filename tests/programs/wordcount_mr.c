/*
 * wordcount_mr: word count in the MapReduce shape, with a large
 * intermediate table (the counterpart of wordcount, which keeps per-thread
 * hash tables).
 *
 *   wordcount_mr FILE [THREADS [TOP]]
 *
 * The input is mapped MAP_PRIVATE and lowercased in place, then split into
 * one chunk per thread at word boundaries. Map: each thread emits a
 * (word, 1) pair for every word of its chunk into its own intermediate
 * array (16 bytes a word: several times the input's size in all), then sorts
 * that array by (hash, length, bytes) through a second array of its size. Reduce: the sorted arrays
 * are merged, equal words grouped and their counts added. The result is sorted by count
 * (descending) then word and printed exactly as wordcount prints it, so the
 * two programs' outputs must be identical.
 */
#include <inttypes.h>

#include "phoenix.h"

struct pair {
  uint32_t offset; /* of the word in the input */
  uint32_t hash;
  uint32_t len;
  uint32_t count;
};

static const char* text;

struct mapper {
  const char *begin, *end;
  struct pair* out;
  size_t n, cap;
};

static int letter(char c) { return c >= 'a' && c <= 'z'; }

static int by_key(const void* a, const void* b) {
  const struct pair* x = a;
  const struct pair* y = b;
  if (x->hash != y->hash) return x->hash < y->hash ? -1 : 1;
  if (x->len != y->len) return x->len < y->len ? -1 : 1;
  return memcmp(text + x->offset, text + y->offset, x->len);
}

/* Sorts pairs by_key: a radix sort on the hash (four 8-bit passes through a
 * second array as large as the first, the shuffle of this MapReduce), then
 * each run of equal hashes that holds more than one word (a collision) is
 * sorted by length and bytes. */
static void sort_pairs(struct pair* v, size_t n) {
  struct pair* tmp = malloc((n ? n : 1) * sizeof *tmp);
  if (!tmp) phx_die("out of memory");
  struct pair *from = v, *to = tmp;
  for (int shift = 0; shift < 32; shift += 8) {
    size_t start[257] = {0};
    for (size_t i = 0; i < n; i++) start[((from[i].hash >> shift) & 255) + 1]++;
    for (int b = 0; b < 256; b++) start[b + 1] += start[b];
    for (size_t i = 0; i < n; i++) to[start[(from[i].hash >> shift) & 255]++] = from[i];
    struct pair* t = from;
    from = to;
    to = t;
  }
  free(tmp); /* four passes: the result is back in v */
  for (size_t i = 0; i < n;) {
    size_t e = i + 1;
    int mixed = 0;
    for (; e < n && v[e].hash == v[i].hash; e++) mixed |= by_key(&v[i], &v[e]) != 0;
    if (mixed) qsort(v + i, e - i, sizeof *v, by_key);
    i = e;
  }
}

static void* map_and_sort(void* arg) {
  struct mapper* m = arg;
  m->cap = (size_t)(m->end - m->begin) / 4 + 16;
  m->out = malloc(m->cap * sizeof *m->out);
  if (!m->out) phx_die("out of memory");
  const char* p = m->begin;
  while (p < m->end) {
    while (p < m->end && !letter(*p)) p++;
    const char* s = p;
    uint32_t h = 2166136261u;
    while (p < m->end && letter(*p)) h = (h ^ (unsigned char)*p++) * 16777619u;
    if (p == s) continue;
    if (m->n == m->cap) {
      m->cap *= 2;
      m->out = realloc(m->out, m->cap * sizeof *m->out);
      if (!m->out) phx_die("out of memory");
    }
    m->out[m->n++] = (struct pair){(uint32_t)(s - text), h, (uint32_t)(p - s), 1};
  }
  sort_pairs(m->out, m->n);
  return NULL;
}

static int by_count_then_word(const void* a, const void* b) {
  const struct pair* x = a;
  const struct pair* y = b;
  if (x->count != y->count) return x->count > y->count ? -1 : 1;
  uint32_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(text + x->offset, text + y->offset, n);
  if (c != 0) return c;
  return (x->len > y->len) - (x->len < y->len);
}

int main(int argc, char** argv) {
  phx_prog = "wordcount_mr";
  if (argc < 2 || argc > 4) {
    fprintf(stderr, "usage: wordcount_mr FILE [THREADS [TOP]]\n");
    return 2;
  }
  unsigned threads = phx_threads(argc > 2 ? argv[2] : NULL);
  unsigned top = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 20;
  size_t size;
  char* data = phx_map_private(argv[1], &size);
  if (size > UINT32_MAX) phx_die("input larger than 4 GiB");
  text = data;
  for (size_t i = 0; i < size; i++)
    if (data[i] >= 'A' && data[i] <= 'Z') data[i] = (char)(data[i] - 'A' + 'a');

  struct mapper* m = phx_calloc(threads, sizeof *m);
  const char *pos = data, *end = data + size;
  for (unsigned t = 0; t < threads; t++) {
    const char* cut = t + 1 == threads ? end : data + size / threads * (t + 1);
    if (cut < pos) cut = pos;
    while (cut < end && letter(*cut)) cut++;
    m[t].begin = pos, m[t].end = cut;
    pos = cut;
  }
  phx_run(threads, map_and_sort, m, sizeof *m);

  /* Reduce: merge the sorted runs, one group of equal words at a time. */
  size_t total = 0;
  for (unsigned t = 0; t < threads; t++) total += m[t].n;
  struct pair* result = phx_calloc(total, sizeof *result);
  size_t n = 0, at[PHX_MAX_THREADS] = {0};
  for (;;) {
    int best = -1;
    for (unsigned t = 0; t < threads; t++)
      if (at[t] < m[t].n && (best < 0 || by_key(&m[t].out[at[t]], &m[best].out[at[best]]) < 0))
        best = (int)t;
    if (best < 0) break;
    struct pair p = m[best].out[at[best]++];
    if (n > 0 && by_key(&result[n - 1], &p) == 0)
      result[n - 1].count += p.count;
    else
      result[n++] = p;
  }
  qsort(result, n, sizeof *result, by_count_then_word);

  uint64_t result_digest = PHX_FNV_INIT;
  for (size_t i = 0; i < n; i++) {
    result_digest = phx_fnv(result_digest, text + result[i].offset, result[i].len);
    result_digest = (result_digest ^ result[i].count) * 1099511628211ULL;
  }
  uint64_t text_digest = phx_fnv(PHX_FNV_INIT, data, size);
  for (size_t i = 0; i < n && i < top; i++)
    printf("%10" PRIu32 " %.*s\n", result[i].count, (int)result[i].len, text + result[i].offset);
  printf("total words: %zu\n", total);
  printf("distinct words: %zu\n", n);
  printf("result digest: %016" PRIx64 "\n", result_digest);
  printf("lowercased text digest: %016" PRIx64 "\n", text_digest);
  for (unsigned t = 0; t < threads; t++) free(m[t].out);
  free(m), free(result);
  munmap(data, size);
  return 0;
}
