/*
 * kmeans: k-means clustering of integer points, iterated over the whole
 * point array.
 *
 *   kmeans POINTS DIM K ITERATIONS [THREADS]
 *
 * POINTS holds int32 coordinates, DIM per point (phoenix_gen points); they
 * are read into malloc'd memory. The first K points are the initial means.
 * Each iteration: every thread assigns its share of the points to the
 * nearest mean (squared Euclidean distance, ties to the lower index),
 * recording the cluster of each point in a per-point array, and sums its
 * points per cluster; the sums are reduced and each mean becomes its
 * cluster's integer average. Stops after ITERATIONS iterations or once no
 * point changes cluster. Prints the iterations run, the points that moved
 * in each, and the final means and cluster sizes. All integer arithmetic:
 * the result does not depend on the thread count.
 */
#include <inttypes.h>

#include "phoenix.h"

struct shard {
  const int32_t* points;
  int32_t* cluster; /* per point; -1 before the first iteration */
  const int64_t* means;
  size_t first, count;
  long dim, k;
  int64_t* sums; /* k * dim */
  uint64_t* sizes;
  uint64_t moved;
};

static void* assign(void* arg) {
  struct shard* s = arg;
  memset(s->sums, 0, (size_t)(s->k * s->dim) * sizeof *s->sums);
  memset(s->sizes, 0, (size_t)s->k * sizeof *s->sizes);
  s->moved = 0;
  for (size_t i = s->first; i < s->first + s->count; i++) {
    const int32_t* p = s->points + i * (size_t)s->dim;
    long best = 0;
    int64_t best_d = INT64_MAX;
    for (long c = 0; c < s->k; c++) {
      int64_t d = 0;
      for (long j = 0; j < s->dim; j++) {
        int64_t t = p[j] - s->means[c * s->dim + j];
        d += t * t;
      }
      if (d < best_d) best_d = d, best = c;
    }
    if (s->cluster[i] != best) s->moved++, s->cluster[i] = (int32_t)best;
    s->sizes[best]++;
    for (long j = 0; j < s->dim; j++) s->sums[best * s->dim + j] += p[j];
  }
  return NULL;
}

int main(int argc, char** argv) {
  phx_prog = "kmeans";
  if (argc < 5 || argc > 6) {
    fprintf(stderr, "usage: kmeans POINTS DIM K ITERATIONS [THREADS]\n");
    return 2;
  }
  long dim = strtol(argv[2], NULL, 10), k = strtol(argv[3], NULL, 10);
  long iterations = strtol(argv[4], NULL, 10);
  unsigned threads = phx_threads(argc > 5 ? argv[5] : NULL);
  if (dim < 1 || dim > 64 || k < 1 || k > 1024 || iterations < 1)
    phx_die("bad DIM, K or ITERATIONS");
  size_t size;
  int32_t* points = phx_read_file(argv[1], &size);
  size_t n = size / ((size_t)dim * sizeof(int32_t));
  if (n < (size_t)k) phx_die("fewer points than clusters");

  int32_t* cluster = phx_calloc(n, sizeof *cluster);
  memset(cluster, 0xff, n * sizeof *cluster);
  int64_t* means = phx_calloc((size_t)(k * dim), sizeof *means);
  for (long i = 0; i < k * dim; i++) means[i] = points[i];
  struct shard* sh = phx_calloc(threads, sizeof *sh);
  size_t at = 0;
  for (unsigned t = 0; t < threads; t++) {
    sh[t] = (struct shard){.points = points,
                           .cluster = cluster,
                           .means = means,
                           .first = at,
                           .count = n / threads + (t < n % threads),
                           .dim = dim,
                           .k = k,
                           .sums = phx_calloc((size_t)(k * dim), sizeof(int64_t)),
                           .sizes = phx_calloc((size_t)k, sizeof(uint64_t))};
    at += sh[t].count;
  }
  uint64_t* sizes = phx_calloc((size_t)k, sizeof *sizes);
  int64_t* sums = phx_calloc((size_t)(k * dim), sizeof *sums);
  printf("%zu points, %ld dimensions, %ld clusters\n", n, dim, k);
  long it = 0;
  for (; it < iterations; it++) {
    phx_run(threads, assign, sh, sizeof *sh);
    uint64_t moved = 0;
    memset(sizes, 0, (size_t)k * sizeof *sizes);
    memset(sums, 0, (size_t)(k * dim) * sizeof *sums);
    for (unsigned t = 0; t < threads; t++) {
      moved += sh[t].moved;
      for (long c = 0; c < k; c++) sizes[c] += sh[t].sizes[c];
      for (long j = 0; j < k * dim; j++) sums[j] += sh[t].sums[j];
    }
    for (long c = 0; c < k; c++)
      if (sizes[c])
        for (long j = 0; j < dim; j++) means[c * dim + j] = sums[c * dim + j] / (int64_t)sizes[c];
    printf("iteration %ld: %" PRIu64 " points moved\n", it + 1, moved);
    if (moved == 0) {
      it++;
      break;
    }
  }
  uint64_t digest = PHX_FNV_INIT;
  for (size_t i = 0; i < n; i++) digest = phx_fnv_u64(digest, (uint64_t)cluster[i]);
  for (long c = 0; c < k; c++) {
    printf("cluster %2ld: %8" PRIu64 " points, mean", c, sizes[c]);
    for (long j = 0; j < dim && j < 8; j++) printf(" %" PRId64, means[c * dim + j]);
    printf(dim > 8 ? " ...\n" : "\n");
  }
  printf("iterations: %ld\n", it);
  printf("assignment digest: %016" PRIx64 "\n", digest);
  for (unsigned t = 0; t < threads; t++) free(sh[t].sums), free(sh[t].sizes);
  free(sh), free(sizes), free(sums), free(means), free(cluster), free(points);
  return 0;
}
