#include "link.hpp"

#include <net/if.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "af_packet/af_packet_link.hpp"
#include "af_xdp/af_xdp_link.hpp"
#include "link_support.hpp"
#include "pcap/pcap_link.hpp"
#include "tap/tap_link.hpp"

namespace anysock::drivers {

tx_frame::tx_frame(std::span<const iovec> pieces) noexcept
    : many_(pieces.data()), count_(pieces.size()) {
  for (const iovec& piece : pieces) size_ += piece.iov_len;
}

void tx_frame::copy_to(uint8_t* out) const noexcept {
  for (const iovec& piece : pieces()) {
    if (piece.iov_len == 0) continue;
    std::memcpy(out, piece.iov_base, piece.iov_len);
    out += piece.iov_len;
  }
}

link_state link::state() const {
  unsigned flags = 0;
  int err = detail::interface_flags(ifindex_, flags);
  if (err == ENODEV) return link_state::gone;
  if (err != 0) return link_state::down;
  return (flags & IFF_UP) != 0 && (flags & IFF_RUNNING) != 0 ? link_state::up : link_state::down;
}

int link::failure(int os_error) {
  int err = check_interface();
  return err != 0 ? err : os_error;
}

int link::check_interface() {
  unsigned flags = 0;
  int err = detail::interface_flags(ifindex_, flags);
  if (err == ENODEV) {
    gone_ = true;
    return ENODEV;
  }
  if (err == 0 && (flags & IFF_UP) == 0) {
    down_ = true;
    return ENETDOWN;
  }
  return 0;
}

int link::standing_error() {
  if (gone_) return ENODEV;
  if (!down_) return 0;
  unsigned flags = 0;
  int err = detail::interface_flags(ifindex_, flags);
  if (err == ENODEV) {
    gone_ = true;
    return ENODEV;
  }
  if (err == 0 && (flags & IFF_UP) != 0) {
    down_ = false;
    return 0;
  }
  return ENETDOWN;
}

namespace {

struct driver_entry {
  std::string_view kind;
  std::span<const std::string_view> (*keys)();
  std::unique_ptr<link> (*open)(const link_options&);
};

constexpr std::array<driver_entry, 4> kDrivers{{
    {"tap", tap_option_keys, open_tap},
    {"pcap", pcap_option_keys, open_pcap},
    {"af_packet", af_packet_option_keys, open_af_packet},
    {"af_xdp", af_xdp_option_keys, open_af_xdp},
}};

constexpr std::array<std::string_view, 4> kKinds{"tap", "pcap", "af_packet", "af_xdp"};

const driver_entry* find_driver(std::string_view kind) {
  for (const driver_entry& d : kDrivers) {
    if (d.kind == kind) return &d;
  }
  return nullptr;
}

}  // namespace

std::unique_ptr<link> open_link(std::string_view kind, const link_options& options) {
  const driver_entry* d = find_driver(kind);
  if (d == nullptr) {
    throw std::invalid_argument("unknown link driver '" + std::string(kind) +
                                "' (known: tap, pcap, af_packet, af_xdp)");
  }
  return d->open(options);
}

std::span<const std::string_view> link_option_keys(std::string_view kind) {
  const driver_entry* d = find_driver(kind);
  return d != nullptr ? d->keys() : std::span<const std::string_view>();
}

std::span<const std::string_view> link_kinds() { return kKinds; }

}  // namespace anysock::drivers
