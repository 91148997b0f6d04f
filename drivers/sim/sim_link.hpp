// drivers/sim: the in-memory link. Hosts of one lwIP engine attach to a link by name; a packet a
// host sends is copied into the link's queue (never delivered from inside lwIP's output, which
// would re-enter TCP) and handed to the destination host's stack when the engine pumps. The medium
// is IP: packets are routed by destination address among the attached hosts; no ARP or neighbour
// discovery.
//
// In a simulated world (anysock::sim) the link also applies per-direction settings and seeded
// faults (loss, delay, jitter, reordering, duplication, corruption, rate, queue limit, MTU,
// partitions): every queued packet carries the virtual time it becomes due, and the pump delivers
// packets in (due time, send order) order. Outside a world every packet is due at once, in order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../../stack/lwip/medium.hpp"
#include "anysock/sim.hpp"
#include "lwip/ip_addr.h"

struct pbuf;

namespace anysock::lwip_detail {

class host;
class pcap_file;

class sim_link final : public medium {
 public:
  /// `number` (1, 2, ...) numbers the engine's links; default addresses are derived from it.
  sim_link(std::string name, int number) : name_(std::move(name)), number_(number) {}
  ~sim_link() override;
  sim_link(const sim_link&) = delete;
  sim_link& operator=(const sim_link&) = delete;

  const std::string& name() const { return name_; }
  int number() const { return number_; }

  // medium
  std::string label() const override { return "sim:" + name_; }
  bool ethernet() const override { return false; }
  void attach(host* h) override;
  void detach(host* h) override;
  /// Queues a copy of `p` from `from` to whichever host owns its destination. Returns false (and
  /// counts a drop on `from`) if no host does or the packet exceeds the link's MTU.
  bool transmit(host* from, pbuf* p, bool ipv6) override;
  host* find_name(const std::string& name) const override;
  host* find_address(const ip_addr_t& a) const override;
  void remember(const std::string& name, std::vector<ip_addr_t> addresses) override;
  const std::vector<ip_addr_t>* remembered(const std::string& name) const override;
  std::string remembered_name(const ip_addr_t& a) const override;

  const std::vector<host*>& hosts() const { return hosts_; }
  /// The host on this link that owns IPv4 `addr_be` / IPv6 `addr`, or nullptr.
  host* find_ip4(uint32_t addr_be) const;
  host* find_ip6(const uint32_t addr[4]) const;
  /// Delivers the packets due at `now_ns` that were queued before the call; returns how many.
  size_t deliver_due(int64_t now_ns);
  bool empty() const { return queue_.empty(); }
  /// When the first queued packet is due (INT64_MAX: none).
  int64_t next_due_ns() const;

  // ---- a simulated world ------------------------------------------------------------------------
  /// Turns on per-direction settings and faults drawn from `seed`.
  void simulate(uint64_t seed);
  /// Writes every delivered packet to `capture` (owned by the caller; nullptr stops).
  void set_capture(pcap_file* capture) { capture_ = capture; }
  void set_default(const sim::link_config& cfg) { default_ = cfg; }
  void set_direction(const std::string& from, const std::string& to, const sim::link_config& cfg);
  void set_partitioned(const std::string& from, const std::string& to, bool cut);
  /// The settings from `from` to `to`.
  const sim::link_config& config(const std::string& from, const std::string& to) const;
  /// The smallest MTU of any direction that starts or ends at `name`.
  size_t mtu_for(const std::string& name) const;
  const sim::stats& stats() const { return stats_; }

 private:
  // Packets at least this long are delivered by reference (share), shorter ones copied.
  static constexpr size_t kShareAbove = 2048;
  pbuf* share(host* from, pbuf* p, bool ipv6);
  pbuf* copy_of(host* from, pbuf* p);
  bool transmit_simulated(host* from, host* to, pbuf* p, bool ipv6);
  void enqueue(pbuf* p, host* to, int64_t due_ns);
  uint64_t next_random();
  double uniform() { return static_cast<double>(next_random() >> 11) * 0x1.0p-53; }
  // Fragmented datagrams that already got their one flipped bit (transmit_simulated), the most
  // recent ones: a datagram's fragments leave together.
  static constexpr size_t kCorruptedDatagramsKept = 64;
  std::deque<std::string> corrupted_datagrams_;

  struct packet {
    int64_t due_ns;
    uint64_t seq;  // send order: ties in due time keep it
    pbuf* p;
    host* to;
  };
  struct later {  // a min-heap on (due, seq)
    bool operator()(const packet& a, const packet& b) const {
      return a.due_ns != b.due_ns ? a.due_ns > b.due_ns : a.seq > b.seq;
    }
  };
  struct direction {
    sim::link_config cfg;
    bool has_cfg = false;
    bool cut = false;
    int64_t busy_until_ns = 0;       // the rate limiter sends its last queued bit then
    std::deque<int64_t> sending_ns;  // when each packet still in the limiter's queue is sent
  };
  direction& dir(const std::string& from, const std::string& to);

  std::string name_;
  int number_;
  std::vector<host*> hosts_;
  std::map<std::string, std::vector<ip_addr_t>> remembered_;
  std::vector<packet> queue_;  // heap ordered by `later`
  uint64_t next_seq_ = 0;
  // Simulation
  bool simulated_ = false;
  uint64_t rng_ = 0;
  sim::link_config default_;
  std::map<std::pair<std::string, std::string>, direction> directions_;
  pcap_file* capture_ = nullptr;
  sim::stats stats_;
};

}  // namespace anysock::lwip_detail
