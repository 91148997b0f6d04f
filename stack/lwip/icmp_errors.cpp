// ICMP port unreachable for connected UDP sockets (icmp_errors.hpp). lwIP answers a datagram to a
// closed port with ICMP (ICMPv6) port unreachable but never tells its own UDP pcbs about one it
// receives; Linux reports it to a *connected* socket as ECONNREFUSED on its next call (unconnected
// sockets are not told without IP_RECVERR, which we do not offer). LWIP_HOOK_IP4_INPUT /
// LWIP_HOOK_IP6_INPUT (lwipopts.h; engine.cpp defines them) show us every packet a netif receives
// before lwIP processes it: a well-formed port unreachable (IPv4 type 3 code 3, IPv6 type 1 code 4)
// addressed to the source of the datagram it quotes goes to udp_socket::port_unreachable(), which
// finds the connected socket of that host with the quoted 4-tuple. The packet itself always
// continues into lwIP (which counts and drops it). lwIP sends no ICMP for a datagram to 127/8 (see
// loopback_datagram), so those are looked at too. Checksums are verified where the netif verifies
// them (real links; the in-memory link cannot corrupt). Fragmented ICMP and an ICMPv6 packet with
// extension headers are ignored (no stack sends errors like that).
#include "icmp_errors.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "lwip/ip_addr.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/udp.h"
#include "lwip_socket.hpp"

namespace anysock::lwip_detail {
namespace {

constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kProtoIcmp6 = 58;

uint16_t be16(const uint8_t* b) { return static_cast<uint16_t>(b[0] << 8 | b[1]); }

// Copies `len` bytes at `offset` of the chain; false if it is shorter.
bool bytes_at(const pbuf* p, size_t offset, void* out, size_t len) {
  return offset + len <= p->tot_len &&
         pbuf_copy_partial(p, out, static_cast<u16_t>(len), static_cast<u16_t>(offset)) == len;
}

// Adds bytes [offset, offset + len) of the chain to a one's complement sum of big-endian 16-bit
// words (the range starts a word). Bytewise: ICMP errors are small and rare.
uint32_t add_bytes(uint32_t sum, const pbuf* p, size_t offset, size_t len) {
  bool low = false;
  for (; p != nullptr && len > 0; p = p->next) {
    if (offset >= p->len) {
      offset -= p->len;
      continue;
    }
    const auto* b = static_cast<const uint8_t*>(p->payload) + offset;
    size_t n = std::min<size_t>(p->len - offset, len);
    for (size_t i = 0; i < n; ++i, low = !low) sum += low ? b[i] : static_cast<uint32_t>(b[i]) << 8;
    offset = 0;
    len -= n;
  }
  return sum;
}

// A sum including its checksum field folds to 0xffff when the data are intact.
bool sums_to_ones(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return sum == 0xffff;
}

// Whether a UDP pcb of netif `inp` would take a datagram to ip4 `dest`:`port` (udp_input's match).
bool udp_receiver_exists(const netif* inp, const uint8_t* dest, u16_t port) {
  for (const udp_pcb* pcb = udp_pcbs; pcb != nullptr; pcb = pcb->next) {
    if (pcb->local_port != port) continue;
    if (pcb->netif_idx != NETIF_NO_INDEX && pcb->netif_idx != netif_get_index(inp)) continue;
    if (IP_IS_ANY_TYPE_VAL(pcb->local_ip)) return true;  // dual-stack wildcard
    if (!IP_IS_V4_VAL(pcb->local_ip)) continue;
    const ip4_addr_t* local = ip_2_ip4(&pcb->local_ip);
    if (ip4_addr_isany(local) || std::memcmp(&local->addr, dest, 4) == 0) return true;
  }
  return false;
}

// lwIP answers a datagram to a closed port with ICMP only when it is addressed to the netif's own
// IPv4 address (udp_input's for_us), not to 127/8, which every host loops on its own netif. Linux
// answers those too: a looped datagram that no pcb of this host takes tells its sender (on this
// host) directly, as the ICMP would.
void loopback_datagram(const pbuf* p, const netif* inp, const uint8_t* ip, size_t hlen) {
  if (ip[16] != 127 || std::memcmp(ip + 16, &netif_ip4_addr(inp)->addr, 4) == 0) return;
  uint8_t udp[4];
  if ((be16(ip + 6) & 0x3fff) != 0 || !bytes_at(p, hlen, udp, sizeof udp)) return;
  if (udp_receiver_exists(inp, ip + 16, be16(udp + 2))) return;
  ip_addr_t local{}, remote{};
  IP_SET_TYPE_VAL(local, IPADDR_TYPE_V4);
  IP_SET_TYPE_VAL(remote, IPADDR_TYPE_V4);
  std::memcpy(&ip_2_ip4(&local)->addr, ip + 12, 4);
  std::memcpy(&ip_2_ip4(&remote)->addr, ip + 16, 4);
  udp_socket::port_unreachable(inp, local, be16(udp), remote, be16(udp + 2));
}

}  // namespace

// IPv4: [IP header][ICMP type 3 code 3, 8 bytes][quoted IP header][quoted UDP header ...], or a
// looped UDP datagram (above).
void read_ip4_input(const pbuf* p, const netif* inp) {
  uint8_t ip[20];
  if (!bytes_at(p, 0, ip, sizeof ip)) return;
  size_t hlen = (ip[0] & 0x0f) * 4u;
  size_t total = be16(ip + 2);
  if (hlen < 20 || total > p->tot_len || total < hlen + 8) return;
  if (ip[9] == kProtoUdp) loopback_datagram(p, inp, ip, hlen);
  if (ip[9] != kProtoIcmp || total < hlen + 8 + 20 + 8) return;
  if ((be16(ip + 6) & 0x3fff) != 0) return;  // a fragment
  uint8_t icmp[8];
  if (!bytes_at(p, hlen, icmp, sizeof icmp) || icmp[0] != 3 || icmp[1] != 3) return;
  uint8_t quoted[20];
  if (!bytes_at(p, hlen + 8, quoted, sizeof quoted)) return;
  size_t qhlen = (quoted[0] & 0x0f) * 4u;
  if ((quoted[0] >> 4) != 4 || quoted[9] != kProtoUdp || qhlen < 20) return;
  if ((be16(quoted + 6) & 0x1fff) != 0) return;  // not the first fragment: no UDP header
  uint8_t udp[4];
  if (hlen + 8 + qhlen + 8 > total || !bytes_at(p, hlen + 8 + qhlen, udp, sizeof udp)) return;
  if (std::memcmp(ip + 16, quoted + 12, 4) != 0) return;  // sent to the datagram's source
  IF__NETIF_CHECKSUM_ENABLED(inp, NETIF_CHECKSUM_CHECK_IP) {
    if (!sums_to_ones(add_bytes(0, p, 0, hlen))) return;
  }
  IF__NETIF_CHECKSUM_ENABLED(inp, NETIF_CHECKSUM_CHECK_ICMP) {
    if (!sums_to_ones(add_bytes(0, p, hlen, total - hlen))) return;
  }
  ip_addr_t local{}, remote{};
  IP_SET_TYPE_VAL(local, IPADDR_TYPE_V4);
  IP_SET_TYPE_VAL(remote, IPADDR_TYPE_V4);
  std::memcpy(&ip_2_ip4(&local)->addr, quoted + 12, 4);
  std::memcpy(&ip_2_ip4(&remote)->addr, quoted + 16, 4);
  udp_socket::port_unreachable(inp, local, be16(udp), remote, be16(udp + 2));
}

// IPv6: [IPv6 header, next header ICMPv6][type 1 code 4, 8 bytes][quoted IPv6 header][quoted
// extension headers][quoted UDP header ...].
void read_ip6_input(const pbuf* p, const netif* inp) {
  uint8_t ip[40];
  if (!bytes_at(p, 0, ip, sizeof ip) || ip[6] != kProtoIcmp6) return;
  size_t end = 40 + size_t{be16(ip + 4)};
  if (end > p->tot_len) return;
  uint8_t icmp[8];
  if (!bytes_at(p, 40, icmp, sizeof icmp) || icmp[0] != 1 || icmp[1] != 4) return;
  uint8_t quoted[40];
  if (!bytes_at(p, 48, quoted, sizeof quoted) || (quoted[0] >> 4) != 6) return;
  uint8_t next = quoted[6];
  size_t at = 48 + 40;
  for (int headers = 0; next != kProtoUdp; ++headers) {
    uint8_t ext[4];
    if (headers == 8 || !bytes_at(p, at, ext, sizeof ext)) return;
    if (next == 44) {  // fragment header: only the first fragment carries the UDP header
      if ((be16(ext + 2) & 0xfff8) != 0) return;
      at += 8;
    } else if (next == 0 || next == 43 || next == 60) {  // hop-by-hop, routing, destination
      at += (ext[1] + 1u) * 8;
    } else {
      return;
    }
    next = ext[0];
  }
  uint8_t udp[4];
  if (at + 8 > end || !bytes_at(p, at, udp, sizeof udp)) return;
  if (std::memcmp(ip + 24, quoted + 8, 16) != 0) return;  // sent to the datagram's source
  IF__NETIF_CHECKSUM_ENABLED(inp, NETIF_CHECKSUM_CHECK_ICMP6) {
    // Pseudo-header: source, destination, upper-layer length, next header.
    uint32_t sum = add_bytes(0, p, 8, 32) + (end - 40) + kProtoIcmp6;
    if (!sums_to_ones(add_bytes(sum, p, 40, end - 40))) return;
  }
  ip_addr_t local{}, remote{};  // no zone: compared without one
  IP_SET_TYPE_VAL(local, IPADDR_TYPE_V6);
  IP_SET_TYPE_VAL(remote, IPADDR_TYPE_V6);
  std::memcpy(ip_2_ip6(&local)->addr, quoted + 8, 16);
  std::memcpy(ip_2_ip6(&remote)->addr, quoted + 24, 16);
  udp_socket::port_unreachable(inp, local, be16(udp), remote, be16(udp + 2));
}

}  // namespace anysock::lwip_detail
