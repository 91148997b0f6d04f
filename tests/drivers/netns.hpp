// The driver tests run in a network namespace of their own: main() re-executes the test binary in a
// child that unshared its network and mount namespaces, so every interface a test makes (veth
// pairs, TAPs) vanishes with the process, even after a crash. Helpers here set up the kernel's side
// with the usual tools (ip, ethtool) and read it back independently of the drivers (sysfs,
// AF_PACKET sockets).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace anysock::testing {

/// Whether this process runs inside the private namespace; if not, why (then tests skip).
bool in_private_namespace();
std::string namespace_unavailable_reason();

/// Runs main() of the test binary, in a fresh namespace when possible (see the top).
int run_tests_in_namespace(int argc, char** argv);

/// Inside the namespace, before the tests: IPv6 off (no background noise on links), lo up.
void prepare_namespace();

/// Runs a shell command; returns "" on success, else the command, exit status and its output.
std::string shell(const std::string& command);

/// An interface's MAC address read from sysfs.
std::array<uint8_t, 6> sysfs_mac(const std::string& iface);

/// An AF_PACKET socket on the kernel's side of a link, receiving frames of one ethertype (both
/// directions are seen by the kernel there as incoming frames) and sending frames out of it.
class kernel_socket {
 public:
  kernel_socket(const std::string& iface, uint16_t ethertype);
  ~kernel_socket();
  kernel_socket(const kernel_socket&) = delete;
  kernel_socket& operator=(const kernel_socket&) = delete;

  /// Sends one frame out of the interface; false on failure.
  bool send(const std::vector<uint8_t>& frame);
  /// Receives frames until `count` arrived or `seconds` passed (never a speed expectation).
  std::vector<std::vector<uint8_t>> receive(size_t count, double seconds);

 private:
  int fd_;
  int ifindex_;
};

}  // namespace anysock::testing
