// drivers/tap: a TAP device (/dev/net/tun with IFF_TAP | IFF_NO_PI). Frames written to the device
// arrive at the kernel as if received on the interface; frames the kernel sends out of it are read
// here. One read(2) or write(2) per frame: the device has no batch interface.
#pragma once

#include <memory>
#include <span>
#include <string_view>

#include "../link.hpp"

namespace anysock::drivers {

/// Keys: `iface` (the TAP's name), `create` (1: create it when missing, the default; 0: only attach
/// to an existing one). A TAP this link created disappears when the link closes.
std::span<const std::string_view> tap_option_keys();
/// Opens a TAP link; throws as open_link() does.
std::unique_ptr<link> open_tap(const link_options& options);

}  // namespace anysock::drivers
