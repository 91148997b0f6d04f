// What a host's netif is attached to: the in-memory link (drivers/sim, IP packets routed among the
// hosts of one process) or an Ethernet link on an OS interface (ethernet_link.hpp, whole frames
// through a drivers::link). The host (sockets, names, ports, poll) is the same on every medium;
// only how its netif frames and sends packets, and who else it can name, differ.
//
// Every call is made with the engine lock held.
#pragma once

#include <string>
#include <vector>

#include "anysock/lwip.hpp"
#include "lwip/ip_addr.h"

struct pbuf;

namespace anysock::lwip_detail {

class host;

class medium {
 public:
  virtual ~medium() = default;

  /// For counters and logs: "sim:lab", "tap:as_tap0".
  virtual std::string label() const = 0;
  /// Ethernet media carry whole frames: the netif resolves neighbours (ARP, neighbour discovery),
  /// reports multicast groups (MLD) and sends through its linkoutput. Other media carry IP packets.
  virtual bool ethernet() const = 0;

  virtual void attach(host* h) = 0;
  /// The host leaves (destroyed or down): nothing more is delivered to it.
  virtual void detach(host* h) = 0;
  /// Sends `p` from `from`: an IP packet (`ipv6` says which) on an IP medium, a whole frame on an
  /// Ethernet medium. lwIP keeps `p` (TCP retransmits from it): the medium copies or takes a
  /// reference. Returns false if the packet was dropped (and counted).
  virtual bool transmit(host* from, pbuf* p, bool ipv6) = 0;

  /// Adds what the medium counted itself (drops, batching) to the host's counters.
  virtual void add_counters(lwip::link_counters& c) const { (void)c; }

  // ---- names: the peers a host can name over this medium (the in-memory link's hosts) ---------
  virtual host* find_name(const std::string& name) const {
    (void)name;
    return nullptr;
  }
  /// The attached host owning address `a`, or nullptr.
  virtual host* find_address(const ip_addr_t& a) const {
    (void)a;
    return nullptr;
  }
  /// A host that left by crashing keeps its name: it still resolves (to addresses no one answers).
  virtual void remember(const std::string& name, std::vector<ip_addr_t> addresses) {
    (void)name;
    (void)addresses;
  }
  virtual const std::vector<ip_addr_t>* remembered(const std::string& name) const {
    (void)name;
    return nullptr;
  }
  virtual std::string remembered_name(const ip_addr_t& a) const {
    (void)a;
    return "";
  }
};

}  // namespace anysock::lwip_detail
