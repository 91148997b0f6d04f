// drivers/af_packet: an AF_PACKET socket on an existing Ethernet interface with TPACKET_V3 rings
// shared with the kernel: frames arrive in blocks of the receive ring and are read in place; frames
// to send are written into transmit-ring slots and go out together with one sendto() per flush
// (on the link's own transmit thread, see tx_kicker.hpp, when there is a CPU to spare). Each slot
// starts with a virtio-net header (PACKET_VNET_HDR) asking the kernel to copy the whole frame into
// the skb: without it the kernel maps the slot as page fragments, which a local receiver (a veth
// peer) copies out again and pulls the headers from, frame by frame.
// PACKET_IGNORE_OUTGOING keeps the kernel's own outgoing frames on the interface out of the
// receive ring.
#pragma once

#include <memory>
#include <span>
#include <string_view>

#include "../link.hpp"

namespace anysock::drivers {

/// Keys: `iface`; `promisc` (1, the default, or 0); `blocks` and `block_size` (the receive ring:
/// 64 blocks of 128 KiB by default; block_size a power of two, at least a page); `timeout_ms` (how
/// long the kernel holds a partly filled receive block before handing it over: the receive latency
/// at low rates; default 1); `tx_frames` (transmit-ring slots, a power of two; default 2048, a
/// whole lwIP send window); `qdisc_bypass` (1, the default: frames skip the interface's queueing
/// discipline); `version` (3, the default: TPACKET_V3 blocks; 2: TPACKET_V2, a slot per frame,
/// each handed over at once); `tx_thread` (1: the send system call runs on a thread of the link's
/// own; default 1 with more than one CPU); `vnet_hdr` (1, the default; 0 sends without the
/// virtio-net header, the kernel then mapping slots as page fragments).
std::span<const std::string_view> af_packet_option_keys();
/// Opens an AF_PACKET link; throws as open_link() does.
std::unique_ptr<link> open_af_packet(const link_options& options);

}  // namespace anysock::drivers
