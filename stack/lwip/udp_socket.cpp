// UDP sockets over lwIP's raw API with Linux's semantics. Datagrams wait in rx_, bounded by
// SO_RCVBUF as on the kernel: each is charged its payload and a fixed overhead (so empty datagrams
// are not free), and what does not fit is dropped and counted. Sending never blocks.
#include <netinet/in.h>
#include <poll.h>

#include <algorithm>
#include <cstring>

#include "lwip/pbuf.h"
#include "lwip/prot/ip6.h"
#include "lwip/prot/udp.h"
#include "lwip_socket.hpp"

namespace anysock::lwip_detail {
namespace {

// Largest UDP payload in one IPv4 datagram (65,535 - 20 - 8, as Linux) and in one IPv6 datagram
// lwIP can carry: its packet lengths are 16-bit and hold the IPv6 header too (65,535 - 40 - 8),
// where Linux sends up to 65,527 bytes. lwIP could not reassemble a larger one either (see
// reassembly_guard.hpp), so larger sends raise EMSGSIZE (README.md lists the difference).
constexpr size_t kMaxPayload4 = 65507;
constexpr size_t kMaxPayload6 = 0xffff - IP6_HLEN - UDP_HLEN;

// What a queued datagram costs against SO_RCVBUF besides its payload: Linux charges the buffer's
// truesize, 832 bytes for a datagram of up to ~100 bytes over loopback (measured on Linux 6.x: 256
// empty datagrams fill the default 212,992 bytes, 9 fill 8,192, 2 fill 2,304), so a socket keeps as
// many small datagrams as the kernel's. (The kernel's truesize depends on the device and rounds
// larger buffers up: from a TAP it keeps 302 empty datagrams; over loopback 92 of 1,000 bytes,
// where this charge keeps 116.)
constexpr size_t kDatagramOverhead = 832;

int map_send_err(err_t e) {
  switch (e) {
    case ERR_OK:
      return 0;
    case ERR_MEM:
    case ERR_BUF:
      return ENOBUFS;
    case ERR_RTE:
      return ENETUNREACH;
    case ERR_VAL:
      return EINVAL;
    case ERR_USE:
      return EADDRINUSE;
    default:
      return EIO;
  }
}

}  // namespace

bool udp_socket::is_broadcast(const ip_addr_t& ip) const {
  return IP_IS_V4_VAL(ip) &&
         ip4_addr_isbroadcast_u32(ip4_addr_get_u32(ip_2_ip4(&ip)), host_.nif()) != 0;
}

udp_socket::udp_socket(host& h, int family) : lwip_socket(h, family) { rcvbuf_ = 212992; }

udp_socket::~udp_socket() {
  std::unique_lock lk(eng_.mutex());
  if (pcb_ != nullptr) {
    udp_recv(pcb_, nullptr, nullptr);
    udp_remove(pcb_);
    pcb_ = nullptr;
  }
  for (auto& d : rx_) pbuf_free(d.p);
  rx_.clear();
  host_.drop_claim(this);
}

void udp_socket::on_recv(void* arg, udp_pcb*, pbuf* p, const ip_addr_t* addr, u16_t port) {
  auto* s = static_cast<udp_socket*>(arg);
  const size_t charge = p->tot_len + kDatagramOverhead;
  // Linux's rule: a datagram is queued if its charge fits in what SO_RCVBUF has left, or if the
  // queue is empty (however small the buffer); otherwise it is dropped and counted.
  if (s == nullptr || s->rd_shut_ ||
      (!s->rx_.empty() && s->rx_charged_ + charge > static_cast<size_t>(s->rcvbuf_))) {
    pbuf_free(p);
    UDP_STATS_INC(udp.drop);
    return;
  }
  s->rx_.push_back({p, *addr, port});
  s->rx_charged_ += charge;
  s->eng_.changed();
}

namespace {

// The same address, ignoring IPv6 zones (an ICMP message quotes addresses without one).
bool same_address(const ip_addr_t& a, const ip_addr_t& b) {
  if (IP_GET_TYPE(&a) != IP_GET_TYPE(&b)) return false;
  if (IP_IS_V6_VAL(a)) return ip6_addr_cmp_zoneless(ip_2_ip6(&a), ip_2_ip6(&b));
  return ip4_addr_cmp(ip_2_ip4(&a), ip_2_ip4(&b));
}

}  // namespace

void udp_socket::port_unreachable(const netif* inp, const ip_addr_t& local, u16_t local_port,
                                  const ip_addr_t& remote, u16_t remote_port) {
  for (udp_pcb* pcb = udp_pcbs; pcb != nullptr; pcb = pcb->next) {
    if (pcb->recv != &udp_socket::on_recv || pcb->recv_arg == nullptr) continue;
    if ((pcb->flags & UDP_FLAGS_CONNECTED) == 0 || pcb->netif_idx != netif_get_index(inp)) continue;
    if (pcb->local_port != local_port || pcb->remote_port != remote_port) continue;
    if (!same_address(pcb->local_ip, local) || !same_address(pcb->remote_ip, remote)) continue;
    auto* s = static_cast<udp_socket*>(pcb->recv_arg);
    s->pending_error_ = ECONNREFUSED;
    s->eng_.changed();
  }
}

int udp_socket::bind_locked(ip_addr_t ip, uint16_t port) {
  if (bound_) return EINVAL;
  if (!host_.is_local(ip)) return EADDRNOTAVAIL;
  port_claim claim{this, false, ip, port, reuse_, false};
  if (port != 0) {
    if (int e = host_.check_claim(claim, v6only_, family_ == AF_INET6); e != 0) return e;
  }
  if (pcb_ == nullptr) {
    pcb_ = udp_new_ip_type(family_ == AF_INET ? IPADDR_TYPE_V4
                                              : (v6only_ ? IPADDR_TYPE_V6 : IPADDR_TYPE_ANY));
    if (pcb_ == nullptr) {
      eng_.count_memory_failure();
      return ENOBUFS;
    }
    udp_bind_netif(pcb_, host_.nif());
    ip_set_option(pcb_, SOF_REUSEADDR);  // conflicts are ours to check, per host
    udp_recv(pcb_, &udp_socket::on_recv, this);
  }
  pcb_->ttl = static_cast<u8_t>(ttl_);
  pcb_->tos = static_cast<u8_t>(tos_);
  err_t r = udp_bind(pcb_, &ip, port);
  if (r != ERR_OK) return map_send_err(r);
  claim.port = pcb_->local_port;
  host_.set_claim(claim);
  bound_ = true;
  return 0;
}

int udp_socket::connect(const sockaddr* addr, socklen_t len, const wait_spec&) {
  std::unique_lock lk(eng_.mutex());
  eng_.enter(&host_);
  if (host_.down()) return ENETDOWN;
  if (addr != nullptr && len >= static_cast<socklen_t>(sizeof(sa_family_t)) &&
      addr->sa_family == AF_UNSPEC) {
    if (pcb_ != nullptr && connected_) udp_disconnect(pcb_);
    connected_ = false;
    return 0;
  }
  lk.unlock();
  ip_addr_t ip;
  uint16_t port = 0;
  if (int e = from_sockaddr(addr, len, ip, port); e != 0) return e;
  lk.lock();
  if (is_any(ip)) ip_addr_set_loopback(IP_IS_V6_VAL(ip), &ip);
  if (is_broadcast(ip) && !broadcast_) return EACCES;
  if (IP_IS_V6_VAL(ip)) {
    if (int e = host_.route6(*ip_2_ip6(&ip)); e != 0) return e;  // no route: as Linux
  }
  if (!bound_) {
    if (int e = bind_locked(wildcard(), 0); e != 0) return e;
  }
  if (is_any(pcb_->local_ip)) {
    // Linux fixes the source address at connect time (getsockname shows it).
    ip_addr_t src = host_.source_for(ip);
    ip_addr_copy(pcb_->local_ip, src);
  }
  err_t r = udp_connect(pcb_, &ip, port);
  if (r != ERR_OK) return map_send_err(r);
  connected_ = true;
  return 0;
}

int udp_socket::recv(void* buf, size_t len, int flags, const wait_spec& w_in, size_t& got,
                     sockaddr_storage* from, socklen_t* from_len) {
  got = 0;
  if (flags & ~(MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC | MSG_NOSIGNAL)) return EOPNOTSUPP;
  wait_spec w = w_in;
  if (flags & MSG_DONTWAIT) w.how = wait_spec::mode::nonblock;
  std::unique_lock lk(eng_.mutex());
  eng_.enter(&host_);
  if (host_.down()) return ENETDOWN;
  int e = eng_.wait(
      lk, w, [&] { return !rx_.empty() || rd_shut_ || pending_error_ != 0 || host_.down(); },
      "recvfrom");
  if (host_.down()) return ENETDOWN;  // crashed while waiting
  if (e != 0) return e;
  if (pending_error_ != 0) return take_error();  // before queued datagrams, as Linux (even peeking)
  if (rx_.empty()) {
    if (from_len != nullptr) *from_len = 0;
    return 0;
  }
  datagram d = rx_.front();
  size_t n = std::min<size_t>(len, d.p->tot_len);
  if (n > 0) pbuf_copy_partial(d.p, buf, static_cast<u16_t>(n), 0);
  got = (flags & MSG_TRUNC) ? d.p->tot_len : n;
  if (from != nullptr && from_len != nullptr) {
    socklen_t l = 0;
    sockaddr_storage ss;
    to_sockaddr(d.from, d.port, ss, l);
    std::memcpy(from, &ss, std::min<size_t>(l, sizeof *from));
    *from_len = l;
  }
  if (!(flags & MSG_PEEK)) {
    rx_.pop_front();
    rx_charged_ -= d.p->tot_len + kDatagramOverhead;
    pbuf_free(d.p);
  }
  return 0;
}

int udp_socket::send(const void* buf, size_t len, int flags, const wait_spec&, size_t& sent,
                     const sockaddr* to, socklen_t to_len) {
  sent = 0;
  if (flags & ~(MSG_DONTWAIT | MSG_NOSIGNAL)) return EOPNOTSUPP;
  ip_addr_t ip;
  uint16_t port = 0;
  if (to != nullptr) {
    if (int e = from_sockaddr(to, to_len, ip, port); e != 0) return e;
    if (port == 0) return EINVAL;
  }
  std::unique_lock lk(eng_.mutex());
  eng_.enter(&host_);
  if (host_.down()) return ENETDOWN;
  if (to == nullptr) {
    if (!connected_) return EDESTADDRREQ;
    ip = pcb_->remote_ip;
    port = pcb_->remote_port;
  }
  if (len > (IP_IS_V6_VAL(ip) ? kMaxPayload6 : kMaxPayload4)) return EMSGSIZE;
  if (is_any(ip)) ip_addr_set_loopback(IP_IS_V6_VAL(ip), &ip);
  if (is_broadcast(ip) && !broadcast_) return EACCES;
  if (!bound_) {
    if (int e = bind_locked(wildcard(), 0); e != 0) return e;
  }
  // Linux's order: a pending error (ICMP port unreachable) is reported, and nothing sent, before
  // shutdown's EPIPE, but after the address and size checks.
  if (pending_error_ != 0) return take_error();
  if (wr_shut_) return EPIPE;
  if (IP_IS_V6_VAL(ip)) {
    if (int e = host_.route6(*ip_2_ip6(&ip)); e != 0) return e;  // no route: as Linux
  }
  pbuf* p = pbuf_alloc(PBUF_TRANSPORT, static_cast<u16_t>(len), PBUF_RAM);
  if (p == nullptr) {
    eng_.count_memory_failure();
    return ENOBUFS;
  }
  if (len > 0) pbuf_take(p, buf, static_cast<u16_t>(len));
  ip_addr_t src = pcb_->local_ip;
  if (is_any(src) || IP_GET_TYPE(&src) != IP_GET_TYPE(&ip)) src = host_.source_for(ip);
  err_t r = udp_sendto_if_src(pcb_, p, &ip, port, host_.nif(), &src);
  pbuf_free(p);
  if (r != ERR_OK) {
    if (r == ERR_MEM) eng_.count_memory_failure();
    return map_send_err(r);
  }
  eng_.pump();
  sent = len;
  eng_.switch_point(lk);
  return 0;
}

int udp_socket::shutdown(int how) {
  if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) return EINVAL;
  std::unique_lock lk(eng_.mutex());
  if (how != SHUT_WR) rd_shut_ = true;
  if (how != SHUT_RD) wr_shut_ = true;
  eng_.changed();
  eng_.pump();
  return connected_ ? 0 : ENOTCONN;  // Linux sets the flags either way
}

int udp_socket::getsockname(sockaddr_storage& addr, socklen_t& len) const {
  std::unique_lock lk(eng_.mutex());
  if (pcb_ == nullptr) {
    to_sockaddr(wildcard(), 0, addr, len);
    return 0;
  }
  to_sockaddr(pcb_->local_ip, pcb_->local_port, addr, len);
  return 0;
}

int udp_socket::getpeername(sockaddr_storage& addr, socklen_t& len) const {
  std::unique_lock lk(eng_.mutex());
  if (!connected_ || pcb_ == nullptr) return ENOTCONN;
  to_sockaddr(pcb_->remote_ip, pcb_->remote_port, addr, len);
  return 0;
}

int udp_socket::getsockopt(int level, int opt, void* value, socklen_t& len) const {
  std::unique_lock lk(eng_.mutex());
  int v = 0;
  bool handled = false;
  if (level == SOL_SOCKET) {
    switch (opt) {
      case SO_TYPE:
        v = SOCK_DGRAM;
        handled = true;
        break;
      case SO_PROTOCOL:
        v = IPPROTO_UDP;
        handled = true;
        break;
      case SO_ACCEPTCONN:
        v = 0;
        handled = true;
        break;
      case SO_KEEPALIVE:
        v = 0;
        handled = true;
        break;
      case SO_ERROR:
        v = const_cast<udp_socket*>(this)->take_error();
        handled = true;
        break;
      default:
        break;
    }
  }
  if (!handled) {
    if (int e = common_getsockopt(level, opt, v, handled); e != 0) return e;
    if (!handled) return ENOPROTOOPT;
  }
  return put_int(v, value, len);
}

int udp_socket::setsockopt(int level, int opt, const void* value, socklen_t len) {
  if (len < static_cast<socklen_t>(sizeof(int))) return EINVAL;
  int v;
  std::memcpy(&v, value, sizeof v);
  std::unique_lock lk(eng_.mutex());
  if (level == IPPROTO_IPV6 && opt == IPV6_V6ONLY && family_ == AF_INET6) {
    if (bound_) return EINVAL;
    v6only_ = v != 0;
    return 0;
  }
  if (level == SOL_SOCKET && opt == SO_KEEPALIVE) return 0;  // accepted and meaningless, as Linux
  bool handled = false;
  if (int e = common_setsockopt(level, opt, v, handled); e != 0) return e;
  if (!handled) return ENOPROTOOPT;
  if (pcb_ != nullptr) {
    pcb_->ttl = static_cast<u8_t>(ttl_);
    pcb_->tos = static_cast<u8_t>(tos_);
  }
  return 0;
}

short udp_socket::readiness(short events) {
  short r = 0;
  if (!rx_.empty() || rd_shut_) r |= POLLIN | POLLRDNORM;
  r |= POLLOUT | POLLWRNORM;
  if (rd_shut_ && wr_shut_) r |= POLLHUP;
  if (pending_error_ != 0) r |= POLLERR;
  return static_cast<short>(r & (events | POLLERR | POLLHUP));
}

short udp_socket::poll_now(short events) {
  std::unique_lock lk(eng_.mutex());
  return readiness(events);
}

}  // namespace anysock::lwip_detail
