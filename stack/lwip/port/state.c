/* state.c — saves and restores lwIP's static data (see state.h).
 *
 * The range comes from the build: lwIP's objects are partially linked (ld -r) with a script that
 * puts all their .data into one section and all their .bss into another, and defines
 * anysock_lwip_{data,bss}_{begin,end} at the ends of each, 8-byte aligned. They are declared hidden
 * here, which makes them hidden in the final link, so a shared libanysock does not export them.
 * (The linker's own __start_/__stop_ symbols would do the same job, but GNU ld puts those into the
 * dynamic symbol table even when hidden.) */
#include "state.h"

#include <stdint.h>
#include <stdlib.h>

#define ANYSOCK_HIDDEN __attribute__((visibility("hidden")))

extern char anysock_lwip_data_begin[] ANYSOCK_HIDDEN;
extern char anysock_lwip_data_end[] ANYSOCK_HIDDEN;
extern char anysock_lwip_bss_begin[] ANYSOCK_HIDDEN;
extern char anysock_lwip_bss_end[] ANYSOCK_HIDDEN;

static unsigned char* saved; /* data bytes, then bss bytes; NULL until the first save */

static size_t span(const char* start, const char* stop) {
  return (size_t)((uintptr_t)stop - (uintptr_t)start);
}

static size_t data_size(void) { return span(anysock_lwip_data_begin, anysock_lwip_data_end); }

static size_t bss_size(void) { return span(anysock_lwip_bss_begin, anysock_lwip_bss_end); }

/* Under AddressSanitizer the range holds the poisoned redzones it puts after each global, and its
 * memcpy checks every byte: copy without instrumentation, through volatile so that the compiler
 * does not turn the loop back into a memcpy call. Word by word when everything is 8-byte aligned,
 * as the build arranges (under UBSan the range also holds its check sites' data, 1.5 MB). */
__attribute__((no_sanitize_address)) static void copy_words(void* to, const void* from, size_t n) {
  if ((((uintptr_t)to | (uintptr_t)from | n) & 7u) == 0) {
    volatile uint64_t* dst = (volatile uint64_t*)to;
    const volatile uint64_t* src = (const volatile uint64_t*)from;
    for (size_t i = 0; i < n / 8; ++i) dst[i] = src[i];
    return;
  }
  volatile unsigned char* dst = (volatile unsigned char*)to;
  const volatile unsigned char* src = (const volatile unsigned char*)from;
  for (size_t i = 0; i < n; ++i) dst[i] = src[i];
}

size_t anysock_lwip_state_size(void) { return data_size() + bss_size(); }

void anysock_lwip_state_save(void) {
  if (saved != NULL) return;
  unsigned char* copy = (unsigned char*)malloc(anysock_lwip_state_size() + 1); /* never malloc(0) */
  if (copy == NULL) abort();
  copy_words(copy, anysock_lwip_data_begin, data_size());
  copy_words(copy + data_size(), anysock_lwip_bss_begin, bss_size());
  saved = copy;
}

void anysock_lwip_state_restore(void) {
  if (saved == NULL) return;
  copy_words(anysock_lwip_data_begin, saved, data_size());
  copy_words(anysock_lwip_bss_begin, saved + data_size(), bss_size());
}
