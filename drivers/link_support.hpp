// Helpers the link drivers share (private to drivers/): reading driver options with messages that
// say how to fix them, and asking the OS about an interface (index, MTU, MAC, flags).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "link.hpp"

namespace anysock::drivers::detail {

/// What the OS says about an interface when a link opens.
struct interface_info {
  std::string name;
  int ifindex = 0;
  int mtu = 0;
  mac_address mac{};
  unsigned flags = 0;  // IFF_*
};

/// Reads a driver's options: rejects unknown and repeated keys on construction, and reads typed
/// values, throwing std::invalid_argument("<kind>: ...") that names the key and what it accepts.
class option_reader {
 public:
  option_reader(std::string_view kind, const link_options& options,
                std::span<const std::string_view> keys);

  /// The `iface` option: required, 1-15 characters, no '/' or whitespace.
  std::string iface() const;
  /// A string option, or `fallback` when absent.
  std::string text(std::string_view key, std::string_view fallback) const;
  /// An unsigned decimal option within [min, max], or `fallback` when absent.
  uint64_t number(std::string_view key, uint64_t fallback, uint64_t min, uint64_t max) const;
  /// A boolean option (1/0, yes/no, on/off, true/false), or `fallback` when absent.
  bool flag(std::string_view key, bool fallback) const;
  /// One of `choices`, or `fallback` when absent.
  std::string choice(std::string_view key, std::string_view fallback,
                     std::span<const std::string_view> choices) const;

  [[noreturn]] void bad_value(std::string_view key, std::string_view value,
                              std::string_view expected) const;

 private:
  const std::string* find(std::string_view key) const;

  std::string kind_;
  const link_options& options_;
};

/// Looks up an existing interface by name for driver `kind`; throws anysock::error(ENODEV) saying
/// how to create it, or another anysock::error if the OS cannot be asked.
interface_info find_interface(std::string_view kind, const std::string& name);
/// The same, returning ENODEV (no throw) when there is no such interface.
int query_interface(const std::string& name, interface_info& out);
/// The interface with index `ifindex`: 0 and its IFF_* flags, ENODEV when it is gone, or an errno.
int interface_flags(int ifindex, unsigned& flags);

/// Link events from the kernel (a NETLINK_ROUTE socket in RTMGRP_LINK), for drivers whose own
/// descriptor does not wake when the device goes away (an AF_XDP socket does not).
class link_monitor {
 public:
  /// Throws anysock::error if the socket cannot be opened.
  link_monitor();
  ~link_monitor();
  link_monitor(const link_monitor&) = delete;
  link_monitor& operator=(const link_monitor&) = delete;

  /// Readable when events are pending.
  int fd() const { return fd_; }
  /// Reads every pending event; true if one concerned `ifindex` (or events were lost).
  bool drain(int ifindex);

 private:
  int fd_;
};

/// The pending error on socket `fd` (SO_ERROR, which reading clears), or 0.
int socket_error(int fd);

/// Throws anysock::error(err, "<kind>: <what>"): the common form of an opening failure.
[[noreturn]] void fail(int err, std::string_view kind, const std::string& what);
/// The text of an EPERM failure: the capabilities needed ("CAP_NET_RAW,CAP_NET_ADMIN"), and how
/// to get them.
std::string privilege_hint(std::string_view capabilities);

}  // namespace anysock::drivers::detail
