/* lwipopts.h — how anysock configures lwIP 2.1.3. Read by lwip/opt.h before its defaults.
 *
 * One stack per process, driven by one engine through the raw API under one lock, hosting one or
 * many hosts (one netif each). Options are compile-time and therefore the same for every host. The
 * measurements behind these choices are in shared/LWIP_NOTES.md; lwIP's defaults target a
 * microcontroller (5 TCP pcbs, MSS 536, a 1600-byte heap) and are far too small for us. */
#ifndef ANYSOCK_LWIPOPTS_H
#define ANYSOCK_LWIPOPTS_H

/* ---- Threading and APIs --------------------------------------------------------------------- */
/* No OS layer: the engine calls lwip_init(), feeds input, runs sys_check_timeouts() and
 * netif_poll_all() itself, and serialises all calls with its own lock. */
#define NO_SYS 1
/* Nothing inside lwIP needs protecting from interrupts or threads: the engine holds its lock. */
#define SYS_LIGHTWEIGHT_PROT 0
/* Our socket layer sits on the raw (callback) API; lwIP's sequential APIs need an OS and their
 * default of 1 is an #error under NO_SYS. */
#define LWIP_SOCKET 0
#define LWIP_NETCONN 0
#define LWIP_NETIF_API 0
#define LWIP_CALLBACK_API 1
/* Python semantics come from our layer; lwIP's TCP timers/retransmissions stay on. */
#define LWIP_TIMERS 1
/* lwIP would otherwise #define htons/ntohl & co., clashing with the system headers in C++ code. */
#define LWIP_DONT_PROVIDE_BYTEORDER_FUNCTIONS 1

/* ---- Memory --------------------------------------------------------------------------------- */
/* x86-64 and arm64 malloc alignment is >= 8; u64 fields and pointers need 8. */
#define MEM_ALIGNMENT 8
/* The heap is the C library's: lwIP's first-fit mem_malloc took ~80% of the CPU with large windows
 * (LWIP_NOTES.md), and malloc is what ASan/LSan watch. */
#define MEM_LIBC_MALLOC 1
/* ... through a per-size cache with an optional limit (heap.c): glibc trims and refaults the pages
 * of every freed 64 KiB segment, which dominated bulk transfers. */
#define mem_clib_malloc anysock_lwip_malloc
#define mem_clib_calloc anysock_lwip_calloc
#define mem_clib_free anysock_lwip_free
/* Pools come from malloc too, so no fixed MEMP_NUM_* limit can run out when many hosts share the
 * stack; per-host limits are enforced in our layer. (The MEMP_NUM_* counts are then unused.) */
#define MEMP_MEM_MALLOC 1
/* Allocation stats exist only when stats are on: see LWIP_STATS below. */

/* ---- Statistics: leak checks and counters --------------------------------------------------- */
/* lwip_stats.mem.used and lwip_stats.memp[i]->used must return to their starting values after a
 * test; the protocol counters (drops, checksum errors, ERR_MEM) are worth exporting. Measured to
 * cost nothing visible. lwIP never prints them (LWIP_STATS_DISPLAY 0). */
#define LWIP_STATS 1
#define LWIP_STATS_DISPLAY 0
/* 32-bit counters: the 16-bit default wraps after 65,536 packets. */
#define LWIP_STATS_LARGE 1
#define MEM_STATS 1
#define MEMP_STATS 1
#define LINK_STATS 1
#define ETHARP_STATS 1
#define IP_STATS 1
#define IPFRAG_STATS 1
#define ICMP_STATS 1
#define UDP_STATS 1
#define TCP_STATS 1
#define IP6_STATS 1
#define ICMP6_STATS 1
#define IP6_FRAG_STATS 1
#define ND6_STATS 1
#define MLD6_STATS 1
/* SNMP-style counters; we read tcpretranssegs (retransmitted segments) from them. */
#define MIB2_STATS 1

/* ---- Network layer -------------------------------------------------------------------------- */
#define LWIP_IPV4 1
#define LWIP_IPV6 1
/* Hosts, not routers: forwarding between hosts is the simulated wire's job (LWIP_NOTES.md: lwIP's
 * weak host model accepts a packet for any local address on any netif). */
#define IP_FORWARD 0
#define LWIP_IPV6_FORWARD 0
/* Linux's default TTL / hop limit, so getsockopt(IP_TTL) agrees with the kernel backend. */
#define IP_DEFAULT_TTL 64
/* Datagrams up to 64 KiB must cross a 1500-byte MTU: 45 fragments, so allow 64 per datagram. */
#define IP_REASSEMBLY 1
#define IP_FRAG 1
#define IP_REASS_MAX_PBUFS 64
#define LWIP_IPV6_FRAG 1
#define LWIP_IPV6_REASS 1
/* Required on 64-bit hosts: reassembly otherwise stores a pointer inside the 8-byte fragment header
 * (lwIP asserts on this from its 1 s reassembly timer). Costs a 40-byte copy per fragment. */
#define IPV6_FRAG_COPYHEADER 1
#define LWIP_ICMP 1
#define LWIP_ICMP6 1
/* Addresses come from our configuration (ip=... in a backend spec, or the simulated world), are
 * usable at once and are not changed by routers: no SLAAC, no router solicitations sent on link-up,
 * no duplicate address detection (which would keep a new address tentative for a second). */
#define LWIP_IPV6_AUTOCONFIG 0
#define LWIP_IPV6_SEND_ROUTER_SOLICIT 0
#define LWIP_IPV6_DUP_DETECT_ATTEMPTS 0
#define LWIP_IPV6_DHCP6 0
/* A link-local address plus a few configured ones per netif. */
#define LWIP_IPV6_NUM_ADDRESSES 4
/* A configured address's prefix length is its on-link route (as on Linux). lwIP takes a "static"
 * address's /64 as on-link whatever its prefix, so configured addresses are given an infinite
 * lifetime instead of being static (this option keeps lifetimes), and neighbour discovery asks
 * LWIP_HOOK_ND6_GET_GW below for every other destination: the destination itself when it lies
 * within one of the host's prefixes, else none (a router announced on the link, or ERR_RTE). */
#define LWIP_IPV6_ADDRESS_LIFETIMES 1
/* MLD stays on (lwIP's default): a real Ethernet link (tap, af_packet) needs solicited-node
 * membership reports for neighbour discovery through switches. */
#define LWIP_IPV6_MLD 1
/* Neighbour / ARP tables are shared by every netif of the stack: size for tens of hosts on
 * Ethernet-medium links (IP-medium sim links use neither). Packets waiting for resolution are
 * queued instead of only the last one kept. */
#define ARP_TABLE_SIZE 64
#define ARP_QUEUEING 1
#define LWIP_ND6_NUM_NEIGHBORS 64
#define LWIP_ND6_NUM_DESTINATIONS 64
#define LWIP_ND6_QUEUEING 1
#define LWIP_ARP 1
#define LWIP_ETHERNET 1
/* Unused: DHCP, AutoIP, IGMP (no IPv4 multicast socket options yet), raw IP sockets. */
#define LWIP_DHCP 0
#define LWIP_AUTOIP 0
#define LWIP_IGMP 0
#define LWIP_RAW 0
/* DNS client (resolving through a real resolver in real-time mode). It uses LWIP_RAND() for query
 * ids and source ports. */
#define LWIP_DNS 1

/* ---- Netifs --------------------------------------------------------------------------------- */
#define LWIP_SINGLE_NETIF 0
/* Traffic to a host's own address and to 127.0.0.1/::1 stays inside that host: it is looped on the
 * host's own netif (netif_loop_output), never through a shared loop netif, so every host of the
 * stack has a private loopback (lwIP supports exactly this with LWIP_HAVE_LOOPIF 0:
 * ip4_input/ip6_input then accept 127/8 and ::1 on any netif). The engine pins every pcb to its
 * host's netif and keeps netif_default on the host being served, so unpinned replies (RST, ICMP)
 * stay on the right host. Under NO_SYS the engine calls netif_poll() to deliver looped packets. */
#define LWIP_NETIF_LOOPBACK 1
#define LWIP_HAVE_LOOPIF 0
/* Looped packets queued per netif before output drops them: 0 means no limit (bounded by windows).
 */
#define LWIP_LOOPBACK_MAX_PBUFS 0
/* Checksums can be switched off per netif (netif->chksum_flags): a simulated link that cannot
 * corrupt skips them (2.5x throughput, LWIP_NOTES.md); real links and the corrupting simulator keep
 * them. */
#define LWIP_CHECKSUM_CTRL_PER_NETIF 1
/* ... and where they are computed (real links), 8 bytes at a time instead of lwIP's 2 (checksum.c):
 * lwIP's loop was the largest item of its own profile when sending at gigabits. */
#define LWIP_CHKSUM anysock_lwip_chksum
/* Engines hear about address and link changes without polling. */
#define LWIP_NETIF_STATUS_CALLBACK 1
#define LWIP_NETIF_LINK_CALLBACK 1

/* Routing by source address (anysock_lwip_hooks.h): each packet leaves through its host's netif.
 * The macros must be visible when lwip/ip4.h is read, hence here and not in the hook file. */
#define LWIP_HOOK_FILENAME "anysock_lwip_hooks.h"
#define LWIP_HOOK_IP4_ROUTE_SRC(src, dest) anysock_lwip_ip4_route_src((src), (dest))
#define LWIP_HOOK_IP6_ROUTE(src, dest) anysock_lwip_ip6_route((src), (dest))
#define LWIP_HOOK_ND6_GET_GW(netif, dest) anysock_lwip_nd6_get_gw((netif), (dest))
/* Every received packet is shown to the engine first, which tells a connected UDP socket about an
 * ICMP port unreachable for it (lwIP itself never tells UDP pcbs about ICMP errors). */
#define LWIP_HOOK_IP4_INPUT(p, inp) anysock_lwip_ip4_input((p), (inp))
#define LWIP_HOOK_IP6_INPUT(p, inp) anysock_lwip_ip6_input((p), (inp))

/* ---- UDP ------------------------------------------------------------------------------------ */
#define LWIP_UDP 1
#define LWIP_UDPLITE 0

/* ---- TCP ------------------------------------------------------------------------------------ */
#define LWIP_TCP 1
/* The largest MSS an IPv4 packet of 64 KiB can carry. The MSS actually used and announced follows
 * the outgoing netif's MTU (TCP_CALCULATE_EFF_SEND_MSS, lwIP's default), so a 1500-byte link uses
 * 1460 and an in-memory link with a 64 KiB MTU sends 64 KiB segments (LWIP_NOTES.md: ~10x the
 * throughput). An MSS this large trips lwIP's compile-time sanity checks on TCP_SNDLOWAT, which
 * assume TCP_MSS <= ~16K: they are switched off and the values below are chosen by hand to be
 * consistent. */
/* Ephemeral ports: lwIP's range, 0xc000-0xffff. lwIP 2.1.3's tcp_new_port() pre-increments its
 * counter and wraps only when it equals the range's end, so a counter drawn at 0xffff by tcp_init
 * (1 in 16384 engines) wrapped to 0 and every bind to port 0 failed with ERR_BUF (ENOBUFS). The
 * counter's random start is drawn below the end instead. */
#define TCP_LOCAL_PORT_RANGE_START 0xc000
#define TCP_LOCAL_PORT_RANGE_END 0xffff
#define TCP_ENSURE_LOCAL_PORT_RANGE(port)                                       \
  ((u16_t)(((port) % (TCP_LOCAL_PORT_RANGE_END - TCP_LOCAL_PORT_RANGE_START)) + \
           TCP_LOCAL_PORT_RANGE_START))
#define TCP_MSS 65495
#define LWIP_DISABLE_TCP_SANITY_CHECKS 1
/* Small writes do not preallocate a whole (64 KiB) segment: at most one Ethernet MSS ahead. */
#define TCP_OVERSIZE 1460
/* 2 MiB receive window and send buffer, scaled (RFC 7323); Linux's defaults are of the same order.
 * Memory is spent only on data actually in flight or unread. Between two in-process hosts the
 * window is the depth of the pipeline between sender and receiver threads: 1 MiB left both idle a
 * quarter of the time at 64 KiB segments. Larger windows cost more at small MSS (lwIP's tcp_output
 * walks the unacked list). TCP_RCV_SCALE 6 is the smallest shift that fits 2 MiB. */
#define LWIP_WND_SCALE 1
#define TCP_RCV_SCALE 6
#define TCP_WND (2 * 1024 * 1024)
#define TCP_SND_BUF (2 * 1024 * 1024)
/* Segments queued for sending: 4 per MSS of buffer (small writes make short segments). Must stay
 * below 65535 (a u16 counter); tcp_write returns ERR_MEM beyond it. */
#define TCP_SND_QUEUELEN ((4 * TCP_SND_BUF + 1459) / 1460)
/* "Writable" once this much send buffer is free. tcp_sndbuf() saturates at 65535, and lwIP requires
 * the threshold 4 MSS below that; 32 KiB keeps writes large. */
#define TCP_SNDLOWAT (32 * 1024)
#define TCP_SNDQUEUELOWAT (TCP_SND_QUEUELEN / 2)
/* Out-of-order segments are kept (bounded by the window), and we tell the peer what we hold with
 * SACK so a kernel peer recovers from loss quickly. (lwIP itself does not act on received SACKs.)
 */
#define TCP_QUEUE_OOSEQ 1
#define LWIP_TCP_SACK_OUT 1
/* listen(backlog) is honoured: lwIP refuses connections beyond the backlog until accept. */
#define TCP_LISTEN_BACKLOG 1
/* SO_KEEPALIVE with per-socket TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT. */
#define LWIP_TCP_KEEPALIVE 1
/* SO_REUSEADDR, which servers (and Python's socketserver) set before bind. */
#define SO_REUSE 1
/* No timestamps option: 12 more header bytes per segment and nothing our layer uses. */
#define LWIP_TCP_TIMESTAMPS 0
/* The application-layer TLS/altcp wrappers are not used. */
#define LWIP_ALTCP 0

/* Initial sequence numbers from a keyed hash of the connection (RFC 6528), not lwIP's counter: the
 * engine keys it randomly in real time and from the seed in a simulation. */
#define LWIP_HOOK_TCP_ISN(local_ip, local_port, remote_ip, remote_port) \
  anysock_lwip_tcp_isn((local_ip), (local_port), (remote_ip), (remote_port))

/* Drops a duplicate pure ACK arriving while our receive window is zero (anysock_lwip_hooks.h): lwIP
 * 2.1.3 answers every zero-length segment with an ACK when its window is 0, so two peers whose
 * windows are both full ACK each other's ACKs forever (seen: the in-memory link looped at 100%
 * CPU). */
#define LWIP_HOOK_TCP_INPACKET_PCB(pcb, hdr, optlen, opt1len, opt2, p) \
  anysock_lwip_tcp_inpacket((pcb), (hdr), (p))

/* Exposes lwIP's timer list (sys_timeouts_get_next_timeout) and its cyclic timer handler, which the
 * engine needs to empty the timer list when it shuts down, so a new engine starts from no timers
 * (lwip_init() re-registers them and never removes old ones). Changes nothing else in 2.1.3. */
#define LWIP_TESTMODE 1

/* ---- Debugging ------------------------------------------------------------------------------ */
/* LWIP_ASSERT stays on (LWIP_NOASSERT undefined): a broken invariant aborts with file:line (cc.h).
 * For tracing, define LWIP_DEBUG and set e.g. TCP_DEBUG to LWIP_DBG_ON here. */

#endif /* ANYSOCK_LWIPOPTS_H */
