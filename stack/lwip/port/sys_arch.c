/* sys_arch.c — default implementations of what lwIP needs from its host (see anysock_lwip_port.h
 * and anysock_lwip_hooks.h). Every function is weak: the lwIP engine defines its own versions (its
 * clock, its seeded generator, its routing) and the linker picks those. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "anysock_lwip_hooks.h"
#include "anysock_lwip_port.h"
#include "lwip/ip6_frag.h"
#include "lwip/pbuf.h"
#include "lwip/prot/tcp.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"

#define ANYSOCK_WEAK __attribute__((weak))

/* Milliseconds of CLOCK_MONOTONIC, truncated to 32 bits (lwIP compares times modulo 2^32). */
ANYSOCK_WEAK u32_t sys_now(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (u32_t)((uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u);
}

/* splitmix64 (Steele, Lea, Flood 2014): tiny, full-period, good enough for ports and ids. Not
 * cryptographic; nothing security-relevant (e.g. initial sequence numbers) may rely on it. */
static uint64_t rand_state = 0x616e79736f636b00ull; /* "anysock\0": reproducible until seeded */

ANYSOCK_WEAK void anysock_lwip_seed_rand(uint64_t seed) { rand_state = seed; }

ANYSOCK_WEAK uint32_t anysock_lwip_rand(void) {
  uint64_t z = (rand_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return (uint32_t)((z ^ (z >> 31)) >> 32);
}

ANYSOCK_WEAK void anysock_lwip_diag(const char* format, ...) {
  va_list args;
  va_start(args, format);
  vfprintf(stderr, format, args);
  va_end(args);
}

ANYSOCK_WEAK void anysock_lwip_assert_failed(const char* message, const char* file, int line) {
  fprintf(stderr, "lwIP assertion failed: %s at %s:%d\n", message, file, line);
  fflush(stderr);
  abort();
}

/* No source routing by default: lwIP picks the netif by destination. */
ANYSOCK_WEAK struct netif* anysock_lwip_ip4_route_src(const struct ip4_addr* src,
                                                      const struct ip4_addr* dest) {
  (void)src;
  (void)dest;
  return NULL;
}

ANYSOCK_WEAK struct netif* anysock_lwip_ip6_route(const struct ip6_addr* src,
                                                  const struct ip6_addr* dest) {
  (void)src;
  (void)dest;
  return NULL;
}

/* No on-link prefixes beyond lwIP's own rules. */
ANYSOCK_WEAK const struct ip6_addr* anysock_lwip_nd6_get_gw(struct netif* netif,
                                                            const struct ip6_addr* dest) {
  (void)netif;
  (void)dest;
  return NULL;
}

/* Received packets go to lwIP untouched. */
ANYSOCK_WEAK int anysock_lwip_ip4_input(struct pbuf* p, struct netif* inp) {
  (void)p;
  (void)inp;
  return 0;
}

ANYSOCK_WEAK int anysock_lwip_ip6_input(struct pbuf* p, struct netif* inp) {
  (void)p;
  (void)inp;
  return 0;
}

/* Without the engine (lwIP linked alone, as in its build test): sequence numbers from the
 * generator. The engine replaces this with a keyed hash (RFC 6528). */
ANYSOCK_WEAK unsigned int anysock_lwip_tcp_isn(const struct ip_addr* local_ip,
                                               unsigned short local_port,
                                               const struct ip_addr* remote_ip,
                                               unsigned short remote_port) {
  (void)local_ip;
  (void)local_port;
  (void)remote_ip;
  (void)remote_port;
  return anysock_lwip_rand();
}

/* A duplicate pure ACK (no data, no SYN/FIN/RST, nothing new acknowledged, same window) arriving
 * while our receive window is zero is dropped before lwIP sees it: lwIP 2.1.3's tcp_receive()
 * treats every zero-length segment as out of window when rcv_wnd is 0 and answers it with an ACK,
 * so two peers whose windows are both full would ACK each other's ACKs forever. Such an ACK carries
 * no information, so dropping it changes nothing else; window probes (1 byte) and keepalives
 * (rcv_nxt - 1) pass. */
signed char anysock_lwip_tcp_inpacket(struct tcp_pcb* pcb, struct tcp_hdr* hdr, struct pbuf* p) {
  /* Another copy of the SYN reaching a connection in SYN_RCVD (duplicated or retransmitted by the
   * peer) is dropped: lwIP 2.1.3 parses its options again and takes the peer's MSS without the cap
   * of our own MTU (tcp_eff_send_mss), so our segments would leave fragmented. Linux answers it
   * with a SYN-ACK; our SYN-ACK's retransmission timer covers the case where the first one was
   * lost. */
  if (pcb->state == SYN_RCVD && (TCPH_FLAGS(hdr) & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_SYN) {
    return ERR_VAL;
  }
  if (pcb->state < ESTABLISHED || pcb->state > LAST_ACK) return ERR_OK;
  if (pcb->rcv_wnd != 0 || p->tot_len != 0) return ERR_OK;
  u8_t flags = TCPH_FLAGS(hdr);
  /* A bare FIN at the next sequence number is accepted even though the window is 0, as Linux does
   * (tcp_data_queue): lwIP would drop it and the sender would resend it only on its retransmission
   * timer, seconds later, although it takes no buffer space. */
  if ((flags & TCP_FIN) != 0 && (flags & (TCP_SYN | TCP_RST)) == 0 && hdr->seqno == pcb->rcv_nxt) {
    pcb->rcv_wnd = 1; /* consumed by the FIN itself in tcp_receive */
    return ERR_OK;
  }
  if ((flags & (TCP_SYN | TCP_FIN | TCP_RST)) != 0 || (flags & TCP_ACK) == 0) return ERR_OK;
  /* tcp_input has already turned the header's fields into host byte order. A keepalive carries
   * rcv_nxt - 1 and must be answered; a peer past a refused window probe sends rcv_nxt + 1. */
  if (hdr->seqno == pcb->rcv_nxt - 1 || hdr->ackno != pcb->lastack) return ERR_OK;
  if (SND_WND_SCALE(pcb, (tcpwnd_size_t)hdr->wnd) != pcb->snd_wnd) return ERR_OK;
  return ERR_VAL;
}

#if LWIP_IPV6 && LWIP_IPV6_FRAG
/* ip6.c calls this instead of ip6_frag() (see CMakeLists.txt): lwIP 2.1.3's ip6_frag() moves the
 * payload pointers of the pbuf chain it fragments and leaves them moved, and TCP retransmits from
 * that chain. Fragmenting a private copy keeps the caller's pbufs as they were. */
err_t anysock_lwip_ip6_frag(struct pbuf* p, struct netif* netif, const ip6_addr_t* dest) {
  struct pbuf* copy = pbuf_clone(PBUF_LINK, PBUF_RAM, p);
  if (copy == NULL) return ERR_MEM;
  err_t r = ip6_frag(copy, netif, dest);
  pbuf_free(copy);
  return r;
}
#endif
