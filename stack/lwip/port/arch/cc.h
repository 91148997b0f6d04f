/* arch/cc.h — lwIP's compiler and platform glue for anysock (Linux/glibc or musl, GCC or Clang).
 *
 * lwIP includes this first from lwip/arch.h. The integer types (u8_t ... u32_t, mem_ptr_t) come
 * from <stdint.h>/<inttypes.h>, which lwIP includes itself (LWIP_NO_STDINT_H 0); struct packing
 * uses lwIP's built-in GCC/Clang support (__attribute__((packed))), checked by lwip_init() at run
 * time. */
#ifndef ANYSOCK_LWIP_ARCH_CC_H
#define ANYSOCK_LWIP_ARCH_CC_H

#include <endian.h> /* BYTE_ORDER, LITTLE_ENDIAN, BIG_ENDIAN: the host's, not lwIP's little-endian guess */

#include "anysock_lwip_port.h" /* anysock_lwip_rand(), _diag(), _assert_failed() */

/* Diagnostics (printed only for LWIP_DEBUGF categories enabled in lwipopts.h, and by
 * LWIP_PLATFORM_ERROR): x is a parenthesised printf argument list; anysock_lwip_diag writes it to
 * stderr so it never mixes with a program's output. */
#define LWIP_PLATFORM_DIAG(x) \
  do {                        \
    anysock_lwip_diag x;      \
  } while (0)

/* A broken lwIP invariant is a bug in lwIP or in how we drive it: report file:line and abort, so a
 * test fails loudly with a core dump instead of corrupting the stack's state. */
#define LWIP_PLATFORM_ASSERT(message) anysock_lwip_assert_failed((message), __FILE__, __LINE__)

/* Random numbers (initial local ports, DNS transaction ids, MLD delays) come from our seeded
 * generator, so a simulation with a given seed is reproducible. */
#define LWIP_RAND() (anysock_lwip_rand())

#endif /* ANYSOCK_LWIP_ARCH_CC_H */
