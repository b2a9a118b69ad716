/*
 * gentext: writes a deterministic text file of exactly SIZE bytes whose words
 * follow a Zipf-like distribution over a generated vocabulary.
 *
 *   gentext OUTPUT SIZE [SEED [VOCABULARY]]    SIZE accepts K/M/G suffixes;
 *                                              defaults: seed 1, 50000 words
 *
 * Words are 1-12 ASCII letters; some occurrences are capitalized or upper
 * case, and words are separated by spaces, punctuation and newlines, so a word
 * counter has to case-fold and split on non-letters.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state;

static uint64_t next_random(void) { /* splitmix64 */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static double next_unit(void) { return (double)(next_random() >> 11) / 9007199254740992.0; }

static uint64_t parse_size(const char* s) {
  char* end;
  uint64_t v = strtoull(s, &end, 10);
  switch (*end) {
    case 'k':
    case 'K':
      v <<= 10;
      break;
    case 'm':
    case 'M':
      v <<= 20;
      break;
    case 'g':
    case 'G':
      v <<= 30;
      break;
    default:
      break;
  }
  return v;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: gentext OUTPUT SIZE [SEED [VOCABULARY]]\n");
    return 2;
  }
  uint64_t size = parse_size(argv[2]);
  rng_state = argc > 3 ? strtoull(argv[3], NULL, 10) : 1;
  size_t vocab = argc > 4 ? strtoul(argv[4], NULL, 10) : 50000;
  if (size == 0 || vocab == 0) {
    fprintf(stderr, "gentext: SIZE and VOCABULARY must be positive\n");
    return 2;
  }

  /* The vocabulary: word r has length 1..12, shorter words more frequent. */
  char(*words)[13] = calloc(vocab, 13);
  double* cdf = calloc(vocab, sizeof(double));
  if (!words || !cdf) {
    fprintf(stderr, "gentext: out of memory\n");
    return 2;
  }
  double sum = 0;
  for (size_t r = 0; r < vocab; r++) {
    unsigned len = 1 + (unsigned)(next_random() % 4) + (unsigned)(r > 50 ? next_random() % 5 : 0) +
                   (unsigned)(r > 5000 ? next_random() % 4 : 0);
    for (unsigned i = 0; i < len; i++) words[r][i] = (char)('a' + next_random() % 26);
    words[r][len] = 0;
    sum += 1.0 / ((double)r + 1.0); /* Zipf, exponent 1 */
    cdf[r] = sum;
  }

  FILE* out = fopen(argv[1], "w");
  if (!out) {
    fprintf(stderr, "gentext: %s: %s\n", argv[1], strerror(errno));
    return 2;
  }
  static const char seps[] = "     ,.;:!?-'\"()";
  char line[256];
  uint64_t written = 0;
  size_t col = 0;
  while (written < size) {
    double u = next_unit() * sum;
    size_t lo = 0, hi = vocab - 1;
    while (lo < hi) { /* first rank whose cdf >= u */
      size_t mid = (lo + hi) / 2;
      if (cdf[mid] < u)
        lo = mid + 1;
      else
        hi = mid;
    }
    char w[16];
    size_t len = strlen(words[lo]);
    memcpy(w, words[lo], len + 1);
    uint64_t c = next_random() % 100;
    if (c < 8) {
      w[0] = (char)(w[0] - 'a' + 'A');
    } else if (c < 10) {
      for (size_t i = 0; i < len; i++) w[i] = (char)(w[i] - 'a' + 'A');
    }
    size_t n = 0;
    memcpy(line, w, len);
    n = len;
    uint64_t s = next_random() % 100;
    if (s < 80) {
      line[n++] = ' ';
    } else {
      line[n++] = seps[next_random() % (sizeof seps - 1)];
      line[n++] = ' ';
    }
    col += n;
    if (col > 72) {
      line[n - 1] = '\n';
      col = 0;
    }
    if (written + n > size) n = (size_t)(size - written);
    if (fwrite(line, 1, n, out) != n) {
      fprintf(stderr, "gentext: write failed: %s\n", strerror(errno));
      return 2;
    }
    written += n;
  }
  if (fclose(out) != 0) {
    fprintf(stderr, "gentext: close failed: %s\n", strerror(errno));
    return 2;
  }
  free(words);
  free(cdf);
  return 0;
}
