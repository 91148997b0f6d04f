// What TCP and UDP sockets over lwIP share: descriptor numbers, address conversion and the socket
// options both kinds have.
#include "lwip_socket.hpp"

#include <netinet/in.h>
#include <netinet/ip.h>

#include <cstring>
#include <mutex>
#include <set>

namespace anysock::lwip_detail {
namespace {

// Descriptor numbers of lwIP sockets: the lowest free number from 1 << 20 up, process-wide, so they
// never look like (or get mistaken for) the kernel's small descriptor numbers.
class fileno_pool {
 public:
  int take() {
    std::lock_guard lk(mu_);
    if (!free_.empty()) {
      int n = *free_.begin();
      free_.erase(free_.begin());
      return n;
    }
    return next_++;
  }
  void give(int n) {
    std::lock_guard lk(mu_);
    free_.insert(n);
  }

 private:
  std::mutex mu_;
  std::set<int> free_;
  int next_ = 1 << 20;
};

fileno_pool& filenos() {
  static auto* pool = new fileno_pool;  // never destroyed: sockets may outlive static destruction
  return *pool;
}

// Linux reports twice the buffer size it was given (the other half is bookkeeping) and enforces a
// minimum; defaults are Linux's for TCP and UDP.
constexpr int kMinRcvbuf = 2304;
constexpr int kMinSndbuf = 4608;

}  // namespace

lwip_socket::lwip_socket(host& h, int family)
    : host_(h),
      eng_(h.eng()),
      family_(family),
      fileno_(filenos().take()),
      rcvbuf_(131072),
      sndbuf_(16384) {}

lwip_socket::~lwip_socket() { filenos().give(fileno_); }

int lwip_socket::from_sockaddr(const sockaddr* sa, socklen_t len, ip_addr_t& ip,
                               uint16_t& port) const {
  if (sa == nullptr) return EFAULT;
  if (len < static_cast<socklen_t>(sizeof(sa_family_t))) return EINVAL;
  if (family_ == AF_INET) {
    if (sa->sa_family != AF_INET) return EAFNOSUPPORT;
    if (len < static_cast<socklen_t>(sizeof(sockaddr_in))) return EINVAL;
    sockaddr_in sin;
    std::memcpy(&sin, sa, sizeof sin);
    ip_addr_set_zero_ip4(&ip);
    ip4_addr_set_u32(ip_2_ip4(&ip), sin.sin_addr.s_addr);
    port = ntohs(sin.sin_port);
    return 0;
  }
  if (sa->sa_family != AF_INET6) return EAFNOSUPPORT;
  if (len < static_cast<socklen_t>(sizeof(sockaddr_in6))) return EINVAL;
  sockaddr_in6 sin6;
  std::memcpy(&sin6, sa, sizeof sin6);
  port = ntohs(sin6.sin6_port);
  ip6_addr_t a6;
  std::memcpy(a6.addr, &sin6.sin6_addr, 16);
  ip6_addr_clear_zone(&a6);
  if (ip6_addr_isipv4mappedipv6(&a6)) {
    if (v6only_) return ENETUNREACH;
    ip_addr_set_zero_ip4(&ip);
    ip4_addr_set_u32(ip_2_ip4(&ip), a6.addr[3]);
    return 0;
  }
  ip_addr_copy_from_ip6(ip, a6);
  return 0;
}

void lwip_socket::to_sockaddr(const ip_addr_t& ip, uint16_t port, sockaddr_storage& out,
                              socklen_t& len) const {
  std::memset(&out, 0, sizeof out);
  if (family_ == AF_INET) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = IP_IS_V4_VAL(ip) ? ip4_addr_get_u32(ip_2_ip4(&ip)) : 0;
    std::memcpy(&out, &sin, sizeof sin);
    len = sizeof sin;
    return;
  }
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(port);
  if (IP_IS_V6_VAL(ip)) {
    std::memcpy(&sin6.sin6_addr, ip_2_ip6(&ip)->addr, 16);
  } else if (IP_IS_V4_VAL(ip) && !ip4_addr_isany_val(*ip_2_ip4(&ip))) {
    uint32_t mapped[4] = {0, 0, htonl(0xffff), ip4_addr_get_u32(ip_2_ip4(&ip))};
    std::memcpy(&sin6.sin6_addr, mapped, 16);
  }
  std::memcpy(&out, &sin6, sizeof sin6);
  len = sizeof sin6;
}

int lwip_socket::bind(const sockaddr* addr, socklen_t len) {
  ip_addr_t ip;
  uint16_t port = 0;
  if (int e = from_sockaddr(addr, len, ip, port); e != 0) return e == ENETUNREACH ? EINVAL : e;
  std::unique_lock lk(eng_.mutex());
  eng_.enter(&host_);
  if (host_.down()) return ENETDOWN;
  if (is_any(ip) && family_ == AF_INET6) ip = wildcard();
  return bind_locked(ip, port);
}

int lwip_socket::put_int(int v, void* value, socklen_t& len) {
  if (len <= 0) return EINVAL;
  size_t n = std::min<size_t>(static_cast<size_t>(len), sizeof v);  // Linux truncates
  std::memcpy(value, &v, n);
  len = static_cast<socklen_t>(n);
  return 0;
}

ip_addr_t lwip_socket::wildcard() const {
  ip_addr_t a;
  if (family_ == AF_INET) {
    ip_addr_set_zero_ip4(&a);
  } else if (v6only_) {
    ip_addr_set_zero_ip6(&a);
  } else {
    ip_addr_copy(a, *IP_ANY_TYPE);  // dual-stack: IPv6 and IPv4 (as mapped addresses)
  }
  return a;
}

int lwip_socket::common_getsockopt(int level, int opt, int& value, bool& handled) const {
  handled = true;
  if (level == SOL_SOCKET) {
    switch (opt) {
      case SO_REUSEADDR:
        value = reuse_ ? 1 : 0;
        return 0;
      case SO_BROADCAST:
        value = broadcast_ ? 1 : 0;
        return 0;
      case SO_RCVBUF:
        value = rcvbuf_;
        return 0;
      case SO_SNDBUF:
        value = sndbuf_;
        return 0;
      case SO_DOMAIN:
        value = family_;
        return 0;
      default:
        break;
    }
  } else if (level == IPPROTO_IP && family_ == AF_INET) {
    switch (opt) {
      case IP_TTL:
        value = ttl_;
        return 0;
      case IP_TOS:
        value = tos_;
        return 0;
      default:
        break;
    }
  } else if (level == IPPROTO_IPV6 && family_ == AF_INET6) {
    switch (opt) {
      case IPV6_V6ONLY:
        value = v6only_ ? 1 : 0;
        return 0;
      case IPV6_UNICAST_HOPS:
        value = ttl_;
        return 0;
      default:
        break;
    }
  }
  handled = false;
  return 0;
}

int lwip_socket::common_setsockopt(int level, int opt, int value, bool& handled) {
  handled = true;
  if (level == SOL_SOCKET) {
    switch (opt) {
      case SO_REUSEADDR:
        reuse_ = value != 0;
        return 0;
      case SO_BROADCAST:
        broadcast_ = value != 0;
        return 0;
      case SO_RCVBUF:
        rcvbuf_ = std::max(kMinRcvbuf, value > (1 << 29) ? (1 << 30) : value * 2);
        return 0;
      case SO_SNDBUF:
        sndbuf_ = std::max(kMinSndbuf, value > (1 << 29) ? (1 << 30) : value * 2);
        return 0;
      default:
        break;
    }
  } else if (level == IPPROTO_IP && family_ == AF_INET) {
    switch (opt) {
      case IP_TTL:
        if (value == -1) value = 64;
        if (value < 1 || value > 255) return EINVAL;
        ttl_ = value;
        return 0;
      case IP_TOS:
        tos_ = value & 0xff;
        return 0;
      default:
        break;
    }
  } else if (level == IPPROTO_IPV6 && family_ == AF_INET6) {
    switch (opt) {
      case IPV6_UNICAST_HOPS:
        if (value == -1) value = 64;
        if (value < 0 || value > 255) return EINVAL;
        ttl_ = value;
        return 0;
      default:
        break;
    }
  }
  handled = false;
  return 0;
}

short readiness_locked(socket_impl* s, short events) {
  if (auto* t = dynamic_cast<tcp_socket*>(s)) return t->readiness(events);
  if (auto* u = dynamic_cast<udp_socket*>(s)) return u->readiness(events);
  return 0;
}

}  // namespace anysock::lwip_detail
