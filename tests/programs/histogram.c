/*
 * histogram: the red, green and blue histograms of a 24-bit BMP,
 * MapReduce-shaped.
 *
 *   histogram FILE.bmp [THREADS]
 *
 * The image is mapped MAP_PRIVATE (read and write, like the original suite).
 * Map: each thread counts one band of pixel rows into its own three
 * 256-bin histograms. Reduce: the partial histograms are added up. Prints
 * each channel's non-empty bin count, mean and most frequent value, every
 * 16th bin, and a digest of all 768 bins.
 */
#include <inttypes.h>

#include "phoenix.h"

struct band {
  const unsigned char* pixels;
  size_t row_bytes;
  long width;
  long first_row, rows;
  uint64_t count[3][256]; /* blue, green, red (BMP order) */
};

static void* count_band(void* arg) {
  struct band* b = arg;
  for (long y = b->first_row; y < b->first_row + b->rows; y++) {
    const unsigned char* p = b->pixels + (size_t)y * b->row_bytes;
    for (long x = 0; x < b->width; x++, p += 3) {
      b->count[0][p[0]]++;
      b->count[1][p[1]]++;
      b->count[2][p[2]]++;
    }
  }
  return NULL;
}

static uint32_t le32(const unsigned char* p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int main(int argc, char** argv) {
  phx_prog = "histogram";
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: histogram FILE.bmp [THREADS]\n");
    return 2;
  }
  unsigned threads = phx_threads(argc > 2 ? argv[2] : NULL);
  size_t size;
  unsigned char* data = (unsigned char*)phx_map_private(argv[1], &size);
  if (size < 54 || data[0] != 'B' || data[1] != 'M') phx_die("not a BMP file");
  uint32_t offset = le32(data + 10);
  long width = (long)(int32_t)le32(data + 18);
  long height = (long)(int32_t)le32(data + 22);
  if (height < 0) height = -height; /* top-down rows: same pixels */
  unsigned bpp = data[28] | data[29] << 8;
  size_t row_bytes = ((size_t)width * 3 + 3) & ~(size_t)3;
  if (bpp != 24 || width <= 0 || offset + row_bytes * (size_t)height > size)
    phx_die("not an uncompressed 24-bit BMP");

  struct band* bands = phx_calloc(threads, sizeof *bands);
  long per = height / threads, extra = height % threads, row = 0;
  for (unsigned i = 0; i < threads; i++) {
    bands[i].pixels = data + offset;
    bands[i].row_bytes = row_bytes;
    bands[i].width = width;
    bands[i].first_row = row;
    bands[i].rows = per + ((long)i < extra);
    row += bands[i].rows;
  }
  phx_run(threads, count_band, bands, sizeof *bands);

  uint64_t hist[3][256] = {{0}};
  for (unsigned i = 0; i < threads; i++)
    for (int c = 0; c < 3; c++)
      for (int v = 0; v < 256; v++) hist[c][v] += bands[i].count[c][v];

  static const char* names[3] = {"blue", "green", "red"};
  uint64_t digest = PHX_FNV_INIT;
  printf("image %ldx%ld, %" PRIu64 " pixels\n", width, height, (uint64_t)width * (uint64_t)height);
  for (int c = 2; c >= 0; c--) {
    uint64_t sum = 0, n = 0, used = 0;
    int mode = 0;
    for (int v = 0; v < 256; v++) {
      sum += hist[c][v] * (uint64_t)v;
      n += hist[c][v];
      used += hist[c][v] != 0;
      if (hist[c][v] > hist[c][mode]) mode = v;
      digest = phx_fnv_u64(digest, hist[c][v]);
    }
    printf("%-5s: %3" PRIu64 " values used, mean %.4f, mode %d (%" PRIu64 " pixels)\n", names[c],
           used, n ? (double)sum / (double)n : 0.0, mode, hist[c][mode]);
    printf("%-5s:", names[c]);
    for (int v = 0; v < 256; v += 16) printf(" %" PRIu64, hist[c][v]);
    printf("\n");
  }
  printf("histogram digest: %016" PRIx64 "\n", digest);
  free(bands);
  munmap(data, size);
  return 0;
}
