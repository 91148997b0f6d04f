/* anysock_lwip_port.h — the functions lwIP calls into anysock for, besides the routing hooks.
 *
 * sys_arch.c holds simple default implementations, all weak symbols: the lwIP engine replaces any
 * of them by defining the same function (a strong symbol wins at link time, no registration
 * needed). lwIP is single-threaded here (NO_SYS 1): these are called only by whoever owns lwIP.
 *
 * Also provided by sys_arch.c and declared by lwIP itself in lwip/sys.h:
 *   u32_t sys_now(void);  -- milliseconds on a monotonic clock, wrapping at 2^32; default
 * CLOCK_MONOTONIC. */
#ifndef ANYSOCK_LWIP_PORT_H
#define ANYSOCK_LWIP_PORT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* lwIP's LWIP_RAND(): the next 32 random bits of a generator seeded by anysock_lwip_seed_rand (a
 * fixed seed until then, so a run is reproducible by default). */
uint32_t anysock_lwip_rand(void);

/* Restarts the LWIP_RAND() sequence from seed; the same seed gives the same sequence. */
void anysock_lwip_seed_rand(uint64_t seed);

/* LWIP_PLATFORM_DIAG: printf-style diagnostics, written to stderr. */
void anysock_lwip_diag(const char* format, ...) __attribute__((format(printf, 1, 2)));

/* LWIP_PLATFORM_ASSERT: prints "lwIP assertion failed: <message> at <file>:<line>" and aborts. */
void anysock_lwip_assert_failed(const char* message, const char* file, int line)
    __attribute__((noreturn));

/* LWIP_CHKSUM (checksum.c): the folded one's complement sum of the 16-bit words of data[0..len)
 * as they lie in memory, not complemented: what lwIP's own lwip_standard_chksum returns, faster. */
uint16_t anysock_lwip_chksum(const void* data, int len);

/* lwIP's heap (heap.c; mem_clib_malloc/_calloc/_free in lwipopts.h): malloc with a per-size cache.
 */
void* anysock_lwip_malloc(size_t size);
void* anysock_lwip_calloc(size_t count, size_t size);
void anysock_lwip_free(void* p);
/* Allocations fail once lwIP would hold more than `bytes` (0: no limit). */
void anysock_lwip_set_heap_limit(size_t bytes);
size_t anysock_lwip_heap_limit(void);
/* Returns every cached block to the C library (the engine calls it when it shuts down). */
void anysock_lwip_heap_release(void);

#ifdef __cplusplus
}
#endif

#endif /* ANYSOCK_LWIP_PORT_H */
