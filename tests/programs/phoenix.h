/*
 * Helpers shared by the Phoenix-shaped programs (histogram, kmeans, linreg,
 * matmul, pca, strmatch, wordcount_mr): the thread count, input files mapped
 * MAP_PRIVATE or read into malloc'd memory, running one worker per thread,
 * and an FNV-1a digest for printing a whole result in one line.
 *
 * Thread count: the THREADS argument if given, else $PHOENIX_THREADS, else 2.
 * Every program's output depends only on its inputs, never on the thread
 * count: each result element is computed in a fixed order by one thread, or
 * reduced from integer partials.
 */
#ifndef REMORA_TESTS_PROGRAMS_PHOENIX_H_
#define REMORA_TESTS_PROGRAMS_PHOENIX_H_

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PHX_MAX_THREADS 64

static const char* phx_prog = "phoenix";

static inline void phx_die(const char* what) {
  fprintf(stderr, "%s: %s\n", phx_prog, what);
  exit(2);
}

static inline void* phx_calloc(size_t n, size_t size) {
  void* p = calloc(n ? n : 1, size);
  if (!p) phx_die("out of memory");
  return p;
}

/* arg may be NULL (not given). */
static inline unsigned phx_threads(const char* arg) {
  const char* s = arg ? arg : getenv("PHOENIX_THREADS");
  unsigned n = s && *s ? (unsigned)strtoul(s, NULL, 10) : 2;
  if (n == 0 || n > PHX_MAX_THREADS) phx_die("THREADS must be 1..64");
  return n;
}

static inline size_t phx_file_size(int fd, const char* path) {
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size == 0) {
    fprintf(stderr, "%s: %s: empty or unreadable\n", phx_prog, path);
    exit(2);
  }
  return (size_t)st.st_size;
}

static inline int phx_open(const char* path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    fprintf(stderr, "%s: %s: %s\n", phx_prog, path, strerror(errno));
    exit(2);
  }
  return fd;
}

/* The whole file mapped MAP_PRIVATE, readable and writable (as the original
 * suite maps its inputs: a private file mapping the program may write). */
static inline char* phx_map_private(const char* path, size_t* size) {
  int fd = phx_open(path);
  *size = phx_file_size(fd, path);
  char* p = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) {
    fprintf(stderr, "%s: mmap %s: %s\n", phx_prog, path, strerror(errno));
    exit(2);
  }
  close(fd);
  return p;
}

/* The whole file read into malloc'd (anonymous) memory. */
static inline void* phx_read_file(const char* path, size_t* size) {
  int fd = phx_open(path);
  *size = phx_file_size(fd, path);
  char* p = malloc(*size);
  if (!p) phx_die("out of memory");
  size_t got = 0;
  while (got < *size) {
    ssize_t n = read(fd, p + got, *size - got);
    if (n <= 0) {
      fprintf(stderr, "%s: read %s: %s\n", phx_prog, path, n ? strerror(errno) : "short file");
      exit(2);
    }
    got += (size_t)n;
  }
  close(fd);
  return p;
}

/* Runs fn(arg + i * stride) on `threads` threads and waits for them all. */
static inline void phx_run(unsigned threads, void* (*fn)(void*), void* args, size_t stride) {
  pthread_t tid[PHX_MAX_THREADS];
  for (unsigned i = 0; i < threads; i++) {
    int e = pthread_create(&tid[i], NULL, fn, (char*)args + i * stride);
    if (e != 0) phx_die("pthread_create failed");
  }
  for (unsigned i = 0; i < threads; i++) pthread_join(tid[i], NULL);
}

#define PHX_FNV_INIT 1469598103934665603ULL

static inline uint64_t phx_fnv(uint64_t h, const void* data, size_t n) {
  const unsigned char* p = data;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

static inline uint64_t phx_fnv_u64(uint64_t h, uint64_t v) { return phx_fnv(h, &v, sizeof v); }

#endif /* REMORA_TESTS_PROGRAMS_PHOENIX_H_ */
