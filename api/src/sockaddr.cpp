#include "sockaddr.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>
#include <stdexcept>

#include "anysock/error.hpp"

namespace anysock::detail {
namespace {

bool parse_ipv4(const address& a, sockaddr_any& out) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(static_cast<uint16_t>(a.port));
  if (a.host.empty()) {
    sin.sin_addr.s_addr = htonl(INADDR_ANY);
  } else if (a.host == "<broadcast>") {
    sin.sin_addr.s_addr = htonl(INADDR_BROADCAST);
  } else if (inet_pton(AF_INET, a.host.c_str(), &sin.sin_addr) != 1) {
    return false;
  }
  std::memcpy(&out.storage, &sin, sizeof sin);
  out.len = sizeof sin;
  return true;
}

bool parse_ipv6(const address& a, sockaddr_any& out) {
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(static_cast<uint16_t>(a.port));
  sin6.sin6_flowinfo = htonl(a.flowinfo);
  sin6.sin6_scope_id = a.scope_id;
  std::string host = a.host;
  if (auto pct = host.find('%'); pct != std::string::npos) {  // "fe80::1%eth0"
    std::string zone = host.substr(pct + 1);
    host.resize(pct);
    unsigned idx = if_nametoindex(zone.c_str());
    if (idx == 0) {
      char* end = nullptr;
      unsigned long n = std::strtoul(zone.c_str(), &end, 10);
      if (zone.empty() || *end != '\0') return false;
      idx = static_cast<unsigned>(n);
    }
    if (a.scope_id == 0) sin6.sin6_scope_id = idx;
  }
  if (host.empty()) {
    sin6.sin6_addr = in6addr_any;
  } else if (inet_pton(AF_INET6, host.c_str(), &sin6.sin6_addr) != 1) {
    return false;
  }
  std::memcpy(&out.storage, &sin6, sizeof sin6);
  out.len = sizeof sin6;
  return true;
}

void parse_unix(const address& a, sockaddr_any& out) {
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (a.host.size() >= sizeof sun.sun_path + (a.host.starts_with('\0') ? 1 : 0)) {
    throw error(ENAMETOOLONG, "AF_UNIX path too long");
  }
  std::memcpy(sun.sun_path, a.host.data(), a.host.size());
  std::memcpy(&out.storage, &sun, sizeof sun);
  // Abstract names are exactly as long as given; paths include their terminating NUL.
  out.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + a.host.size() +
                                   (a.host.starts_with('\0') ? 0 : 1));
}

}  // namespace

void check_inet_address(int family, const address& a) {
  if (family != AF_INET && family != AF_INET6) return;  // AF_UNIX: abstract names start with NUL
  check_name(a.host, "host name");
  check_port(a.port);
  if (family == AF_INET6 && a.flowinfo > 0xfffff) {
    throw std::invalid_argument("flowinfo must be 0-1048575");
  }
}

void check_name(std::string_view name, const char* what) {
  if (name.find('\0') != std::string_view::npos) {
    throw std::invalid_argument(std::string(what) + " must not contain a null character");
  }
}

void check_port(int port) {
  if (port < 0 || port > 65535) throw std::invalid_argument("port must be 0-65535");
}

bool parse_numeric(int family, const address& addr, sockaddr_any& out) {
  check_inet_address(family, addr);
  switch (family) {
    case AF_INET:
      return parse_ipv4(addr, out);
    case AF_INET6:
      return parse_ipv6(addr, out);
    case AF_UNIX:
      parse_unix(addr, out);
      return true;
    default:
      throw error(EAFNOSUPPORT, "unsupported address family");
  }
}

sockaddr_any to_sockaddr(backend& b, int family, const address& addr) {
  sockaddr_any out;
  if (parse_numeric(family, addr, out)) return out;  // checks the address first
  // A name: resolve it for this family, as Python's setipaddr does.
  auto results = b.getaddrinfo(addr.host.c_str(), nullptr, family, 0, 0, 0);
  if (results.empty()) throw gaierror(EAI_NONAME, addr.host);
  address resolved = results.front().addr;
  resolved.port = addr.port;
  if (family == AF_INET6) {
    resolved.flowinfo = addr.flowinfo;
    if (addr.scope_id != 0) resolved.scope_id = addr.scope_id;
  }
  if (!parse_numeric(family, resolved, out)) throw gaierror(EAI_NONAME, addr.host);
  return out;
}

address from_sockaddr(const sockaddr* sa, socklen_t len) {
  address a;
  if (len == 0) return a;
  char text[INET6_ADDRSTRLEN] = {};
  switch (sa->sa_family) {
    case AF_INET: {
      sockaddr_in sin;
      std::memcpy(&sin, sa, sizeof sin);
      inet_ntop(AF_INET, &sin.sin_addr, text, sizeof text);
      a.host = text;
      a.port = ntohs(sin.sin_port);
      break;
    }
    case AF_INET6: {
      sockaddr_in6 sin6;
      std::memcpy(&sin6, sa, sizeof sin6);
      inet_ntop(AF_INET6, &sin6.sin6_addr, text, sizeof text);
      a.host = text;
      a.port = ntohs(sin6.sin6_port);
      a.flowinfo = ntohl(sin6.sin6_flowinfo);
      a.scope_id = sin6.sin6_scope_id;
      break;
    }
    case AF_UNIX: {
      sockaddr_un sun{};
      std::memcpy(&sun, sa, std::min<size_t>(len, sizeof sun));
      size_t n = len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
      if (n > 0 && sun.sun_path[0] == '\0') {
        a.host.assign(sun.sun_path, n);  // abstract: every byte counts
      } else {
        a.host.assign(sun.sun_path, strnlen(sun.sun_path, n));
      }
      break;
    }
    default:
      break;
  }
  return a;
}

}  // namespace anysock::detail

namespace anysock {

std::string to_string(const address& a) {
  if (a.host.find(':') != std::string::npos) {
    return "[" + a.host + "]:" + std::to_string(a.port);
  }
  return a.host + ":" + std::to_string(a.port);
}

}  // namespace anysock
