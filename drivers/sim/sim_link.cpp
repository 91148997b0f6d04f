#include "sim_link.hpp"

#include <algorithm>
#include <cstring>

#include "../../stack/lwip/host.hpp"
#include "../../stack/lwip/send_chunk.hpp"
#include "lwip/ip4.h"
#include "lwip/ip6.h"
#include "lwip/mem.h"
#include "lwip/pbuf.h"
#include "lwip/prot/ip.h"
#include "lwip/prot/ip4.h"
#include "lwip/prot/ip6.h"

namespace anysock::lwip_detail {

sim_link::~sim_link() {
  for (auto& pk : queue_) pbuf_free(pk.p);
}

void sim_link::attach(host* h) { hosts_.push_back(h); }

void sim_link::detach(host* h) {
  std::erase(hosts_, h);
  // Packets still on their way to the host are lost with it.
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (it->to == h) {
      pbuf_free(it->p);
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
}

host* sim_link::find_ip4(uint32_t addr_be) const {
  for (host* h : hosts_) {
    if (h->owns_ip4(addr_be)) return h;
  }
  return nullptr;
}

host* sim_link::find_ip6(const uint32_t addr[4]) const {
  for (host* h : hosts_) {
    if (h->owns_ip6(addr)) return h;
  }
  return nullptr;
}

host* sim_link::find_name(const std::string& name) const {
  for (host* h : hosts_) {
    if (h->config().name == name) return h;
  }
  return nullptr;
}

bool sim_link::transmit(host* from, pbuf* p, bool ipv6) {
  host* to = nullptr;
  if (p->len >= (ipv6 ? IP6_HLEN : IP_HLEN)) {
    if (ipv6) {
      const auto* hdr = static_cast<const ip6_hdr*>(p->payload);
      uint32_t dest[4];
      std::memcpy(dest, &hdr->dest, sizeof dest);
      to = find_ip6(dest);
    } else {
      const auto* hdr = static_cast<const ip_hdr*>(p->payload);
      uint32_t dest;
      std::memcpy(&dest, &hdr->dest, sizeof dest);
      to = find_ip4(dest);
    }
  }
  if (to == nullptr || p->tot_len > from->config().mtu || p->tot_len > to->config().mtu) {
    from->count_drop();
    return false;
  }
  pbuf* copy = p->tot_len >= kShareAbove ? share(from, p, ipv6) : nullptr;
  if (copy == nullptr) {
    // Copy: lwIP keeps `p` (TCP retransmits from it) and the receiver must own its packet.
    copy = pbuf_alloc(PBUF_RAW, p->tot_len, PBUF_RAM);
    if (copy == nullptr) {
      from->count_drop();
      from->eng().count_memory_failure();
      return false;
    }
    pbuf_copy(copy, p);
  }
  queue_.push_back({copy, to, 0.0});
  return true;
}

namespace {

// A receiver's view of payload bytes that stay in the sender's pbuf: holds a reference on the
// sender's packet until the receiver frees it.
struct shared_payload {
  pbuf_custom custom;
  pbuf* original;     // the sender's packet (payload in its own memory), or
  send_chunk* chunk;  // the zero-copy send chunk the payload lies in
  send_chunk_registry* chunks;
};

void free_shared_payload(pbuf* p) {
  auto* sp = reinterpret_cast<shared_payload*>(p);
  if (sp->chunk != nullptr) {
    sp->chunks->drop_link_ref(sp->chunk);
  } else {
    pbuf_free(sp->original);
  }
  mem_free(sp);
}

// Length of the IP and transport headers at the start of `p` (0 if they are not in its first pbuf).
size_t header_length(const pbuf* p, bool ipv6) {
  const auto* bytes = static_cast<const u8_t*>(p->payload);
  size_t ip_len = 0;
  u8_t proto = 0;
  if (ipv6) {
    if (p->len < IP6_HLEN) return 0;
    ip_len = IP6_HLEN;
    proto = IP6H_NEXTH(static_cast<const ip6_hdr*>(p->payload));
  } else {
    if (p->len < IP_HLEN) return 0;
    ip_len = static_cast<size_t>(IPH_HL_BYTES(static_cast<const ip_hdr*>(p->payload)));
    proto = IPH_PROTO(static_cast<const ip_hdr*>(p->payload));
  }
  if (proto == IP_PROTO_TCP) {
    if (p->len < ip_len + 20) return 0;
    return ip_len + static_cast<size_t>((bytes[ip_len + 12] >> 4) * 4);
  }
  if (proto == IP_PROTO_UDP) return ip_len + 8;
  return 0;
}

}  // namespace

pbuf* sim_link::share(host* from, pbuf* p, bool ipv6) {
  // Zero-copy delivery of a large packet: the receiver gets a copy of the headers (the sender
  // rewrites its TCP header on retransmission) followed by references to the payload bytes, which
  // no one writes once sent. While the receiver holds them the sender's pbuf has a second
  // reference, so lwIP does not retransmit from it (tcp_output_segment_busy), as with any driver
  // that queues packets by reference.
  size_t hlen = header_length(p, ipv6);
  if (hlen == 0 || hlen > p->len || hlen >= p->tot_len) return nullptr;
  pbuf* head = pbuf_alloc(PBUF_RAW, static_cast<u16_t>(hlen), PBUF_RAM);
  if (head == nullptr) return nullptr;
  std::memcpy(head->payload, p->payload, hlen);
  send_chunk_registry& chunks = from->eng().chunks();
  size_t skip = hlen;
  for (pbuf* q = p; q != nullptr; q = q->next) {
    if (skip >= q->len) {
      skip -= q->len;
      continue;
    }
    // A PBUF_ROM piece points into a zero-copy send chunk (tcp_write without copy): hold the chunk,
    // since lwIP frees the ROM pbuf itself on acknowledgement.
    send_chunk* chunk = nullptr;
    if (q->type_internal == PBUF_ROM) {
      chunk = chunks.find(q->payload);
      if (chunk == nullptr) {
        pbuf_free(head);
        return nullptr;  // memory we do not track: copy the packet instead
      }
    }
    auto* sp = static_cast<shared_payload*>(mem_malloc(sizeof(shared_payload)));
    if (sp == nullptr) {
      pbuf_free(head);
      return nullptr;
    }
    sp->custom.custom_free_function = &free_shared_payload;
    sp->original = p;
    sp->chunk = chunk;
    sp->chunks = &chunks;
    u16_t n = static_cast<u16_t>(q->len - skip);
    pbuf* piece = pbuf_alloced_custom(PBUF_RAW, n, PBUF_REF, &sp->custom,
                                      static_cast<u8_t*>(q->payload) + skip, n);
    if (chunk != nullptr) {
      chunks.add_link_ref(chunk);
    } else {
      pbuf_ref(p);
    }
    pbuf_cat(head, piece);
    skip = 0;
  }
  return head;
}

size_t sim_link::deliver_due(double now) {
  size_t n = 0;
  size_t queued = queue_.size();  // not the ones the deliveries below queue
  while (n < queued && !queue_.empty() && queue_.front().due <= now) {
    packet pk = queue_.front();
    queue_.pop_front();
    pk.to->input(pk.p);
    ++n;
  }
  return n;
}

}  // namespace anysock::lwip_detail
