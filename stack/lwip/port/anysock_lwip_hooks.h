/* anysock_lwip_hooks.h — routing hooks lwIP calls (LWIP_HOOK_FILENAME in lwipopts.h).
 *
 * lwipopts.h maps LWIP_HOOK_IP4_ROUTE_SRC, LWIP_HOOK_IP6_ROUTE and the others below to these
 * functions (the macros must live there: lwip/ip4.h tests LWIP_HOOK_IP4_ROUTE_SRC before this file
 * is included). Each returns the netif a packet from src to dest must leave through, or NULL to let
 * lwIP route by destination. The engine routes by source: the netif that owns src (its host), so
 * traffic between two hosts of one stack crosses the wire instead of lwIP's loopback. The defaults
 * in sys_arch.c are weak and return NULL; the engine overrides them by defining the same functions.
 * Called with lwIP's lock held. */
#ifndef ANYSOCK_LWIP_HOOKS_H
#define ANYSOCK_LWIP_HOOKS_H

#ifdef __cplusplus
extern "C" {
#endif

struct netif;
struct ip4_addr; /* ip4_addr_t */
struct ip6_addr; /* ip6_addr_t */

/* src is NULL when lwIP routes without knowing the source (ip4_route). */
struct netif* anysock_lwip_ip4_route_src(const struct ip4_addr* src, const struct ip4_addr* dest);

/* Called only for unscoped src and dest (lwIP routes link-local and loopback itself). */
struct netif* anysock_lwip_ip6_route(const struct ip6_addr* src, const struct ip6_addr* dest);

/* LWIP_HOOK_ND6_GET_GW: the next hop for dest, which lwIP's own rules found off-link (not
 * link-local, not in a router-announced prefix): dest itself when it lies within the prefix of one
 * of the host's configured addresses (on-link), else NULL (lwIP then picks a router it learned, or
 * fails with ERR_RTE). */
const struct ip6_addr* anysock_lwip_nd6_get_gw(struct netif* netif, const struct ip6_addr* dest);

/* RFC 6528 initial sequence number for a new connection (LWIP_HOOK_TCP_ISN). */
struct ip_addr; /* ip_addr_t */
unsigned int anysock_lwip_tcp_isn(const struct ip_addr* local_ip, unsigned short local_port,
                                  const struct ip_addr* remote_ip, unsigned short remote_port);

/* LWIP_HOOK_TCP_INPACKET_PCB: nonzero (ERR_OK is 0) drops the segment before TCP processes it. */
struct tcp_pcb;
struct tcp_hdr;
struct pbuf;
signed char anysock_lwip_tcp_inpacket(struct tcp_pcb* pcb, struct tcp_hdr* hdr, struct pbuf* p);

/* LWIP_HOOK_IP4_INPUT / LWIP_HOOK_IP6_INPUT: see every packet netif inp receives (p->payload at
 * the IP header, only the version checked yet) before lwIP does. The engine reads ICMP port
 * unreachable messages for its connected UDP sockets (icmp_errors.cpp). Nonzero would mean the hook
 * consumed (and freed) the packet; ours return 0 and lwIP goes on with it. */
int anysock_lwip_ip4_input(struct pbuf* p, struct netif* inp);
int anysock_lwip_ip6_input(struct pbuf* p, struct netif* inp);

#ifdef __cplusplus
}
#endif

#endif /* ANYSOCK_LWIP_HOOKS_H */
