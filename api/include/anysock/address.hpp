// Socket addresses as Python spells them, and the records the name functions return.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace anysock {

/// A socket address. AF_INET uses {host, port}; AF_INET6 all four fields; AF_UNIX puts the path in
/// `host` (a leading '\0' names Linux's abstract namespace). For IPv4, "" means INADDR_ANY and
/// "<broadcast>" INADDR_BROADCAST; a name that is not numeric is resolved through the socket's
/// backend. Addresses returned by anysock are always numeric. Where an address is used, a port
/// outside 0–65535, an IPv6 flowinfo past 0xfffff or a host name with a NUL character (AF_INET,
/// AF_INET6) is std::invalid_argument, as CPython refuses them.
struct address {
  std::string host;
  int port = 0;  ///< 0–65535; an int so that an out-of-range port is refused, not truncated
  uint32_t flowinfo = 0;
  uint32_t scope_id = 0;

  friend bool operator==(const address&, const address&) = default;
};

/// One result of getaddrinfo(): what to pass to socket() and connect()/bind().
struct addr_info {
  int family = 0;
  int type = 0;
  int proto = 0;
  std::string canonname;
  address addr;
};

/// Result of gethostbyname_ex() / gethostbyaddr(): primary name, alias names, numeric addresses.
struct host_entry {
  std::string name;
  std::vector<std::string> aliases;
  std::vector<std::string> addresses;
};

/// "host:port" for IPv4, "[host]:port" for IPv6, the path for AF_UNIX (for messages and logs).
std::string to_string(const address& a);

}  // namespace anysock
