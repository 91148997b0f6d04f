// ICMP errors lwIP does not pass on: a port unreachable received for a connected UDP socket
// (icmp_errors.cpp). Called by the engine's input hooks (LWIP_HOOK_IP4_INPUT/IP6_INPUT) with the
// engine lock held.
#pragma once

#include "lwip/netif.h"
#include "lwip/pbuf.h"

namespace anysock::lwip_detail {

/// Reads an IPv4 packet `inp` received (p->payload at the IP header, nothing checked but the
/// version): an ICMP port unreachable, or a looped datagram to a closed port (which lwIP does not
/// answer), tells the connected UDP socket it concerns.
void read_ip4_input(const pbuf* p, const netif* inp);
/// The same for IPv6 (ICMPv6 destination unreachable, code port unreachable).
void read_ip6_input(const pbuf* p, const netif* inp);

}  // namespace anysock::lwip_detail
