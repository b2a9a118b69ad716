/*
 * phoenix_gen: writes the deterministic inputs of the Phoenix-shaped programs
 * (the text of strmatch and the word counts comes from gentext).
 *
 *   phoenix_gen bmp OUT WIDTH HEIGHT SEED      24-bit BMP (histogram)
 *   phoenix_gen pairs OUT SIZE SEED            (x, y) byte pairs around a
 *                                              line, SIZE bytes (linreg)
 *   phoenix_gen points OUT N DIM SEED          N points of DIM int32 coordinates
 *                                              around a few centres (kmeans)
 *   phoenix_gen dmatrix OUT N SEED             N x N row-major doubles (matmul)
 *   phoenix_gen imatrix OUT ROWS COLS SEED     row-major int32 (pca)
 *   phoenix_gen keys OUT TEXT N SEED           N keys, one a line: words taken
 *                                              from TEXT and a few absent ones
 *                                              (strmatch)
 *
 * SIZE accepts K/M/G suffixes. The same arguments always give the same bytes.
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

static uint64_t parse_size(const char* s) {
  char* end;
  uint64_t v = strtoull(s, &end, 10);
  if (*end == 'k' || *end == 'K') v <<= 10;
  if (*end == 'm' || *end == 'M') v <<= 20;
  if (*end == 'g' || *end == 'G') v <<= 30;
  return v;
}

static FILE* out;
static const char* out_path;

static void put(const void* p, size_t n) {
  if (fwrite(p, 1, n, out) != n) {
    fprintf(stderr, "phoenix_gen: %s: %s\n", out_path, strerror(errno));
    exit(2);
  }
}

static void put_le(uint64_t v, int bytes) {
  unsigned char b[8];
  for (int i = 0; i < bytes; i++) b[i] = (unsigned char)(v >> (8 * i));
  put(b, (size_t)bytes);
}

static int clamp255(long v) { return v < 0 ? 0 : v > 255 ? 255 : (int)v; }

/* A picture with structure (gradients and a few discs) and noise, so the
 * three channels' histograms differ and are far from uniform. */
static void gen_bmp(long w, long h) {
  long row = (w * 3 + 3) & ~3L;
  uint64_t pixels = (uint64_t)row * (uint64_t)h;
  put("BM", 2);
  put_le(54 + pixels, 4);
  put_le(0, 4);
  put_le(54, 4); /* pixel data offset */
  put_le(40, 4); /* BITMAPINFOHEADER */
  put_le((uint64_t)w, 4);
  put_le((uint64_t)h, 4);
  put_le(1, 2);  /* planes */
  put_le(24, 2); /* bits per pixel */
  put_le(0, 4);  /* BI_RGB */
  put_le(pixels, 4);
  put_le(2835, 4);
  put_le(2835, 4);
  put_le(0, 4);
  put_le(0, 4);
  long cx[4], cy[4], r2[4];
  for (int d = 0; d < 4; d++) {
    cx[d] = (long)(next_random() % (uint64_t)w);
    cy[d] = (long)(next_random() % (uint64_t)h);
    long r = 1 + (long)(next_random() % (uint64_t)(w / 4 + 1));
    r2[d] = r * r;
  }
  unsigned char* line = calloc((size_t)row, 1);
  if (!line) exit(2);
  for (long y = 0; y < h; y++) {
    for (long x = 0; x < w; x++) {
      uint64_t n = next_random();
      long b = x * 255 / w + (long)(n & 15) - 8;
      long g = y * 255 / h + (long)((n >> 4) & 31) - 16;
      long r = ((x + y) * 97 / (w + h)) + (long)((n >> 9) % 60);
      for (int d = 0; d < 4; d++) {
        long dx = x - cx[d], dy = y - cy[d];
        if (dx * dx + dy * dy < r2[d]) r += 80 + 20 * d, g -= 40;
      }
      line[x * 3] = (unsigned char)clamp255(b);
      line[x * 3 + 1] = (unsigned char)clamp255(g);
      line[x * 3 + 2] = (unsigned char)clamp255(r);
    }
    put(line, (size_t)row);
  }
  free(line);
}

/* y = 3/4 x + 20 plus noise, clamped to a byte. */
static void gen_pairs(uint64_t size) {
  unsigned char buf[4096];
  for (uint64_t done = 0; done < size;) {
    size_t n = size - done < sizeof buf ? (size_t)(size - done) : sizeof buf;
    for (size_t i = 0; i + 1 < n; i += 2) {
      uint64_t r = next_random();
      long x = (long)(r & 255);
      long y = x * 3 / 4 + 20 + (long)((r >> 8) % 41) - 20;
      buf[i] = (unsigned char)x;
      buf[i + 1] = (unsigned char)clamp255(y);
    }
    if (n & 1) buf[n - 1] = (unsigned char)next_random();
    put(buf, n);
    done += n;
  }
}

static void gen_points(long n, long dim) {
  enum { CENTRES = 12 };
  int32_t centre[CENTRES][64];
  if (dim < 1 || dim > 64) {
    fprintf(stderr, "phoenix_gen: DIM must be 1..64\n");
    exit(2);
  }
  for (int c = 0; c < CENTRES; c++)
    for (long d = 0; d < dim; d++) centre[c][d] = (int32_t)(next_random() % 1000);
  int32_t p[64];
  for (long i = 0; i < n; i++) {
    int c = (int)(next_random() % CENTRES);
    for (long d = 0; d < dim; d++) p[d] = centre[c][d] + (int32_t)(next_random() % 201) - 100;
    put(p, (size_t)dim * sizeof(int32_t));
  }
}

/* Quarter-integers in [-4, 4]: every product and sum the multiply makes is
 * exact in a double, so the result does not depend on the summation order. */
static void gen_dmatrix(long n) {
  for (long i = 0; i < n * n; i++) {
    double v = (double)((long)(next_random() % 33) - 16) / 4.0;
    put(&v, sizeof v);
  }
}

static void gen_imatrix(long rows, long cols) {
  for (long i = 0; i < rows; i++) {
    long base = (long)(next_random() % 200);
    for (long j = 0; j < cols; j++) {
      int32_t v = (int32_t)(base + (long)(next_random() % 100) + (j % 7) * (i % 5));
      put(&v, sizeof v);
    }
  }
}

static int is_letter(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* Keys: words found at random places of TEXT (lowercased), and every fifth
 * one a made-up word that should match nothing. */
static void gen_keys(const char* text_path, long n) {
  FILE* t = fopen(text_path, "r");
  if (!t) {
    fprintf(stderr, "phoenix_gen: %s: %s\n", text_path, strerror(errno));
    exit(2);
  }
  fseek(t, 0, SEEK_END);
  long size = ftell(t);
  if (size < 64) {
    fprintf(stderr, "phoenix_gen: %s is too small\n", text_path);
    exit(2);
  }
  for (long k = 0; k < n; k++) {
    char word[32];
    size_t len = 0;
    if (k % 5 == 4) {
      len = 13 + next_random() % 6; /* longer than any gentext word */
      for (size_t i = 0; i < len; i++) word[i] = (char)('a' + next_random() % 26);
    } else {
      while (len == 0) {
        fseek(t, (long)(next_random() % (uint64_t)(size - 32)), SEEK_SET);
        int c;
        while ((c = fgetc(t)) != EOF && is_letter(c)) {
        } /* skip the rest of a word we landed in */
        while ((c = fgetc(t)) != EOF && !is_letter(c)) {
        }
        while (c != EOF && is_letter(c) && len < 30) {
          word[len++] = (char)(c | 0x20);
          c = fgetc(t);
        }
      }
    }
    word[len++] = '\n';
    put(word, len);
  }
  fclose(t);
}

static void usage(void) {
  fprintf(stderr,
          "usage: phoenix_gen bmp OUT WIDTH HEIGHT SEED | pairs OUT SIZE SEED |\n"
          "       points OUT N DIM SEED | dmatrix OUT N SEED | imatrix OUT ROWS COLS SEED |\n"
          "       keys OUT TEXT N SEED\n");
  exit(2);
}

int main(int argc, char** argv) {
  if (argc < 3) usage();
  const char* cmd = argv[1];
  static const struct {
    const char* name;
    int args; /* after OUT, the seed included */
  } cmds[] = {{"bmp", 3}, {"pairs", 2}, {"points", 3}, {"dmatrix", 2}, {"imatrix", 3}, {"keys", 3}};
  int ok = 0;
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
    if (strcmp(cmd, cmds[i].name) == 0) ok = argc == 3 + cmds[i].args;
  if (!ok) usage();
  rng_state = strtoull(argv[argc - 1], NULL, 10);
  out_path = argv[2];
  out = fopen(out_path, "w");
  if (!out) {
    fprintf(stderr, "phoenix_gen: %s: %s\n", out_path, strerror(errno));
    return 2;
  }
  long a = strtol(argv[3], NULL, 10);
  long b = argc > 5 ? strtol(argv[4], NULL, 10) : 0;
  if (strcmp(cmd, "bmp") == 0) {
    if (a < 1 || b < 1) usage();
    gen_bmp(a, b);
  } else if (strcmp(cmd, "pairs") == 0) {
    gen_pairs(parse_size(argv[3]));
  } else if (strcmp(cmd, "points") == 0) {
    gen_points(a, b);
  } else if (strcmp(cmd, "dmatrix") == 0) {
    gen_dmatrix(a);
  } else if (strcmp(cmd, "imatrix") == 0) {
    gen_imatrix(a, b);
  } else {
    gen_keys(argv[3], b);
  }
  if (fclose(out) != 0) {
    fprintf(stderr, "phoenix_gen: %s: %s\n", out_path, strerror(errno));
    return 2;
  }
  return 0;
}
