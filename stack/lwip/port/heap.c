/* heap.c — the memory lwIP's mem_malloc() draws from (mem_clib_malloc & co. in lwipopts.h).
 *
 * A thin cache over the C library's malloc: blocks are rounded up to a power of two (64 B .. 128
 * KiB) and freed blocks are kept on a free list per size, up to ANYSOCK_HEAP_CACHE_BYTES in all.
 * Bulk TCP allocates and frees one ~64 KiB segment per packet; through glibc that costs a heap trim
 * and fresh zeroed pages per packet (page faults were the top of the profile), through the cache a
 * list pop. Larger blocks go straight to malloc.
 *
 * It also enforces an optional limit on the bytes lwIP holds (anysock_lwip_set_heap_limit): past it
 * an allocation (of more than SMALL_BLOCK bytes) fails as if memory were exhausted, so tests can
 * prove that exhaustion surfaces as ENOBUFS/ENOMEM errors and never as a crash.
 *
 * Called only with the lwIP engine's lock held (all lwIP calls are). Under AddressSanitizer the
 * cache is bypassed so use-after-free of a pbuf is still caught. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "anysock_lwip_port.h"
#include "lwip/stats.h"

#if defined(__SANITIZE_ADDRESS__)
#define ANYSOCK_HEAP_CACHE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ANYSOCK_HEAP_CACHE 0
#endif
#endif
#ifndef ANYSOCK_HEAP_CACHE
#define ANYSOCK_HEAP_CACHE 1
#endif

#define ANYSOCK_HEAP_CACHE_BYTES (64u << 20)
#define MIN_SHIFT 6  /* 64 B */
#define MAX_SHIFT 17 /* 128 KiB */
#define NUM_CLASSES (MAX_SHIFT - MIN_SHIFT + 1)
#define HEADER 16 /* keeps the 16-byte alignment malloc gives */
#define UNCACHED 0xff
#define SMALL_BLOCK 128

struct free_block {
  struct free_block* next;
};

static struct free_block* free_lists[NUM_CLASSES];
static size_t cached_bytes;
static size_t heap_limit; /* 0: none */

static unsigned class_of(size_t size) {
  unsigned shift = MIN_SHIFT;
  while (shift <= MAX_SHIFT && ((size_t)1 << shift) < size) ++shift;
  return shift <= MAX_SHIFT ? shift - MIN_SHIFT : UNCACHED;
}

void anysock_lwip_set_heap_limit(size_t bytes) { heap_limit = bytes; }

size_t anysock_lwip_heap_limit(void) { return heap_limit; }

void* anysock_lwip_malloc(size_t size) {
  /* Bookkeeping blocks of SMALL_BLOCK bytes or less are never refused: lwIP asserts (aborts) when a
   * timer cannot be allocated (sys_timeout), and these are tiny next to pcbs and packet buffers. */
  if (heap_limit != 0 && size > SMALL_BLOCK && (size_t)lwip_stats.mem.used + size > heap_limit) {
    return NULL;
  }
  unsigned c = ANYSOCK_HEAP_CACHE ? class_of(size + HEADER) : UNCACHED;
  unsigned char* block;
  if (c != UNCACHED && free_lists[c] != NULL) {
    block = (unsigned char*)free_lists[c];
    free_lists[c] = free_lists[c]->next;
    cached_bytes -= (size_t)1 << (c + MIN_SHIFT);
  } else {
    block = malloc(c != UNCACHED ? ((size_t)1 << (c + MIN_SHIFT)) : size + HEADER);
    if (block == NULL) return NULL;
  }
  block[0] = (unsigned char)c;
  return block + HEADER;
}

void* anysock_lwip_calloc(size_t count, size_t size) {
  if (size != 0 && count > SIZE_MAX / size) return NULL;
  void* p = anysock_lwip_malloc(count * size);
  if (p != NULL) memset(p, 0, count * size);
  return p;
}

void anysock_lwip_free(void* p) {
  if (p == NULL) return;
  unsigned char* block = (unsigned char*)p - HEADER;
  unsigned c = block[0];
  size_t bytes = c != UNCACHED ? (size_t)1 << (c + MIN_SHIFT) : 0;
  if (c == UNCACHED || cached_bytes + bytes > ANYSOCK_HEAP_CACHE_BYTES) {
    free(block);
    return;
  }
  struct free_block* f = (struct free_block*)block;
  f->next = free_lists[c];
  free_lists[c] = f;
  cached_bytes += bytes;
}

void anysock_lwip_heap_release(void) {
  for (unsigned c = 0; c < NUM_CLASSES; ++c) {
    while (free_lists[c] != NULL) {
      struct free_block* f = free_lists[c];
      free_lists[c] = f->next;
      free(f);
    }
  }
  cached_bytes = 0;
}
