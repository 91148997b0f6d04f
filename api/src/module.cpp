// The module-level functions of Python's socket module.
#include <arpa/inet.h>

#include <array>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstring>
#include <exception>
#include <stdexcept>

#include "anysock/socket.hpp"
#include "sockaddr.hpp"
#include "socket_state.hpp"

namespace anysock {
namespace {

std::atomic<double> default_timeout{-1.0};  // < 0: None (blocking)

std::string port_text(int port) {
  detail::check_port(port);
  return std::to_string(port);
}

// Names enter the resolver as C strings: a NUL would silently cut them short.
void check_names(const std::optional<std::string>& host, const std::optional<std::string>& port) {
  if (host) detail::check_name(*host, "host name");
  if (port) detail::check_name(*port, "service name");
}

}  // namespace

std::optional<double> getdefaulttimeout() {
  double t = default_timeout.load(std::memory_order_relaxed);
  if (t < 0) return std::nullopt;
  return t;
}

void setdefaulttimeout(std::optional<double> seconds) {
  detail::check_timeout(seconds);
  default_timeout.store(seconds ? *seconds : -1.0, std::memory_order_relaxed);
}

bool has_ipv6() { return default_backend().has_family(AF_INET6); }

std::vector<addr_info> getaddrinfo(const std::optional<std::string>& host,
                                   const std::optional<std::string>& port, int family, int type,
                                   int proto, int flags) {
  check_names(host, port);
  return default_backend().getaddrinfo(host ? host->c_str() : nullptr,
                                       port ? port->c_str() : nullptr, family, type, proto, flags);
}

std::vector<addr_info> getaddrinfo(const std::optional<std::string>& host, uint16_t port,
                                   int family, int type, int proto, int flags) {
  return getaddrinfo(host, std::optional<std::string>(port_text(port)), family, type, proto, flags);
}

std::pair<std::string, std::string> getnameinfo(const address& addr, int flags) {
  backend& b = default_backend();
  detail::check_name(addr.host, "host name");
  // Python resolves the host first and insists on exactly one address.
  auto infos = b.getaddrinfo(addr.host.c_str(), port_text(addr.port).c_str(), AF_UNSPEC, SOCK_DGRAM,
                             0, AI_NUMERICHOST);
  if (infos.empty()) throw gaierror(EAI_NONAME, addr.host);
  if (infos.size() > 1) throw error(EINVAL, "sockaddr resolved to multiple addresses");
  address resolved = infos.front().addr;
  resolved.flowinfo = addr.flowinfo;
  if (addr.scope_id != 0) resolved.scope_id = addr.scope_id;
  if (infos.front().family == AF_INET && (addr.flowinfo != 0 || addr.scope_id != 0)) {
    throw error(EINVAL, "IPv4 sockaddr must be 2 tuple");
  }
  detail::sockaddr_any sa;
  detail::parse_numeric(infos.front().family, resolved, sa);
  return b.getnameinfo(sa.get(), sa.len, flags);
}

std::string gethostbyname(const std::string& name) {
  backend& b = default_backend();
  detail::sockaddr_any sa = detail::to_sockaddr(b, AF_INET, address{name, 0});
  return detail::from_sockaddr(sa.get(), sa.len).host;
}

host_entry gethostbyname_ex(const std::string& name) {
  detail::check_name(name, "host name");
  return default_backend().gethostbyname_ex(name);
}

host_entry gethostbyaddr(const std::string& ip_or_name) {
  detail::check_name(ip_or_name, "host name");
  return default_backend().gethostbyaddr(ip_or_name);
}

std::string gethostname() { return default_backend().gethostname(); }

std::string getfqdn(const std::string& name_in) {
  detail::check_name(name_in, "host name");
  std::string name = name_in;
  while (!name.empty() && std::isspace(static_cast<unsigned char>(name.front()))) name.erase(0, 1);
  while (!name.empty() && std::isspace(static_cast<unsigned char>(name.back()))) name.pop_back();
  if (name.empty() || name == "0.0.0.0" || name == "::") name = gethostname();
  try {
    host_entry e = gethostbyaddr(name);
    std::vector<std::string> candidates{e.name};
    candidates.insert(candidates.end(), e.aliases.begin(), e.aliases.end());
    for (const auto& c : candidates) {
      if (c.find('.') != std::string::npos) return c;
    }
    return e.name;
  } catch (const error&) {
    return name;
  }
}

int getprotobyname(const std::string& name) {
  detail::check_name(name, "protocol name");
  protoent entry{};
  protoent* result = nullptr;
  std::array<char, 1024> buf{};
  if (getprotobyname_r(name.c_str(), &entry, buf.data(), buf.size(), &result) != 0 ||
      result == nullptr) {
    throw error(ENOENT, "protocol not found: " + name);
  }
  return result->p_proto;
}

uint16_t getservbyname(const std::string& name, const std::string& proto) {
  detail::check_name(name, "service name");
  detail::check_name(proto, "protocol name");
  servent entry{};
  servent* result = nullptr;
  std::array<char, 1024> buf{};
  if (getservbyname_r(name.c_str(), proto.empty() ? nullptr : proto.c_str(), &entry, buf.data(),
                      buf.size(), &result) != 0 ||
      result == nullptr) {
    throw error(ENOENT, "service/proto not found: " + name + "/" + proto);
  }
  return ntohs(static_cast<uint16_t>(result->s_port));
}

std::string getservbyport(uint16_t port, const std::string& proto) {
  detail::check_name(proto, "protocol name");
  servent entry{};
  servent* result = nullptr;
  std::array<char, 1024> buf{};
  if (getservbyport_r(htons(port), proto.empty() ? nullptr : proto.c_str(), &entry, buf.data(),
                      buf.size(), &result) != 0 ||
      result == nullptr) {
    throw error(ENOENT, "port/proto not found: " + std::to_string(port) + "/" + proto);
  }
  return result->s_name;
}

std::pair<socket, socket> socketpair(int family, int type, int proto) {
  backend& b = default_backend();
  // Like CPython where AF_UNIX is missing: a connected TCP pair over the loopback.
  if (family == AF_UNIX && !b.has_family(AF_UNIX)) family = AF_INET;
  std::unique_ptr<socket_impl> first, second;
  const int kinds = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (int err = b.socketpair(family, kinds, proto, first, second); err != 0) {
    throw error(err, "socketpair");
  }
  auto make = [&](std::unique_ptr<socket_impl> impl) {
    auto st =
        std::make_shared<detail::socket_state>(b.share(), std::move(impl), family, kinds, proto);
    st->set_timeout((type & SOCK_NONBLOCK) ? std::optional<double>(0.0) : getdefaulttimeout());
    return detail::socket_access::make(std::move(st));
  };
  socket a = make(std::move(first));
  return {std::move(a), make(std::move(second))};
}

// fromfd lives with the kernel backend (stack/kernel), which owns kernel descriptors.

std::string inet_aton(const std::string& ip) {
  in_addr a{};
  if (ip.find('\0') != std::string::npos || ::inet_aton(ip.c_str(), &a) == 0) {
    throw error(EINVAL, "illegal IP address string passed to inet_aton");
  }
  return std::string(reinterpret_cast<const char*>(&a), sizeof a);
}

std::string inet_ntoa(std::string_view packed) {
  if (packed.size() != 4) throw error(EINVAL, "packed IP wrong length for inet_ntoa");
  char text[INET_ADDRSTRLEN];
  ::inet_ntop(AF_INET, packed.data(), text, sizeof text);
  return text;
}

std::string inet_pton(int family, const std::string& ip) {
  std::array<char, 16> out{};
  size_t size = family == AF_INET ? 4 : 16;
  if (family != AF_INET && family != AF_INET6) throw error(EAFNOSUPPORT, "inet_pton");
  if (ip.find('\0') != std::string::npos || ::inet_pton(family, ip.c_str(), out.data()) != 1) {
    throw error(EINVAL, "illegal IP address string passed to inet_pton");
  }
  return std::string(out.data(), size);
}

std::string inet_ntop(int family, std::string_view packed) {
  size_t size = 0;
  if (family == AF_INET) {
    size = 4;
  } else if (family == AF_INET6) {
    size = 16;
  } else {
    throw std::invalid_argument("unknown address family " + std::to_string(family));
  }
  if (packed.size() != size) {
    throw std::invalid_argument("invalid length of packed IP address string");
  }
  char text[INET6_ADDRSTRLEN];
  if (::inet_ntop(family, packed.data(), text, sizeof text) == nullptr) {
    throw error(errno, "inet_ntop");
  }
  return text;
}

socket create_connection(const address& addr) {
  return create_connection(addr, getdefaulttimeout(), std::nullopt);
}

socket create_connection(const address& addr, std::optional<double> timeout,
                         std::optional<address> source) {
  detail::check_timeout(timeout);
  auto infos = getaddrinfo(addr.host, port_text(addr.port), AF_UNSPEC, SOCK_STREAM);
  std::exception_ptr last;
  for (const addr_info& info : infos) {
    try {
      socket s(info.family, info.type, info.proto);
      s.settimeout(timeout);
      if (source) s.bind(*source);
      s.connect(info.addr);
      return s;
    } catch (const error&) {
      last = std::current_exception();
    }
  }
  if (last) std::rethrow_exception(last);
  throw error(ENOENT, "getaddrinfo returns an empty list");
}

}  // namespace anysock
