#include "sim_link.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "../../stack/lwip/host.hpp"
#include "../../stack/lwip/send_chunk.hpp"
#include "../pcap_file.hpp"
#include "lwip/ip4.h"
#include "lwip/ip6.h"
#include "lwip/mem.h"
#include "lwip/pbuf.h"
#include "lwip/prot/ip.h"
#include "lwip/prot/ip4.h"
#include "lwip/prot/ip6.h"

namespace anysock::lwip_detail {
namespace {

// Which datagram `p` (a whole packet in one piece) is a fragment of: its addresses and
// identification, or "" when it is not a fragment.
std::string fragment_key(const pbuf* p, bool ipv6) {
  const auto* bytes = static_cast<const uint8_t*>(p->payload);
  if (ipv6) {
    // lwIP puts the fragment header right after the fixed header.
    if (p->len < IP6_HLEN + 8 ||
        IP6H_NEXTH(static_cast<const ip6_hdr*>(p->payload)) != IP6_NEXTH_FRAGMENT) {
      return "";
    }
    std::string key(1, '6');
    key.append(reinterpret_cast<const char*>(bytes + 8), 32);            // source, destination
    key.append(reinterpret_cast<const char*>(bytes + IP6_HLEN + 4), 4);  // identification
    return key;
  }
  if (p->len < IP_HLEN) return "";
  const auto* hdr = static_cast<const ip_hdr*>(p->payload);
  if ((lwip_ntohs(IPH_OFFSET(hdr)) & (IP_MF | IP_OFFMASK)) == 0) return "";
  std::string key(1, '4');
  key.append(reinterpret_cast<const char*>(bytes + 12), 8);  // source, destination
  key.append(reinterpret_cast<const char*>(bytes + 4), 2);   // identification
  key.push_back(static_cast<char>(IPH_PROTO(hdr)));
  return key;
}

}  // namespace

sim_link::~sim_link() {
  for (auto& pk : queue_) pbuf_free(pk.p);
}

void sim_link::attach(host* h) { hosts_.push_back(h); }

void sim_link::detach(host* h) {
  std::erase(hosts_, h);
  // Packets still on their way to the host are lost with it.
  std::vector<packet> kept;
  kept.reserve(queue_.size());
  for (const packet& pk : queue_) {
    if (pk.to == h) {
      pbuf_free(pk.p);
      ++stats_.unroutable;
    } else {
      kept.push_back(pk);
    }
  }
  if (kept.size() != queue_.size()) {
    queue_ = std::move(kept);
    std::make_heap(queue_.begin(), queue_.end(), later{});
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

host* sim_link::find_address(const ip_addr_t& a) const {
  return IP_IS_V4_VAL(a) ? find_ip4(ip4_addr_get_u32(ip_2_ip4(&a))) : find_ip6(ip_2_ip6(&a)->addr);
}

host* sim_link::find_name(const std::string& name) const {
  for (host* h : hosts_) {
    if (h->config().name == name) return h;
  }
  return nullptr;
}

void sim_link::remember(const std::string& name, std::vector<ip_addr_t> addresses) {
  remembered_[name] = std::move(addresses);
}

const std::vector<ip_addr_t>* sim_link::remembered(const std::string& name) const {
  auto it = remembered_.find(name);
  return it == remembered_.end() ? nullptr : &it->second;
}

std::string sim_link::remembered_name(const ip_addr_t& a) const {
  for (const auto& [name, addresses] : remembered_) {
    for (const ip_addr_t& x : addresses) {
      if (ip_addr_cmp(&x, &a)) return name;
    }
  }
  return "";
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
  if (simulated_) return transmit_simulated(from, to, p, ipv6);
  if (to == nullptr || p->tot_len > from->config().mtu || p->tot_len > to->config().mtu) {
    from->count_drop();
    return false;
  }
  pbuf* copy = p->tot_len >= kShareAbove ? share(from, p, ipv6) : nullptr;
  if (copy == nullptr) copy = copy_of(from, p);
  if (copy == nullptr) return false;
  enqueue(copy, to, 0);
  return true;
}

pbuf* sim_link::copy_of(host* from, pbuf* p) {
  // Copy: lwIP keeps `p` (TCP retransmits from it) and the receiver must own its packet.
  pbuf* copy = pbuf_alloc(PBUF_RAW, p->tot_len, PBUF_RAM);
  if (copy == nullptr) {
    from->count_drop();
    from->eng().count_memory_failure();
    return nullptr;
  }
  pbuf_copy(copy, p);
  return copy;
}

void sim_link::enqueue(pbuf* p, host* to, int64_t due_ns) {
  queue_.push_back({due_ns, next_seq_++, p, to});
  std::push_heap(queue_.begin(), queue_.end(), later{});
}

int64_t sim_link::next_due_ns() const {
  return queue_.empty() ? std::numeric_limits<int64_t>::max() : queue_.front().due_ns;
}

// ---- a simulated world --------------------------------------------------------------------------

void sim_link::simulate(uint64_t seed) {
  simulated_ = true;
  rng_ = seed;
}

uint64_t sim_link::next_random() {
  // splitmix64: one stream per world, drawn in the (deterministic) order packets are sent.
  uint64_t z = (rng_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

sim_link::direction& sim_link::dir(const std::string& from, const std::string& to) {
  return directions_[{from, to}];
}

void sim_link::set_direction(const std::string& from, const std::string& to,
                             const sim::link_config& cfg) {
  direction& d = dir(from, to);
  d.cfg = cfg;
  d.has_cfg = true;
}

void sim_link::set_partitioned(const std::string& from, const std::string& to, bool cut) {
  dir(from, to).cut = cut;
}

const sim::link_config& sim_link::config(const std::string& from, const std::string& to) const {
  auto it = directions_.find({from, to});
  return it != directions_.end() && it->second.has_cfg ? it->second.cfg : default_;
}

size_t sim_link::mtu_for(const std::string& name) const {
  size_t mtu = default_.mtu;
  for (const auto& [key, d] : directions_) {
    if (d.has_cfg && (key.first == name || key.second == name)) mtu = std::min(mtu, d.cfg.mtu);
  }
  return mtu;
}

bool sim_link::transmit_simulated(host* from, host* to, pbuf* p, bool ipv6) {
  ++stats_.sent;
  if (to == nullptr) {
    ++stats_.unroutable;
    from->count_drop();
    return false;
  }
  direction& d = dir(from->config().name, to->config().name);
  const sim::link_config& cfg = d.has_cfg ? d.cfg : default_;
  if (d.cut) {
    ++stats_.partitioned;
    return false;
  }
  if (p->tot_len > cfg.mtu) {
    ++stats_.too_big;
    from->count_drop();
    return false;
  }
  // Random draws happen only for faults that are on, always in this order, so a world without
  // faults draws nothing and a world with them draws the same numbers for the same packets.
  if (cfg.loss > 0 && uniform() < cfg.loss) {
    ++stats_.lost;
    return false;
  }
  int copies = 1;
  if (cfg.duplicate > 0 && uniform() < cfg.duplicate) {
    copies = 2;
    ++stats_.duplicated;
  }
  const int64_t now = from->eng().now_ns();
  for (int i = 0; i < copies; ++i) {
    const bool corrupt = cfg.corrupt > 0 && uniform() < cfg.corrupt;
    int64_t sent_at = now;
    if (cfg.rate_bps > 0) {
      while (!d.sending_ns.empty() && d.sending_ns.front() <= now) d.sending_ns.pop_front();
      if (cfg.queue_limit > 0 && d.sending_ns.size() >= cfg.queue_limit) {
        ++stats_.queue_drops;
        continue;
      }
      const int64_t start = std::max(now, d.busy_until_ns);
      const double bits = static_cast<double>(p->tot_len) * 8.0;
      sent_at =
          start + static_cast<int64_t>(std::ceil(bits * 1e9 / static_cast<double>(cfg.rate_bps)));
      d.busy_until_ns = sent_at;
      d.sending_ns.push_back(sent_at);
    }
    double delay = cfg.delay;
    if (cfg.jitter > 0) delay += cfg.jitter * (2.0 * uniform() - 1.0);
    if (cfg.reorder > 0 && uniform() < cfg.reorder) {
      // Held back by one to two base delays (at least a millisecond): packets sent just after it
      // arrive first.
      delay += std::max(cfg.delay, 1e-3) * (1.0 + uniform());
      ++stats_.reordered;
    }
    const int64_t due = sent_at + static_cast<int64_t>(std::llround(std::max(delay, 0.0) * 1e9));
    pbuf* copy = !corrupt && p->tot_len >= kShareAbove ? share(from, p, ipv6) : nullptr;
    if (copy == nullptr) copy = copy_of(from, p);
    if (copy == nullptr) return false;
    if (corrupt) {
      // One bit anywhere in the packet (headers included): checksums must catch it. So a
      // fragmented datagram gets one flipped bit at most, in whichever of its fragments (or their
      // copies) comes first: two flips in different fragments cancel out in the ones'-complement
      // checksum of the reassembled datagram about once in 32 (the same bit of a 16-bit word,
      // one set and one cleared), and the damage would reach the application.
      const uint64_t bit = next_random() % (static_cast<uint64_t>(copy->tot_len) * 8);
      const std::string datagram = fragment_key(copy, ipv6);
      if (datagram.empty() || std::find(corrupted_datagrams_.begin(), corrupted_datagrams_.end(),
                                        datagram) == corrupted_datagrams_.end()) {
        if (!datagram.empty()) {
          corrupted_datagrams_.push_back(datagram);
          if (corrupted_datagrams_.size() > kCorruptedDatagramsKept) {
            corrupted_datagrams_.pop_front();
          }
        }
        auto* bytes = static_cast<uint8_t*>(copy->payload);  // a PBUF_RAM copy is one piece
        bytes[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
        ++stats_.corrupted;
      }
    }
    enqueue(copy, to, due);
  }
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

size_t sim_link::deliver_due(int64_t now_ns) {
  size_t n = 0;
  const uint64_t before = next_seq_;  // not the ones the deliveries below queue
  while (!queue_.empty() && queue_.front().due_ns <= now_ns && queue_.front().seq < before) {
    std::pop_heap(queue_.begin(), queue_.end(), later{});
    packet pk = queue_.back();
    queue_.pop_back();
    if (simulated_) {
      ++stats_.delivered;
      stats_.delivered_bytes += pk.p->tot_len;
      if (capture_ != nullptr) {
        capture_->begin(static_cast<double>(now_ns) * 1e-9, pk.p->tot_len);
        for (pbuf* q = pk.p; q != nullptr; q = q->next) capture_->append(q->payload, q->len);
      }
    }
    pk.to->input(pk.p);
    ++n;
  }
  return n;
}

}  // namespace anysock::lwip_detail
