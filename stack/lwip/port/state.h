/* state.h — a snapshot of lwIP's static data, so every lwIP engine in a process starts from the
 * same bytes.
 *
 * lwIP keeps state in static variables that lwip_init() does not reset (ip4.c's ip_id, tcp.c's
 * tcp_port, tcp_ticks and iss, udp.c's udp_port, the timer list, netif_num, the ND and MLD tables,
 * lwip_stats ...). The build gathers every writable static of lwIP's own objects into two sections
 * (see stack/lwip/CMakeLists.txt); these functions copy them aside once and write them back, so the
 * hundredth engine in a process behaves exactly like the first. The port's own statics (heap.c's
 * cache and limit, sys_arch.c's random generator) are outside the range and are left alone.
 *
 * Use: before every lwip_init(), call anysock_lwip_state_save() then anysock_lwip_state_restore().
 * The first save must come before the first lwip_init() (or any other lwIP call) in the process.
 * Not thread-safe: call with no lwIP code running, under the lock that owns lwIP. A restore only
 * rewrites values: memory lwIP still holds (pcbs, pbufs, timer entries) must be freed before it, or
 * it becomes unreachable. */
#ifndef ANYSOCK_LWIP_STATE_H
#define ANYSOCK_LWIP_STATE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The first call copies lwIP's static data; later calls do nothing. Aborts if it cannot allocate
 * the copy (anysock_lwip_state_size() bytes). */
void anysock_lwip_state_save(void);

/* Writes the saved copy back over lwIP's static data; does nothing if nothing was saved. */
void anysock_lwip_state_restore(void);

/* Bytes of lwIP static data that save and restore cover (its .data and .bss). */
size_t anysock_lwip_state_size(void);

#ifdef __cplusplus
}
#endif

#endif /* ANYSOCK_LWIP_STATE_H */
