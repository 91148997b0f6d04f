#include "sim_link.hpp"

#include <algorithm>
#include <cstring>

#include "../../stack/lwip/host.hpp"
#include "lwip/ip4.h"
#include "lwip/ip6.h"
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
  // Copy: lwIP keeps `p` (TCP retransmits from it) and the receiver must own its packet.
  pbuf* copy = pbuf_alloc(PBUF_RAW, p->tot_len, PBUF_RAM);
  if (copy == nullptr) {
    from->count_drop();
    from->eng().count_memory_failure();
    return false;
  }
  pbuf_copy(copy, p);
  queue_.push_back({copy, to, 0.0});
  return true;
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
