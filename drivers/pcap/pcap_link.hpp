// drivers/pcap: libpcap on an existing Ethernet interface: immediate mode (no batching delay),
// non-blocking, inbound frames only (PCAP_D_IN, so frames we inject are not read back), promiscuous
// by default (a stack on the link answers to a MAC address of its own). pcap_dispatch() hands
// frames straight out of libpcap's ring; pcap_inject() sends one frame per system call.
#pragma once

#include <memory>
#include <span>
#include <string_view>

#include "../link.hpp"

namespace anysock::drivers {

/// Keys: `iface`, `promisc` (1, the default, or 0), `buffer` (libpcap's ring in bytes; default
/// 4 MiB).
std::span<const std::string_view> pcap_option_keys();
/// Opens a libpcap link; throws as open_link() does.
std::unique_ptr<link> open_pcap(const link_options& options);

}  // namespace anysock::drivers
