// lwIP's IPv6 reassembly (ip6_frag.c) builds one pbuf chain of the headers before the fragment
// header and the fragmentable part, and pbuf lengths are 16-bit. IPv6 allows that packet up to
// 65,575 bytes (a 65,535-byte payload after the 40-byte header; Linux sends UDP payloads of up to
// 65,527 bytes this way), and ip6_reass checks only that each fragment ends within 65,535 bytes of
// fragmentable data. Past 65,535 bytes in all, its length wraps: when the wrap happens in the final
// pbuf_header_force, LWIP_ASSERT("ip6_reass: moving p->payload to ip6 header failed") aborts the
// process (any peer could send such fragments), otherwise lwIP goes on with a chain whose tot_len
// is wrong until the IPv6 header is removed. So such fragments are dropped before lwIP sees them:
// the datagram never completes (its other fragments expire from the reassembly queue), as lwIP
// cannot hold it. Our sockets refuse to send what we could not receive (udp_socket.cpp).
#include "reassembly_guard.hpp"

#include <cstddef>
#include <cstdint>

#include "lwip/prot/ip6.h"

namespace anysock::lwip_detail {
namespace {

uint16_t be16(const uint8_t* b) { return static_cast<uint16_t>(b[0] << 8 | b[1]); }

// Copies `len` bytes at `offset` of the chain; false if it is shorter.
bool bytes_at(const pbuf* p, size_t offset, void* out, size_t len) {
  return offset + len <= p->tot_len &&
         pbuf_copy_partial(p, out, static_cast<u16_t>(len), static_cast<u16_t>(offset)) == len;
}

}  // namespace

bool ends_past_lwip_reassembly(const pbuf* p) {
  uint8_t ip[8];  // up to the next header field
  if (!bytes_at(p, 0, ip, sizeof ip)) return false;
  const size_t end = IP6_HLEN + size_t{be16(ip + 4)};
  if (end > p->tot_len) return false;  // a payload length past the packet: lwIP drops it
  // The headers lwIP keeps in front of the reassembled data: hop-by-hop, routing and destination
  // options may come before the fragment header.
  uint8_t next = ip[6];
  size_t at = IP6_HLEN;
  for (int headers = 0; next != IP6_NEXTH_FRAGMENT; ++headers) {
    if (headers == 8 ||
        (next != IP6_NEXTH_HOPBYHOP && next != IP6_NEXTH_ROUTING && next != IP6_NEXTH_DESTOPTS)) {
      return false;  // not a fragment (or one lwIP refuses anyway)
    }
    uint8_t ext[2];
    if (!bytes_at(p, at, ext, sizeof ext)) return false;
    next = ext[0];
    at += (ext[1] + 1u) * 8;
  }
  uint8_t frag[IP6_FRAG_HLEN];
  if (at + IP6_FRAG_HLEN > end || !bytes_at(p, at, frag, sizeof frag)) return false;
  const size_t offset = be16(frag + 2) & IP6_FRAG_OFFSET_MASK;
  const size_t data = end - (at + IP6_FRAG_HLEN);
  return at + offset + data > 0xffff;
}

}  // namespace anysock::lwip_detail
