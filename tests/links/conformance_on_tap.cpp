// The conformance suite (tests/conformance, the same test bodies as for every backend) with one
// end an lwIP host on a TAP device and the other the Linux kernel, in a network namespace the
// binary makes for itself: an anysock server with a kernel client, and a kernel server with an
// anysock client. Names: the kernel's client resolves the lwIP host through an /etc/hosts of the
// namespace's own, the lwIP client the kernel's address through the lwIP hosts table.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>

#include "../conformance/fixture.hpp"
#include "anysock/lwip.hpp"
#include "links_support.hpp"

namespace anysock::testing {
namespace {

const test_link kTap = link_for("tap");

// The one lwIP host on the TAP, kept for the whole run: opening the TAP again for every test would
// wait for its link to come up each time.
std::shared_ptr<backend>& tap_host() {
  static auto* host = new std::shared_ptr<backend>;
  return *host;
}

class tap_environment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (!in_private_namespace()) return;
    ASSERT_EQ(create_kernel_side(kTap), "");
    // A default route, as a machine has one: the kernel refuses to even address the limited
    // broadcast (255.255.255.255) without a route for it.
    ASSERT_EQ(shell("ip route add default via " + kTap.lwip_ip4()), "");
    // The kernel sends at most 6 ICMP port unreachables to one peer, then one a second; the UDP
    // cases expect one for each datagram they send to a closed port. (Per namespace: ours.)
    for (const char* knob :
         {"/proc/sys/net/ipv4/icmp_ratelimit", "/proc/sys/net/ipv6/icmp/ratelimit"}) {
      std::ofstream(knob) << "0\n";
    }
    // Names for both directions (the kernel's resolver reads /etc/hosts; this namespace has its
    // own mounts, so the machine's file is untouched).
    // One file per process: ctest runs several of these at once.
    hosts_ = ::testing::TempDir() + "links_conformance_hosts_" + std::to_string(::getpid());
    {
      std::ofstream f(hosts_);
      f << "127.0.0.1 localhost\n::1 localhost ip6-localhost\n"
        << kTap.lwip_ip4() << " lwip-tap\n"
        << kTap.kernel_ip4() << " kernel-peer\n";
    }
    ASSERT_EQ(::mount(hosts_.c_str(), "/etc/hosts", nullptr, MS_BIND, nullptr), 0)
        << "bind-mounting an /etc/hosts for the namespace";
    lwip::add_host_entry("kernel-peer", kTap.kernel_ip4());
    tap_host() = make_backend("lwip+tap:iface=" + kTap.user_iface + ",ip=" + kTap.lwip_ip4() +
                              "/24,ip6=" + kTap.lwip_ip6() + "/64");
  }
  void TearDown() override {
    tap_host().reset();
    if (hosts_.empty()) return;
    ::umount("/etc/hosts");
    std::remove(hosts_.c_str());
  }

 private:
  std::string hosts_;
};

void skip_without_namespace() { GTEST_SKIP() << namespace_unavailable_reason(); }

// Outside the namespace the test is skipped (the kernel backend just keeps the fixture going).
std::shared_ptr<backend> lwip_on_tap() {
  if (tap_host()) return tap_host();
  skip_without_namespace();
  return make_backend("kernel");
}

std::vector<conformance_env> environments() {
  auto no_lwip_leaks = [] { EXPECT_EQ(lwip::leak_report(), "") << "lwIP memory still in use"; };
  std::vector<conformance_env> envs;

  conformance_env lwip_server;
  lwip_server.name = "tap_lwip_server_kernel_client";
  lwip_server.make_server = lwip_on_tap;
  lwip_server.make_client = [] { return make_backend("kernel"); };
  lwip_server.server_host4 = lwip_server.dial_host4 = kTap.lwip_ip4();
  lwip_server.server_host6 = lwip_server.dial_host6 = kTap.lwip_ip6();
  lwip_server.server_name = "lwip-tap";
  lwip_server.has_unix = false;
  lwip_server.after_each = no_lwip_leaks;
  envs.push_back(lwip_server);

  conformance_env kernel_server;
  kernel_server.name = "tap_kernel_server_lwip_client";
  kernel_server.make_server = [] { return make_backend("kernel"); };
  kernel_server.make_client = lwip_on_tap;
  kernel_server.server_host4 = kernel_server.dial_host4 = kTap.kernel_ip4();
  kernel_server.server_host6 = kernel_server.dial_host6 = kTap.kernel_ip6();
  kernel_server.server_name = "kernel-peer";
  kernel_server.has_unix = false;
  kernel_server.after_each = no_lwip_leaks;
  envs.push_back(kernel_server);
  return envs;
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(OverTap, Conformance, ::testing::ValuesIn(environments()),
                         [](const ::testing::TestParamInfo<conformance_env>& p) {
                           return p.param.name;
                         });

}  // namespace anysock::testing

int main(int argc, char** argv) {
  int status = anysock::testing::run_tests_in_namespace(argc, argv);
  if (status >= 0) return status;  // the child in the namespace ran the tests
  if (anysock::testing::in_private_namespace()) anysock::testing::prepare_links_namespace();
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new anysock::testing::tap_environment);
  return RUN_ALL_TESTS();
}
