// drivers/sim: the in-memory link. Hosts of one lwIP engine attach to a link by name; a packet a
// host sends is copied into the link's queue (never delivered from inside lwIP's output, which
// would re-enter TCP) and handed to the destination host's stack when the engine pumps. The medium
// is IP: packets are routed by destination address among the attached hosts; no ARP or neighbour
// discovery.
//
// Faults and virtual time will wrap transmit(): a queued packet already carries the time it becomes
// due, and the pump delivers only due packets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

struct pbuf;

namespace anysock::lwip_detail {

class host;

class sim_link {
 public:
  /// `number` (1, 2, ...) numbers the engine's links; default addresses are derived from it.
  sim_link(std::string name, int number) : name_(std::move(name)), number_(number) {}
  ~sim_link();
  sim_link(const sim_link&) = delete;
  sim_link& operator=(const sim_link&) = delete;

  const std::string& name() const { return name_; }
  int number() const { return number_; }

  void attach(host* h);
  void detach(host* h);
  const std::vector<host*>& hosts() const { return hosts_; }
  /// The host on this link that owns IPv4 `addr_be` / IPv6 `addr`, or nullptr.
  host* find_ip4(uint32_t addr_be) const;
  host* find_ip6(const uint32_t addr[4]) const;
  host* find_name(const std::string& name) const;

  /// Queues a copy of `p` from `from` to whichever host owns its destination. Returns false (and
  /// counts a drop on `from`) if no host does or the packet exceeds the link's MTU.
  bool transmit(host* from, pbuf* p, bool ipv6);
  /// Delivers every packet queued now (not ones queued meanwhile); returns how many.
  size_t deliver_due(double now);
  bool empty() const { return queue_.empty(); }

 private:
  // Packets at least this long are delivered by reference (share), shorter ones copied.
  static constexpr size_t kShareAbove = 2048;
  pbuf* share(host* from, pbuf* p, bool ipv6);

  struct packet {
    pbuf* p;
    host* to;
    double due;
  };
  std::string name_;
  int number_;
  std::vector<host*> hosts_;
  std::deque<packet> queue_;
};

}  // namespace anysock::lwip_detail
