/* checksum.c — the Internet checksum (RFC 1071) for lwIP (LWIP_CHKSUM in lwipopts.h).
 *
 * lwIP's portable lwip_standard_chksum adds 16 bits at a time; on a real link every TCP segment is
 * summed once on the way out and once on the way in, and that loop was the largest item of lwIP's
 * own profile when sending at gigabits. This one adds 32-bit little-endian words into a 64-bit
 * accumulator (2^32 of them cannot overflow it), eight bytes per load, four loads per round, then
 * folds to 16 bits. The one's complement sum does not depend on the word size or byte order it is
 * computed in (RFC 1071, section 2), so the result is exactly lwIP's: the folded sum of the
 * 16-bit words of the buffer as they lie in memory, counted from its first byte, a trailing odd
 * byte padded with zero; not complemented. */
#include <string.h>

#include "anysock_lwip_port.h"

static uint64_t add_halves(uint64_t word) { return (word & 0xffffffffu) + (word >> 32); }

uint16_t anysock_lwip_chksum(const void* data, int len) {
  const unsigned char* p = (const unsigned char*)data;
  size_t n = len > 0 ? (size_t)len : 0;
  uint64_t a = 0, b = 0, c = 0, d = 0;
  for (; n >= 32; p += 32, n -= 32) {
    uint64_t w[4];
    memcpy(w, p, sizeof w); /* unaligned loads */
    a += add_halves(w[0]);
    b += add_halves(w[1]);
    c += add_halves(w[2]);
    d += add_halves(w[3]);
  }
  uint64_t sum = a + b + c + d; /* each below 2^38 for any int length: no overflow */
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t w;
    memcpy(&w, p, sizeof w);
    sum += add_halves(w);
  }
  if (n > 0) {
    unsigned char tail[8] = {0};
    memcpy(tail, p, n);
    uint64_t w;
    memcpy(&w, tail, sizeof w);
    sum += add_halves(w);
  }
  /* Fold to 16 bits. On a little-endian machine the 16-bit words of memory are the low and high
   * halves of each 32-bit word; on a big-endian one too, in the other order: the fold is the same
   * either way (2^16 is 1 modulo 0xffff). */
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)sum;
}
