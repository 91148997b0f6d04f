#include "spec_values.hpp"

#include <arpa/inet.h>

#include <cstdio>
#include <stdexcept>

namespace anysock::lwip_detail {
namespace {

std::string prefix(std::string_view kind) { return std::string(kind) + ": "; }

int prefix_of(std::string_view kind, const std::string& value, int max, const std::string& key) {
  auto slash = value.find('/');
  if (slash == std::string::npos) return max == 32 ? 24 : 64;
  try {
    size_t used = 0;
    int p = std::stoi(value.substr(slash + 1), &used);
    if (used == value.size() - slash - 1 && p >= 0 && p <= max) return p;
  } catch (const std::exception&) {
  }
  throw std::invalid_argument(prefix(kind) + "bad prefix length in " + key + "=" + value);
}

}  // namespace

void check_ip4(std::string_view kind, const std::string& key, const std::string& value,
               bool with_prefix) {
  std::string addr = value.substr(0, value.find('/'));
  in_addr a{};
  if (inet_pton(AF_INET, addr.c_str(), &a) != 1 || (!with_prefix && addr != value)) {
    throw std::invalid_argument(prefix(kind) + key + "=" + value + " is not an IPv4 address" +
                                (with_prefix ? " (a.b.c.d/len)" : ""));
  }
  if (with_prefix) prefix_of(kind, value, 32, key);
}

void check_ip6(std::string_view kind, const std::string& value, const std::string& key) {
  std::string addr = value.substr(0, value.find('/'));
  in6_addr a{};
  if (inet_pton(AF_INET6, addr.c_str(), &a) != 1) {
    throw std::invalid_argument(prefix(kind) + key + "=" + value +
                                " is not an IPv6 address (addr/len)");
  }
  prefix_of(kind, value, 128, key);
  // Linux refuses these on an interface (EADDRNOTAVAIL): no host may hold them.
  const bool unspecified = IN6_IS_ADDR_UNSPECIFIED(&a);
  if (unspecified || IN6_IS_ADDR_MULTICAST(&a) || IN6_IS_ADDR_LOOPBACK(&a)) {
    throw std::invalid_argument(prefix(kind) + key + "=" + value + " cannot be a host's address (" +
                                (unspecified                 ? "unspecified"
                                 : IN6_IS_ADDR_MULTICAST(&a) ? "multicast"
                                                             : "loopback") +
                                ")");
  }
}

void check_ip(std::string_view kind, const std::string& key, const std::string& value) {
  in_addr a4{};
  in6_addr a6{};
  if (inet_pton(AF_INET, value.c_str(), &a4) != 1 && inet_pton(AF_INET6, value.c_str(), &a6) != 1) {
    throw std::invalid_argument(prefix(kind) + key + "=" + value +
                                " is not an IPv4 or IPv6 address");
  }
}

size_t parse_mtu(std::string_view kind, const std::string& value, size_t min, size_t max) {
  size_t used = 0;
  long mtu = -1;
  try {
    mtu = std::stol(value, &used);
  } catch (const std::exception&) {
  }
  if (used != value.size() || mtu < static_cast<long>(min) || mtu > static_cast<long>(max)) {
    throw std::invalid_argument(prefix(kind) + "mtu=" + value + " must be " + std::to_string(min) +
                                ".." + std::to_string(max));
  }
  return static_cast<size_t>(mtu);
}

void check_mac(std::string_view kind, const std::string& value) {
  unsigned m[6];
  char tail = 0;
  if (std::sscanf(value.c_str(), "%x:%x:%x:%x:%x:%x%c", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5],
                  &tail) != 6) {
    throw std::invalid_argument(prefix(kind) + "mac=" + value + " is not xx:xx:xx:xx:xx:xx");
  }
  for (unsigned b : m) {
    if (b > 0xff) {
      throw std::invalid_argument(prefix(kind) + "mac=" + value + " is not xx:xx:xx:xx:xx:xx");
    }
  }
}

unsigned parse_file_mode(std::string_view kind, const std::string& key, const std::string& value) {
  unsigned mode = 0;
  bool ok = !value.empty() && value.size() <= 4;
  for (char c : value) {
    ok = ok && c >= '0' && c <= '7';
    if (ok) mode = mode * 8 + static_cast<unsigned>(c - '0');
  }
  if (!ok || mode > 0777) {
    throw std::invalid_argument(prefix(kind) + key + "=" + value +
                                " is not a file mode (octal permission bits, e.g. 0600 or 0644)");
  }
  return mode;
}

}  // namespace anysock::lwip_detail
