/*
 * linreg: least-squares line through (x, y) byte pairs, MapReduce-shaped.
 *
 *   linreg FILE [THREADS]
 *
 * The file is mapped MAP_PRIVATE (read and write, like the original suite)
 * and read as consecutive (x, y) byte pairs. Map: each thread sums n, x, y,
 * x*x, y*y and x*y over its share of the pairs, in integers. Reduce: the
 * partial sums are added up, and the slope, intercept and correlation
 * computed from the totals (so they do not depend on the thread count).
 */
#include <inttypes.h>
#include <math.h>

#include "phoenix.h"

struct part {
  const unsigned char* pairs;
  size_t first, count; /* in pairs */
  uint64_t n, sx, sy, sxx, syy, sxy;
};

static void* sum_part(void* arg) {
  struct part* p = arg;
  uint64_t sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
  const unsigned char* q = p->pairs + 2 * p->first;
  for (size_t i = 0; i < p->count; i++, q += 2) {
    uint64_t x = q[0], y = q[1];
    sx += x;
    sy += y;
    sxx += x * x;
    syy += y * y;
    sxy += x * y;
  }
  p->n = p->count;
  p->sx = sx, p->sy = sy, p->sxx = sxx, p->syy = syy, p->sxy = sxy;
  return NULL;
}

int main(int argc, char** argv) {
  phx_prog = "linreg";
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: linreg FILE [THREADS]\n");
    return 2;
  }
  unsigned threads = phx_threads(argc > 2 ? argv[2] : NULL);
  size_t size;
  const unsigned char* data = (const unsigned char*)phx_map_private(argv[1], &size);
  size_t pairs = size / 2;
  if (pairs < 2) phx_die("need at least two pairs");

  struct part* parts = phx_calloc(threads, sizeof *parts);
  size_t at = 0;
  for (unsigned i = 0; i < threads; i++) {
    parts[i].pairs = data;
    parts[i].first = at;
    parts[i].count = pairs / threads + (i < pairs % threads);
    at += parts[i].count;
  }
  phx_run(threads, sum_part, parts, sizeof *parts);

  uint64_t n = 0, sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
  for (unsigned i = 0; i < threads; i++) {
    n += parts[i].n, sx += parts[i].sx, sy += parts[i].sy;
    sxx += parts[i].sxx, syy += parts[i].syy, sxy += parts[i].sxy;
  }
  double dn = (double)n;
  double vx = dn * (double)sxx - (double)sx * (double)sx;
  double vy = dn * (double)syy - (double)sy * (double)sy;
  double cxy = dn * (double)sxy - (double)sx * (double)sy;
  double slope = vx != 0 ? cxy / vx : 0;
  double intercept = ((double)sy - slope * (double)sx) / dn;
  double r = vx > 0 && vy > 0 ? cxy / sqrt(vx * vy) : 0;
  printf("pairs: %" PRIu64 "\n", n);
  printf("sums: x %" PRIu64 " y %" PRIu64 " xx %" PRIu64 " yy %" PRIu64 " xy %" PRIu64 "\n", sx, sy,
         sxx, syy, sxy);
  printf("y = %.6f x + %.6f, r = %.6f\n", slope, intercept, r);
  free(parts);
  munmap((void*)data, size);
  return 0;
}
