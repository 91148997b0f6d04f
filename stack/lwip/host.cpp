// lwIP hosts: construction from a spec, the netif, per-host port claims, poll() and sockets.
#include "host.hpp"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include "../../drivers/sim/sim_link.hpp"
#include "lwip/etharp.h"
#include "lwip/ethip6.h"
#include "lwip/ip.h"
#include "lwip/ip6_addr.h"
#include "lwip/priv/nd6_priv.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
#include "lwip/udp.h"
#include "lwip_socket.hpp"
#include "netif/ethernet.h"

namespace anysock::lwip_detail {
namespace {

bool overlaps(const ip_addr_t& a, const ip_addr_t& b) {
  auto covers = [](const ip_addr_t& wild, const ip_addr_t& other) {
    if (!is_any(wild)) return false;
    if (IP_IS_ANY_TYPE_VAL(wild)) return true;  // dual-stack wildcard covers both families
    if (IP_IS_ANY_TYPE_VAL(other)) return true;
    return IP_GET_TYPE(&wild) == IP_GET_TYPE(&other);
  };
  if (covers(a, b) || covers(b, a)) return true;
  return ip_addr_cmp(&a, &b);
}

}  // namespace

host::host(std::shared_ptr<engine> eng, host_config cfg, std::string spec,
           std::unique_ptr<medium> own)
    : engine_(std::move(eng)),
      config_(std::move(cfg)),
      spec_(std::move(spec)),
      own_link_(std::move(own)) {
  // Called with the engine lock held (see make_sim_host, make_ethernet_host).
  link_ = own_link_ ? own_link_.get() : &engine_->link(config_.link);
  if (!config_.pcap.empty()) {
    capture_ = std::make_unique<pcap_file>(
        config_.pcap, link_->ethernet() ? pcap_file::kEthernet : pcap_file::kRawIp, 65535,
        config_.pcap_mode);
  }
  const std::vector<int64_t> usage_before = engine_->usage();
  ip4_addr_t ip{}, mask{}, gw{};
  {
    std::string text = config_.ip;
    int prefix = 24;
    if (auto slash = text.find('/'); slash != std::string::npos) {
      prefix = std::stoi(text.substr(slash + 1));
      text.resize(slash);
    }
    in_addr a{};
    inet_pton(AF_INET, text.c_str(), &a);
    ip4_addr_set_u32(&ip, a.s_addr);
    ip4_addr_set_u32(&mask, prefix == 0 ? 0 : htonl(~0u << (32 - prefix)));
    if (!config_.gw.empty()) {
      in_addr g{};
      inet_pton(AF_INET, config_.gw.c_str(), &g);
      ip4_addr_set_u32(&gw, g.s_addr);
    }
  }
  netif_add(&netif_, &ip, &mask, &gw, this, &host::netif_init,
            link_->ethernet() ? ethernet_input : ip_input);
  add_ip6_addresses();
  if (!config_.checksums) NETIF_SET_CHECKSUM_CTRL(&netif_, NETIF_CHECKSUM_DISABLE_ALL);
  netif_set_up(&netif_);
  netif_set_link_up(&netif_);
  counters_.host = config_.name;
  counters_.link = link_->label();
  link_->attach(this);
  engine_->add_host(this, usage_before);
}

void host::add_ip6_addresses() {
  // Any refusal takes the netif out again before the host's constructor throws.
  const std::string kind = spec_.substr(0, spec_.find(':'));
  auto refuse = [&](const std::string& why) {
    netif_remove(&netif_);
    throw std::invalid_argument(kind + ": " + why);
  };
  auto add = [&](const ip6_addr_t& a, const std::string& text) {
    if (netif_get_ip6_addr_match(&netif_, &a) >= 0) {
      refuse(text + ": address already assigned to this host");
    }
    s8_t idx = -1;
    if (netif_add_ip6_address(&netif_, &a, &idx) != ERR_OK || idx < 0) {
      refuse(text + ": no room for another IPv6 address (a host holds " +
             std::to_string(LWIP_IPV6_NUM_ADDRESSES) +
             ", its link-local address and ::1 included)");
    }
    netif_ip6_addr_set_state(&netif_, idx, IP6_ADDR_PREFERRED);
    return idx;
  };
  netif_create_ip6_linklocal_address(&netif_, 1);
  netif_ip6_addr_set_state(&netif_, 0, IP6_ADDR_PREFERRED);
  for (const std::string& text6 : config_.ip6) {
    const size_t slash = text6.find('/');
    in6_addr raw{};
    int length = 64;
    if (inet_pton(AF_INET6, text6.substr(0, slash).c_str(), &raw) != 1) {
      refuse("ip6=" + text6 + " is not an IPv6 address (addr/len)");
    }
    if (slash != std::string::npos) length = std::atoi(text6.c_str() + slash + 1);
    ip6_addr_t addr6{};
    std::memcpy(addr6.addr, &raw, 16);
    ip6_addr_clear_zone(&addr6);
    const s8_t idx = add(addr6, "ip6=" + text6);
    // Not "static" to lwIP, which would take the address's /64 as on-link whatever its prefix:
    // a lifetime that never runs out instead, and the prefix is ours to apply (on_link6).
    netif_ip6_addr_set_valid_life(&netif_, idx, IP6_ADDR_LIFE_INFINITE);
    netif_ip6_addr_set_pref_life(&netif_, idx, IP6_ADDR_LIFE_INFINITE);
    prefixes6_.push_back({addr6, std::clamp(length, 0, 128)});
  }
  // lwIP's ip6_input accepts ::1 only on a netif that has it (IPv4's 127/8 needs nothing): give
  // every host its own ::1, so its IPv6 loopback stays on it like its IPv4 one.
  ip6_addr_t loop6{};
  ip6_addr_set_loopback(&loop6);
  add(loop6, "::1");
}

bool host::on_link6(const ip6_addr_t& dest) const {
  for (const prefix6& p : prefixes6_) {
    // On an Ethernet link lwIP 2.1.3 solicits a neighbour only from an address in the neighbour's
    // /64 (nd6_send_ns): a shorter prefix is on-link within the host's own /64 there.
    int bits = link_->ethernet() ? std::max(p.length, 64) : p.length;
    bool same = true;
    for (int word = 0; word < 4 && bits > 0 && same; ++word, bits -= 32) {
      const uint32_t mask = bits >= 32 ? 0xffffffffu : htonl(~0u << (32 - bits));
      same = ((dest.addr[word] ^ p.addr.addr[word]) & mask) == 0;
    }
    if (same) return true;
  }
  return false;
}

int host::route6(const ip6_addr_t& dest) const {
  if (ip6_addr_isloopback(&dest) || ip6_addr_isany_val(dest) || ip6_addr_islinklocal(&dest) ||
      ip6_addr_ismulticast(&dest) || on_link6(dest)) {
    return 0;
  }
  // What neighbour discovery learned on an Ethernet link: prefixes a router announced on-link,
  // and routers (the in-memory link has neither).
  for (int i = 0; i < LWIP_ND6_NUM_PREFIXES; ++i) {
    if (prefix_list[i].netif == &netif_ && prefix_list[i].invalidation_timer > 0 &&
        ip6_addr_netcmp(&dest, &prefix_list[i].prefix)) {
      return 0;
    }
  }
  for (int i = 0; i < LWIP_ND6_NUM_ROUTERS; ++i) {
    const nd6_neighbor_cache_entry* router = default_router_list[i].neighbor_entry;
    if (router != nullptr && router->netif == &netif_) return 0;
  }
  return ENETUNREACH;  // Linux's answer without a route
}

host::~host() {
  std::unique_lock lk(engine_->mutex());
  // This host's sockets are gone; connections still closing in the background die with it.
  const u8_t idx = netif_index();
  auto abort_pinned = [&](tcp_pcb* const& head) {
    for (bool again = true; again;) {
      again = false;
      for (tcp_pcb* p = head; p != nullptr; p = p->next) {
        if (p->netif_idx != idx) continue;
        tcp_arg(p, nullptr);
        tcp_err(p, nullptr);
        tcp_abort(p);  // unlinks p: walk the list again
        again = true;
        break;
      }
    }
  };
  abort_pinned(tcp_active_pcbs);
  abort_pinned(tcp_tw_pcbs);
  abort_pinned(tcp_bound_pcbs);
  for (tcp_pcb_listen* l = tcp_listen_pcbs.listen_pcbs; l != nullptr;) {
    tcp_pcb_listen* next = l->next;
    if (l->netif_idx == idx) {
      tcp_close(reinterpret_cast<tcp_pcb*>(l));
      next = tcp_listen_pcbs.listen_pcbs;
    }
    l = next;
  }
  for (udp_pcb* u = udp_pcbs; u != nullptr;) {
    udp_pcb* next = u->next;
    if (u->netif_idx == idx) {
      udp_remove(u);
      next = udp_pcbs;
    }
    u = next;
  }
  if (!down_) {
    link_->detach(this);
    engine_->remove_host(this);
  }
  const std::vector<int64_t> usage_before = engine_->usage();
  netif_remove(&netif_);
  engine_->host_netif_removed(usage_before);
  engine_->pump();
}

err_t host::netif_init(netif* n) {
  auto* h = static_cast<host*>(n->state);
  n->mtu = static_cast<u16_t>(std::min<size_t>(h->config_.mtu, 0xffff));
  n->mtu6 = n->mtu;
  if (h->link_->ethernet()) {
    // Frames: lwIP resolves next hops (ARP, neighbour discovery) and frames the packets; the
    // medium sends what linkoutput hands it.
    n->name[0] = 'e';
    n->name[1] = 'n';
    n->output = etharp_output;
    n->output_ip6 = ethip6_output;
    n->linkoutput = &host::linkoutput;
    n->flags = NETIF_FLAG_LINK_UP | NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET |
               NETIF_FLAG_MLD6;
  } else {
    n->name[0] = 's';
    n->name[1] = 'm';
    n->output = &host::output4;
    n->output_ip6 = &host::output6;
    n->flags = NETIF_FLAG_LINK_UP | NETIF_FLAG_MLD6;
  }
  n->hwaddr_len = 6;
  unsigned m[6] = {0, 0, 0, 0, 0, 0};
  std::sscanf(h->config_.mac.c_str(), "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4],
              &m[5]);
  for (int i = 0; i < 6; ++i) n->hwaddr[i] = static_cast<u8_t>(m[i]);
  return ERR_OK;
}

err_t host::output4(netif* n, pbuf* p, const ip4_addr_t*) {
  return static_cast<host*>(n->state)->output(p, false);
}

err_t host::output6(netif* n, pbuf* p, const ip6_addr_t*) {
  return static_cast<host*>(n->state)->output(p, true);
}

err_t host::linkoutput(netif* n, pbuf* p) {
  // A whole frame (Ethernet medium): counted and sent like a packet.
  return static_cast<host*>(n->state)->output(p, false);
}

err_t host::output(pbuf* p, bool ipv6) {
  if (down_) return ERR_OK;  // a crashed host sends nothing
  ++counters_.frames_out;
  counters_.bytes_out += p->tot_len;
  capture(p);
  link_->transmit(this, p, ipv6);
  return ERR_OK;  // a packet lost on the wire is not the sender's error
}

void host::capture(const pbuf* p) {
  if (!capture_) return;
  // Frames on a real link are stamped with the wall clock, as tcpdump stamps the kernel's side.
  double t = engine_->now();
  if (link_->ethernet()) {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    t = static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
  }
  capture_->begin(t, p->tot_len);
  for (const pbuf* q = p; q != nullptr; q = q->next) capture_->append(q->payload, q->len);
}

void host::input(pbuf* p) {
  ++counters_.frames_in;
  counters_.bytes_in += p->tot_len;
  capture(p);
  engine_->enter(this);
  if (netif_.input(p, &netif_) != ERR_OK) pbuf_free(p);
}

lwip::link_counters host::counters() const {
  lwip::link_counters c = counters_;
  link_->add_counters(c);
  return c;
}

void host::crash() {
  // Engine lock held.
  if (down_) return;
  down_ = true;
  // Connections die silently (output is cut above, so tcp_abort's RST goes nowhere); their sockets
  // hear ERR_ABRT and the threads blocked in them wake.
  const u8_t idx = netif_index();
  for (tcp_pcb** head : {&tcp_active_pcbs, &tcp_tw_pcbs}) {
    for (bool again = true; again;) {
      again = false;
      for (tcp_pcb* p = *head; p != nullptr; p = p->next) {
        if (p->netif_idx != idx) continue;
        tcp_abort(p);  // unlinks p: walk the list again
        again = true;
        break;
      }
    }
  }
  link_->remember(config_.name, addresses());
  link_->detach(this);
  engine_->remove_host(this);
  engine_->changed();
  engine_->pump();
}

void host::set_mtu(size_t mtu) {
  config_.mtu = mtu;
  netif_.mtu = static_cast<u16_t>(std::min<size_t>(mtu, 0xffff));
  netif_.mtu6 = netif_.mtu;
}

bool host::owns_ip4(uint32_t addr_be) const {
  return ip4_addr_get_u32(netif_ip4_addr(&netif_)) == addr_be && addr_be != 0;
}

bool host::owns_ip6(const uint32_t addr[4]) const {
  for (int i = 0; i < LWIP_IPV6_NUM_ADDRESSES; ++i) {
    if (!ip6_addr_isvalid(netif_ip6_addr_state(&netif_, i))) continue;
    if (ip6_addr_isloopback(netif_ip6_addr(&netif_, i))) continue;  // ::1 is every host's
    if (std::memcmp(netif_ip6_addr(&netif_, i)->addr, addr, 16) == 0) return true;
  }
  return false;
}

bool host::is_local(const ip_addr_t& a) const {
  if (is_any(a) || is_loopback(a)) return true;
  if (IP_IS_V4_VAL(a)) return owns_ip4(ip4_addr_get_u32(ip_2_ip4(&a)));
  return owns_ip6(ip_2_ip6(&a)->addr);
}

ip_addr_t host::source_for(const ip_addr_t& dest) const {
  ip_addr_t src;
  if (IP_IS_V6_VAL(dest)) {
    if (ip6_addr_isloopback(ip_2_ip6(&dest))) {
      ip_addr_set_loopback(1, &src);
      return src;
    }
    // The configured (non-link-local) address if there is one, else the link-local.
    for (int i = LWIP_IPV6_NUM_ADDRESSES - 1; i >= 0; --i) {
      if (ip6_addr_isvalid(netif_ip6_addr_state(&netif_, i)) &&
          !ip6_addr_isloopback(netif_ip6_addr(&netif_, i))) {
        ip_addr_copy_from_ip6(src, *netif_ip6_addr(&netif_, i));
        return src;
      }
    }
    ip_addr_set_loopback(1, &src);
    return src;
  }
  if (ip4_addr_isloopback(ip_2_ip4(&dest))) {
    ip_addr_set_loopback(0, &src);
    return src;
  }
  ip_addr_copy_from_ip4(src, *netif_ip4_addr(&netif_));
  return src;
}

int host::check_claim(const port_claim& c, bool v6only, bool dual_stack) const {
  ip_addr_t mine = c.addr;
  if (dual_stack && !v6only && is_any(mine) && IP_IS_V6_VAL(mine)) {
    ip_addr_copy(mine, *IP_ANY_TYPE);
  }
  // Linux's rule: sockets on one port conflict unless both set SO_REUSEADDR and the other one is
  // not listening (so of several such sockets only the first listen() succeeds).
  for (const port_claim& o : claims_) {
    if (o.owner == c.owner || o.tcp != c.tcp || o.port != c.port) continue;
    if (!overlaps(mine, o.addr)) continue;
    bool both_reuse = c.reuse && o.reuse;
    if (both_reuse && !(c.tcp && o.listening)) continue;
    return EADDRINUSE;
  }
  if (!c.tcp || c.port == 0) return 0;
  // Connections whose socket is gone but which still close in lwIP (FIN_WAIT, LAST_ACK,
  // TIME_WAIT...) hold their port as on Linux, with the SO_REUSEADDR their socket had.
  const u8_t idx = netif_index();
  for (tcp_pcb* list : {tcp_active_pcbs, tcp_tw_pcbs}) {
    for (const tcp_pcb* p = list; p != nullptr; p = p->next) {
      if (p->callback_arg != nullptr || p->netif_idx != idx || p->local_port != c.port) continue;
      if (!overlaps(mine, p->local_ip)) continue;
      if (c.reuse && (p->so_options & kUserReuseAddr) != 0) continue;
      return EADDRINUSE;
    }
  }
  return 0;
}

void host::set_claim(const port_claim& c) {
  for (port_claim& o : claims_) {
    if (o.owner == c.owner) {
      o = c;
      return;
    }
  }
  claims_.push_back(c);
}

void host::drop_claim(const lwip_socket* owner) {
  std::erase_if(claims_, [&](const port_claim& c) { return c.owner == owner; });
}

int host::open(int family, int type, int proto, std::unique_ptr<socket_impl>& out) {
  if (down_) return ENETDOWN;
  // Linux's checks, in its order: the type (flags beyond SOCK_NONBLOCK/SOCK_CLOEXEC, or a type
  // past SOCK_MAX: EINVAL), the family, the protocol number (EINVAL outside 0..IPPROTO_MAX), then
  // the type/protocol pair (ESOCKTNOSUPPORT: no such type for the family; EPROTONOSUPPORT).
  constexpr int kTypeMask = 0xf, kSockMax = 11, kIpprotoMax = 263;
  const int kind = type & kTypeMask;
  if (type < 0 || (type & ~(kTypeMask | SOCK_NONBLOCK | SOCK_CLOEXEC)) != 0 || kind >= kSockMax) {
    return EINVAL;
  }
  if (family != AF_INET && family != AF_INET6) return EAFNOSUPPORT;
  if (proto < 0 || proto >= kIpprotoMax) return EINVAL;
  try {
    if (kind == SOCK_STREAM) {
      if (proto != 0 && proto != IPPROTO_TCP) return EPROTONOSUPPORT;
      out = std::make_unique<tcp_socket>(*this, family);
      return 0;
    }
    if (kind == SOCK_DGRAM) {
      if (proto != 0 && proto != IPPROTO_UDP) return EPROTONOSUPPORT;
      out = std::make_unique<udp_socket>(*this, family);
      return 0;
    }
  } catch (const std::bad_alloc&) {
    return ENOMEM;
  }
  // lwIP offers no raw sockets (the kernel needs CAP_NET_RAW for them).
  return kind == SOCK_RAW ? EPERM : ESOCKTNOSUPPORT;
}

int host::socketpair(int family, int type, int proto, std::unique_ptr<socket_impl>& a,
                     std::unique_ptr<socket_impl>& b) {
  // No AF_UNIX in lwIP: a connected pair over this host's loopback, as CPython's emulation does
  // on platforms without socketpair(), with the same limits (it raises ValueError).
  if (family == AF_UNIX) family = AF_INET;
  if (family != AF_INET && family != AF_INET6) {
    throw std::invalid_argument("socketpair: only AF_INET and AF_INET6 are supported on lwIP");
  }
  if ((type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) != SOCK_STREAM) {
    throw std::invalid_argument("socketpair: only SOCK_STREAM is supported on lwIP");
  }
  if (proto != 0) throw std::invalid_argument("socketpair: only protocol zero is supported");
  type = SOCK_STREAM;
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (family == AF_INET) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::memcpy(&ss, &sin, sizeof sin);
    len = sizeof sin;
  } else {
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_addr = in6addr_loopback;
    std::memcpy(&ss, &sin6, sizeof sin6);
    len = sizeof sin6;
  }
  auto* sa = reinterpret_cast<sockaddr*>(&ss);
  const wait_spec block{wait_spec::mode::block, 0};
  std::unique_ptr<socket_impl> first, second;
  if (int e = open(family, type, proto, first); e != 0) return e;
  if (int e = open(family, type, proto, second); e != 0) return e;
  std::unique_ptr<socket_impl>& listener = second;
  if (int e = listener->bind(sa, len); e != 0) return e;
  if (int e = listener->listen(1); e != 0) return e;
  sockaddr_storage where{};
  socklen_t wlen = sizeof where;
  listener->getsockname(where, wlen);
  if (int e = first->connect(reinterpret_cast<sockaddr*>(&where), wlen, block); e != 0) return e;
  std::unique_ptr<socket_impl> accepted;
  sockaddr_storage peer{};
  socklen_t plen = sizeof peer;
  if (int e = listener->accept(block, accepted, peer, plen); e != 0) return e;
  a = std::move(first);
  b = std::move(accepted);
  return 0;
}

int host::poll(std::span<poll_entry> entries, const wait_spec& w, int& ready) {
  ready = 0;
  if (down_) return ENETDOWN;
  std::vector<size_t> kernel;  // entries with a kernel fd (sockets of the kernel backend)
  for (size_t i = 0; i < entries.size(); ++i) {
    entries[i].revents = 0;
    if (dynamic_cast<lwip_socket*>(entries[i].sock) != nullptr) continue;
    if (entries[i].sock->os_handle() < 0) return EOPNOTSUPP;  // a third kind of backend
    kernel.push_back(i);
  }
  auto scan_lwip = [&] {
    int n = 0;
    for (auto& e : entries) {
      if (dynamic_cast<lwip_socket*>(e.sock) == nullptr) continue;
      e.revents = readiness_locked(e.sock, e.events);
      if (e.revents != 0) ++n;
    }
    return n;
  };
  if (kernel.empty()) {
    std::unique_lock lk(engine_->mutex());
    int e = engine_->wait(
        lk, w, [&] { return (ready = scan_lwip()) > 0 || down_; }, "select");
    if (down_) return ENETDOWN;  // went down while waiting
    if (e == EAGAIN) return 0;   // non-blocking poll: nothing ready
    if (e == wait_timed_out) ready = 0;
    return e;
  }
  // Mixed: wait on the kernel fds and on an eventfd the engine writes whenever lwIP state changes.
  int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd < 0) return errno;
  std::vector<pollfd> fds;
  for (size_t i : kernel) fds.push_back({entries[i].sock->os_handle(), entries[i].events, 0});
  fds.push_back({efd, POLLIN, 0});
  int result = 0;
  {
    std::unique_lock lk(engine_->mutex());
    engine_->add_wake_fd(efd);
  }
  while (true) {
    int n;
    {
      std::unique_lock lk(engine_->mutex());
      n = scan_lwip();
    }
    double left = -1;  // ppoll: forever
    if (n > 0 || w.how == wait_spec::mode::nonblock) {
      left = 0;
    } else if (w.how == wait_spec::mode::until) {
      left = std::max(0.0, w.deadline - now());
    }
    timespec ts{static_cast<time_t>(left),
                static_cast<long>((left - static_cast<time_t>(left)) * 1e9)};
    int k = ::ppoll(fds.data(), fds.size(), left < 0 ? nullptr : &ts, nullptr);
    if (k < 0 && errno != EINTR) {
      result = errno;
      break;
    }
    for (size_t j = 0; j < kernel.size(); ++j) {
      entries[kernel[j]].revents = k > 0 ? fds[j].revents : 0;
      if (entries[kernel[j]].revents != 0) ++n;
    }
    if (fds.back().revents != 0) {
      uint64_t drained;
      ssize_t r = ::read(efd, &drained, sizeof drained);
      (void)r;
    }
    if (n > 0) {
      ready = n;
      break;
    }
    if (w.how == wait_spec::mode::nonblock) break;
    if (w.how == wait_spec::mode::until && now() >= w.deadline) {
      result = wait_timed_out;
      break;
    }
  }
  {
    std::unique_lock lk(engine_->mutex());
    engine_->remove_wake_fd(efd);
  }
  ::close(efd);
  return result;
}

}  // namespace anysock::lwip_detail
