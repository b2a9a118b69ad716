/*
 * Page contents for the fork test programs. Every 8-byte word of a page gets
 * a value derived from (writer, page number, word), never zero, so a page
 * that comes back as zeros, as another page, or as another writer's version
 * of itself is told apart. A writer is any 64-bit id the program chooses
 * (a process, a generation, both).
 */
#ifndef REMORA_TESTS_PROGRAMS_PAGE_PATTERN_H_
#define REMORA_TESTS_PROGRAMS_PAGE_PATTERN_H_

#include <stdint.h>

#define PAGE 4096UL
#define WORDS_PER_PAGE (PAGE / sizeof(uint64_t))

static inline uint64_t pattern_word(uint64_t writer, uint64_t page, unsigned word) {
  uint64_t x = (writer * 0x9e3779b97f4a7c15ULL) ^ (page << 9) ^ word ^ 0x6a09e667f3bcc908ULL;
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return (x ^ (x >> 31)) | 1;
}

/* Writes page `page` (at q) as `writer`. */
static inline void fill_page(uint64_t* q, uint64_t writer, uint64_t page) {
  volatile uint64_t* v = q;
  for (unsigned w = 0; w < WORDS_PER_PAGE; w++) v[w] = pattern_word(writer, page, w);
}

/* The first word of page `page` (at q) that is not `writer`'s, or
 * WORDS_PER_PAGE if the whole page is. */
static inline unsigned first_wrong_word(const uint64_t* q, uint64_t writer, uint64_t page) {
  const volatile uint64_t* v = q;
  for (unsigned w = 0; w < WORDS_PER_PAGE; w++)
    if (v[w] != pattern_word(writer, page, w)) return w;
  return WORDS_PER_PAGE;
}

static inline int page_holds(const uint64_t* q, uint64_t writer, uint64_t page) {
  return first_wrong_word(q, writer, page) == WORDS_PER_PAGE;
}

#endif /* REMORA_TESTS_PROGRAMS_PAGE_PATTERN_H_ */
