// Conversions between anysock::address and the platform's sockaddr structs.
#pragma once

#include <sys/socket.h>

#include <string_view>

#include "anysock/address.hpp"
#include "anysock/backend.hpp"

namespace anysock::detail {

struct sockaddr_any {
  sockaddr_storage storage{};
  socklen_t len = 0;
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
};

/// `addr` for a socket of `family`. Numeric hosts, "" and "<broadcast>" are parsed here; other
/// names are resolved through `b` (raising gaierror). Bad input raises std::invalid_argument or
/// error.
sockaddr_any to_sockaddr(backend& b, int family, const address& addr);
/// std::invalid_argument (as CPython) for a name with a NUL character, a port outside 0-65535, an
/// AF_INET/AF_INET6 address with either, or an IPv6 flowinfo past 0xfffff.
void check_name(std::string_view name, const char* what);
void check_port(int port);
void check_inet_address(int family, const address& a);
/// Only numeric hosts (and "", "<broadcast>"): false if `host` is not one. Checks the address
/// (check_inet_address) first.
bool parse_numeric(int family, const address& addr, sockaddr_any& out);
/// A numeric address for a sockaddr of any supported family.
address from_sockaddr(const sockaddr* sa, socklen_t len);

}  // namespace anysock::detail
