// One lwIP host: an anysock::backend with its own netif (addresses, MTU) on a medium, its own
// loopback, its own ports and its own name. Many hosts share the process's one lwIP engine; each
// socket is pinned to its host's netif, and port conflicts are checked per host here (lwIP's own
// check would span every host of the stack). The medium is the in-memory link (IP packets, shared
// by the hosts on it) or an Ethernet link of the host's own (frames; ARP, neighbour discovery and
// MLD run on the netif): see medium.hpp.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "anysock/backend.hpp"
#include "engine.hpp"
#include "lwip/ip_addr.h"
#include "lwip/netif.h"
#include "medium.hpp"
#include "pcap_file.hpp"

namespace anysock::lwip_detail {

class lwip_socket;

// lwIP's ip_addr_isany()/ip_addr_isloopback() take pointers and test them for NULL (a warning on
// references); these take values.
inline bool is_any(const ip_addr_t& a) { return ip_addr_isany_val(a); }
inline bool is_loopback(const ip_addr_t& a) {
  return IP_IS_V6_VAL(a) ? ip6_addr_isloopback(ip_2_ip6(&a)) : ip4_addr_isloopback(ip_2_ip4(&a));
}

struct host_config {
  std::string name;              // empty: "host<N>"
  std::string link = "default";  // the in-memory link's name (unless the host brings a medium)
  std::string ip;                // "a.b.c.d/len"; empty: 10.<link>.0.<N>/16 style default
  std::string gw;
  std::vector<std::string> ip6;  // "addr/len"; empty: a default ULA
  size_t mtu = 1500;
  std::string mac;
  std::string pcap;
  unsigned pcap_mode = pcap_file::kDefaultMode;  // permission bits of a new capture file
  std::string dns;         // a DNS server's address: names this host cannot resolve ask it
  bool checksums = false;  // the in-memory link cannot corrupt: checksums are skipped
};

/// Who owns a port on a host: the state the per-host bind check looks at.
/// A bit of tcp_pcb::so_options lwIP leaves unused: the socket's own SO_REUSEADDR (lwIP's
/// SOF_REUSEADDR is always set, as our port claims replace lwIP's process-wide check). It stays
/// with a pcb that closes in the background after its socket is gone.
inline constexpr uint8_t kUserReuseAddr = 0x80;

struct port_claim {
  const lwip_socket* owner;
  bool tcp;
  ip_addr_t addr;  // IPADDR_TYPE_ANY for a dual-stack wildcard
  uint16_t port;
  bool reuse;
  bool listening;
};

class host final : public backend {
 public:
  /// With the engine lock held. The host joins the in-memory link `cfg.link`, or `own` (an
  /// Ethernet link it keeps to itself) when given.
  host(std::shared_ptr<engine> eng, host_config cfg, std::string spec,
       std::unique_ptr<medium> own = nullptr);
  ~host() override;

  // backend
  std::string spec() const override { return spec_; }
  double now() const override { return engine_->now(); }
  bool has_family(int family) const override { return family == AF_INET || family == AF_INET6; }
  int open(int family, int type, int proto, std::unique_ptr<socket_impl>& out) override;
  int socketpair(int family, int type, int proto, std::unique_ptr<socket_impl>& a,
                 std::unique_ptr<socket_impl>& b) override;
  int poll(std::span<poll_entry> entries, const wait_spec& wait, int& ready) override;
  std::vector<addr_info> getaddrinfo(const char* host, const char* port, int family, int type,
                                     int proto, int flags) override;
  std::pair<std::string, std::string> getnameinfo(const sockaddr* addr, socklen_t len,
                                                  int flags) override;
  host_entry gethostbyname_ex(const std::string& name) override;
  host_entry gethostbyaddr(const std::string& numeric_host) override;
  std::string gethostname() override { return config_.name; }

  // ---- for the engine, the link and the sockets (engine lock held) ------------------------------
  engine& eng() { return *engine_; }
  const std::shared_ptr<engine>& eng_ptr() const { return engine_; }
  netif* nif() { return &netif_; }
  uint8_t netif_index() const { return netif_.num + 1; }
  const host_config& config() const { return config_; }
  medium* link() { return link_; }
  bool owns_ip4(uint32_t addr_be) const;
  bool owns_ip6(const uint32_t addr[4]) const;
  /// Whether `a` may be bound here: wildcard, loopback or one of this host's addresses.
  bool is_local(const ip_addr_t& a) const;
  /// The source address for traffic to `dest` (loopback for loopback, else the host's address).
  ip_addr_t source_for(const ip_addr_t& dest) const;
  /// Whether `dest` lies within the prefix of one of the host's configured IPv6 addresses (ip6=
  /// addr/len: its on-link route, as Linux installs it; on an Ethernet link a prefix shorter than
  /// /64 counts as /64, as far as lwIP's neighbour discovery can reach).
  bool on_link6(const ip6_addr_t& dest) const;
  /// 0 if the host has a route to `dest` (loopback, link-local, multicast, on-link by its prefixes
  /// or announced by a router, or any destination once a router is known), else ENETUNREACH.
  int route6(const ip6_addr_t& dest) const;
  /// Hands an inbound packet (a frame, on an Ethernet medium) to this host's stack (takes `p`).
  void input(pbuf* p);

  /// The host vanishes (anysock::sim; or its Ethernet interface was deleted): nothing leaves it
  /// any more, its connections are dropped without a FIN or RST, it leaves its medium and the
  /// engine's routing, threads blocked in its calls wake, and every later call on it or its
  /// sockets fails with ENETDOWN. Its netif stays until the last socket is gone.
  void crash();
  bool down() const { return down_; }
  /// Sets the netif's MTU (IPv4 and IPv6); new connections size their segments to it.
  void set_mtu(size_t mtu);
  void count_drop() { ++counters_.drops; }
  lwip::link_counters counters() const;

  /// Per-host bind check (Linux rules): EADDRINUSE if `c` conflicts with a claim of another socket.
  int check_claim(const port_claim& c, bool v6only, bool dual_stack) const;
  void set_claim(const port_claim& c);
  void drop_claim(const lwip_socket* owner);

  /// Every address a name has on this host's view of the world: its own name, "localhost", the
  /// hosts of its link, then the process's hosts table. Empty if unknown.
  std::vector<ip_addr_t> resolve(const std::string& name) const;
  /// Asks the DNS server of the spec's dns= key (lwIP's DNS client) for `name`'s addresses of
  /// `family` (AF_UNSPEC: both), waiting in the calling thread. Empty if none (or no server).
  std::vector<ip_addr_t> resolve_dns(const std::string& name, int family);
  /// This host's own addresses (configured IPv6, then IPv4), engine lock held.
  std::vector<ip_addr_t> addresses() const;
  /// The name of a host with address `a`, or "".
  std::string name_of(const ip_addr_t& a) const;

 private:
  static err_t netif_init(netif* n);
  /// The link-local address, the configured ones and ::1 (constructor): std::invalid_argument
  /// naming an address lwIP refuses (already assigned, no free slot), with the netif removed.
  void add_ip6_addresses();
  static err_t output4(netif* n, pbuf* p, const ip4_addr_t* next_hop);
  static err_t output6(netif* n, pbuf* p, const ip6_addr_t* next_hop);
  static err_t linkoutput(netif* n, pbuf* p);
  err_t output(pbuf* p, bool ipv6);
  void capture(const pbuf* p);

  std::shared_ptr<engine> engine_;
  host_config config_;
  std::string spec_;
  netif netif_{};
  std::unique_ptr<medium> own_link_;  // an Ethernet link this host alone is on
  medium* link_ = nullptr;
  std::unique_ptr<pcap_file> capture_;
  lwip::link_counters counters_;
  std::vector<port_claim> claims_;
  struct prefix6 {
    ip6_addr_t addr;
    int length;
  };
  std::vector<prefix6> prefixes6_;  // the configured IPv6 addresses and their prefix lengths
  bool down_ = false;
};

}  // namespace anysock::lwip_detail
