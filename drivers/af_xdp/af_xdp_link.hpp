// drivers/af_xdp: an AF_XDP socket (libxdp's xsk API) on one queue of an existing interface.
// libxdp attaches its default XDP program, which redirects every frame arriving on that queue into
// the socket's receive ring; frames live in a UMEM area shared with the kernel, read in place and
// returned to the fill ring at once (so the fill ring stays full). Transmit copies into free UMEM
// frames, and flush() kicks the kernel once for the whole batch (in copy mode, on the link's own
// transmit thread when there is a CPU to spare: see tx_kicker.hpp). Zero-copy is asked for first;
// where the device refuses it (veth, most virtual devices) the socket runs in copy mode.
//
// fd() is an epoll descriptor over the socket and a netlink watch on the interface: an AF_XDP
// socket alone never wakes a poller when its device is deleted.
#pragma once

#include <memory>
#include <span>
#include <string_view>

#include "../link.hpp"

namespace anysock::drivers {

/// Keys: `iface`; `queue` (the interface queue to bind, default 0); `mode` (auto, the default:
/// zero-copy when the device allows, else copy; zerocopy; copy); `xdp_mode` (how the XDP program
/// attaches: auto, the default; native; skb); `frames` (UMEM frames, half for receiving and half
/// for sending; a power of two, default 4096); `frame_size` (2048 or 4096, the default);
/// `tx_thread` (copy mode: 1 runs the send system call on a thread of the link's own; default 1
/// with more than one CPU).
std::span<const std::string_view> af_xdp_option_keys();
/// Opens an AF_XDP link; throws as open_link() does.
std::unique_ptr<link> open_af_xdp(const link_options& options);

}  // namespace anysock::drivers
