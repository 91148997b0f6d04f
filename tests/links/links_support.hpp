// What the tests of lwIP hosts on real links share: the kernel's side of each driver's link in the
// test's own network namespace (tests/drivers/netns.hpp), the spec of the lwIP host on the other
// side, and child processes (curl, nc, dnsmasq, python3, the example programs).
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../drivers/netns.hpp"
#include "../support/support.hpp"
#include "anysock/backend.hpp"

namespace anysock::testing {

/// One driver's link: the kernel's interface (addressed 10.77.N.1/24 and fd00:77:N::1/64) and the
/// interface the lwIP host attaches to (the same TAP, or the other end of a veth pair), where the
/// lwIP host is 10.77.N.2 and fd00:77:N::2.
struct test_link {
  std::string driver;  // "tap", "pcap", "af_packet", "af_xdp"
  int n = 1;           // 1 tap, 2 pcap, 3 af_packet, 4 af_xdp
  std::string kernel_iface;
  std::string user_iface;

  std::string kernel_ip4() const { return "10.77." + std::to_string(n) + ".1"; }
  std::string lwip_ip4() const { return "10.77." + std::to_string(n) + ".2"; }
  std::string kernel_ip6() const { return "fd00:77:" + std::to_string(n) + "::1"; }
  std::string lwip_ip6() const { return "fd00:77:" + std::to_string(n) + "::2"; }
  /// The lwIP host's spec, with `extra` keys appended (",dns=...").
  std::string spec(const std::string& extra = "") const;
};

/// The link for `driver`.
test_link link_for(const std::string& driver);
/// The drivers every parameterised test runs on.
std::vector<std::string> all_drivers();

/// Creates the kernel's side of `l` in this namespace: the TAP or veth pair, addresses, offloads
/// off. Returns "" or what failed.
std::string create_kernel_side(const test_link& l);

/// Inside the namespace: lo up, IPv6 on without duplicate address detection.
void prepare_links_namespace();

/// A fixture that skips outside a private namespace, creates the kernel's side of its link and
/// the lwIP host on it (`host_`), and checks after the test that lwIP leaked nothing.
class LinkTest : public ::testing::Test {
 protected:
  /// Sets up `driver`'s link and host (call first in each test body or SetUp).
  void open(const std::string& driver, const std::string& extra_keys = "");
  void TearDown() override;

  test_link link_;
  std::shared_ptr<backend> host_;
};

/// A child process whose stdout (and stderr) the test reads; killed (SIGTERM, then SIGKILL) and
/// reaped when destroyed. `env` entries (NAME=value) are added to the test's environment.
class child {
 public:
  child(const std::vector<std::string>& argv, const std::vector<std::string>& env = {});
  ~child();
  child(const child&) = delete;
  child& operator=(const child&) = delete;

  /// Reads output until a line containing `text` arrives (returned) or `seconds` pass (nullopt).
  std::optional<std::string> wait_for_line(const std::string& text, double seconds);
  /// Waits for the child to exit within `seconds`; its exit status, or -1 (then it is killed).
  int wait(double seconds);
  /// All output read so far.
  const std::string& output() const { return output_; }

 private:
  bool read_some(int timeout_ms);

  pid_t pid_ = -1;
  int out_ = -1;
  std::string output_;
  size_t scanned_ = 0;
};

/// Runs `command` with sh in this namespace; {exit status, stdout}. Status -1 when it could not
/// run.
std::pair<int, std::string> run(const std::string& command);

/// The SHA-256 of a byte string, as sha256sum prints it.
std::string sha256_hex(const std::string& data);

}  // namespace anysock::testing
