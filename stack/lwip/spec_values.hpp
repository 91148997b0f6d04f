// Checks of the values lwIP backend specs share (ip, gw, ip6, mtu, mac, pcap_mode), with messages
// that name the spec kind, the key and what it accepts. Each throws std::invalid_argument.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace anysock::lwip_detail {

/// `ip=a.b.c.d/len` (with_prefix) or `gw=a.b.c.d`.
void check_ip4(std::string_view kind, const std::string& key, const std::string& value,
               bool with_prefix);
/// `ip6=addr/len` (or `key=addr/len` for another key); refuses what Linux will not put on an
/// interface: the unspecified address, multicast and loopback addresses.
void check_ip6(std::string_view kind, const std::string& value, const std::string& key = "ip6");
/// An IPv4 or IPv6 address without prefix (`dns=`).
void check_ip(std::string_view kind, const std::string& key, const std::string& value);
/// `mtu=` within [min, max].
size_t parse_mtu(std::string_view kind, const std::string& value, size_t min, size_t max);
/// `mac=xx:xx:xx:xx:xx:xx`.
void check_mac(std::string_view kind, const std::string& value);
/// `pcap_mode=0640`: permission bits in octal, at most 0777.
unsigned parse_file_mode(std::string_view kind, const std::string& key, const std::string& value);

}  // namespace anysock::lwip_detail
