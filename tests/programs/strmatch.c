/*
 * strmatch: finds the words of a key file in a big text by hashing each word
 * of the text and comparing it with the keys' hashes.
 *
 *   strmatch KEYS TEXT [THREADS]
 *
 * KEYS holds one key a line (read into memory); TEXT is mapped MAP_PRIVATE
 * (read and write, like the original suite) and split into one chunk per
 * thread at word boundaries. A word is a maximal run of ASCII letters,
 * case-folded. Each thread hashes every word of its chunk (64-bit FNV-1a)
 * and, on a hash equal to a key's, compares the bytes; it counts the
 * matches of each key and the first offset where it matched. Reduce: counts
 * are added, first offsets are the minimum. Prints every key's count and
 * first offset (-1: absent) and the number of words scanned.
 */
#include <inttypes.h>

#include "phoenix.h"

#define MAX_KEYS 1024

struct key {
  char word[32];
  uint32_t len;
  uint64_t hash;
};

struct chunk {
  const char *begin, *end, *base;
  const struct key* keys;
  unsigned nkeys;
  uint64_t words;
  uint64_t count[MAX_KEYS];
  int64_t first[MAX_KEYS];
};

static int letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

static void* scan(void* arg) {
  struct chunk* ch = arg;
  for (unsigned k = 0; k < ch->nkeys; k++) ch->first[k] = -1;
  const char* p = ch->begin;
  while (p < ch->end) {
    while (p < ch->end && !letter(*p)) p++;
    const char* s = p;
    uint64_t h = PHX_FNV_INIT;
    while (p < ch->end && letter(*p)) h = (h ^ (unsigned char)(*p++ | 0x20)) * 1099511628211ULL;
    if (p == s) continue;
    ch->words++;
    uint32_t len = (uint32_t)(p - s);
    for (unsigned k = 0; k < ch->nkeys; k++) {
      const struct key* key = &ch->keys[k];
      if (key->hash != h || key->len != len) continue;
      uint32_t i = 0;
      while (i < len && (s[i] | 0x20) == key->word[i]) i++;
      if (i < len) continue;
      if (ch->count[k]++ == 0) ch->first[k] = s - ch->base;
    }
  }
  return NULL;
}

int main(int argc, char** argv) {
  phx_prog = "strmatch";
  if (argc < 3 || argc > 4) {
    fprintf(stderr, "usage: strmatch KEYS TEXT [THREADS]\n");
    return 2;
  }
  unsigned threads = phx_threads(argc > 3 ? argv[3] : NULL);
  size_t ksize;
  char* ktext = phx_read_file(argv[1], &ksize);
  struct key* keys = phx_calloc(MAX_KEYS, sizeof *keys);
  unsigned nkeys = 0;
  for (size_t i = 0; i < ksize;) {
    size_t e = i;
    while (e < ksize && ktext[e] != '\n') e++;
    if (e > i) {
      if (nkeys == MAX_KEYS || e - i >= sizeof keys->word) phx_die("too many or too long keys");
      struct key* k = &keys[nkeys++];
      k->len = (uint32_t)(e - i);
      k->hash = PHX_FNV_INIT;
      for (size_t j = 0; j < k->len; j++) {
        k->word[j] = (char)(ktext[i + j] | 0x20);
        k->hash = (k->hash ^ (unsigned char)k->word[j]) * 1099511628211ULL;
      }
    }
    i = e + 1;
  }
  size_t size;
  const char* text = phx_map_private(argv[2], &size);
  struct chunk* ch = phx_calloc(threads, sizeof *ch);
  const char *pos = text, *end = text + size;
  for (unsigned t = 0; t < threads; t++) {
    const char* cut = t + 1 == threads ? end : text + size / threads * (t + 1);
    if (cut < pos) cut = pos;
    while (cut < end && letter(*cut)) cut++;
    ch[t] = (struct chunk){.begin = pos, .end = cut, .base = text, .keys = keys, .nkeys = nkeys};
    pos = cut;
  }
  phx_run(threads, scan, ch, sizeof *ch);

  uint64_t words = 0, found = 0;
  for (unsigned t = 0; t < threads; t++) words += ch[t].words;
  for (unsigned k = 0; k < nkeys; k++) {
    uint64_t count = 0;
    int64_t first = -1;
    for (unsigned t = 0; t < threads; t++) {
      count += ch[t].count[k];
      if (ch[t].first[k] >= 0 && (first < 0 || ch[t].first[k] < first)) first = ch[t].first[k];
    }
    found += count != 0;
    printf("%-20.*s %10" PRIu64 " first at %" PRId64 "\n", (int)keys[k].len, keys[k].word, count,
           first);
  }
  printf("keys: %u, found: %" PRIu64 ", words scanned: %" PRIu64 "\n", nkeys, found, words);
  free(ch), free(keys), free(ktext);
  munmap((void*)text, size);
  return 0;
}
