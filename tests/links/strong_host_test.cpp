// Two lwIP hosts in one process, A on a TAP and B on a veth pair: a packet for B's address that the
// kernel sends into A's link reaches A, and A must not take it (the strong host model, as Linux
// hosts on separate machines would behave): no echo reply, no RST for B's listening port, dropped
// and counted. A still answers for its own address.
#include <gtest/gtest.h>

#include <cerrno>
#include <string>

#include "../lwip/lwip_support.hpp"
#include "anysock/lwip.hpp"
#include "anysock/socket.hpp"
#include "links_support.hpp"

namespace anysock::testing {
namespace {

class StrongHost : public LinkTest {
 protected:
  void SetUp() override {
    open("tap");  // host A
    if (IsSkipped() || HasFatalFailure()) return;
    other_ = link_for("af_packet");
    ASSERT_EQ(create_kernel_side(other_), "");
    host_b_ = make_backend(other_.spec());
    // The kernel learns A's MAC, then sends what is for B's addresses into A's link, to A's MAC.
    auto [status, out] = run("ping -c 1 -W 2 " + link_.lwip_ip4() + " 2>&1");
    ASSERT_EQ(status, 0) << out;
    auto [st, mac] = run("ip neigh show " + link_.lwip_ip4() + " dev " + link_.kernel_iface +
                         " | awk '{print $3}'");
    ASSERT_EQ(st, 0);
    while (!mac.empty() && (mac.back() == '\n' || mac.back() == ' ')) mac.pop_back();
    ASSERT_EQ(mac.size(), 17u) << mac;
    const std::string dev = " dev " + link_.kernel_iface;
    ASSERT_EQ(
        shell("ip route add " + other_.lwip_ip4() + "/32" + dev + " && ip neigh replace " +
              other_.lwip_ip4() + " lladdr " + mac + dev + " nud permanent && ip -6 route add " +
              other_.lwip_ip6() + "/128" + dev + " && ip -6 neigh replace " + other_.lwip_ip6() +
              " lladdr " + mac + dev + " nud permanent"),
        "");
  }
  void TearDown() override {
    LinkTest::TearDown();
    host_b_.reset();
    if (!other_.kernel_iface.empty())
      (void)shell("ip link del " + other_.kernel_iface + " 2>/dev/null");
  }

  test_link other_;
  std::shared_ptr<backend> host_b_;
};

TEST_F(StrongHost, AHostDoesNotAnswerPingsForAnotherHostsAddressesOnItsLink) {
  const lwip::counters before = lwip::read_counters();
  auto [status4, out4] = run("ping -c 2 -i 0.2 -W 1 " + other_.lwip_ip4() + " 2>&1");
  EXPECT_NE(status4, 0) << out4;
  EXPECT_NE(out4.find(" 0 received"), std::string::npos) << out4;
  auto [status6, out6] = run("ping -6 -c 2 -i 0.2 -W 1 " + other_.lwip_ip6() + " 2>&1");
  EXPECT_NE(status6, 0) << out6;
  EXPECT_NE(out6.find(" 0 received"), std::string::npos) << out6;
  EXPECT_GE(lwip::read_counters().ip_drops, before.ip_drops + 4);
  // A's own address still answers.
  auto [own, own_out] = run("ping -c 2 -i 0.2 -W 2 " + link_.lwip_ip4() + " 2>&1");
  EXPECT_EQ(own, 0) << own_out;
}

TEST_F(StrongHost, AHostSendsNoResetForAnotherHostsListeningPort) {
  socket listener(*host_b_, AF_INET6, SOCK_STREAM);
  listener.bind({"", 7001});
  listener.listen(1);
  const lwip::counters before = lwip::read_counters();
  for (const std::string& to : {other_.lwip_ip4(), other_.lwip_ip6()}) {
    socket client(kernel_backend(), to.find(':') == std::string::npos ? AF_INET : AF_INET6,
                  SOCK_STREAM);
    client.settimeout(1.0);
    const int rc = client.connect_ex({to, 7001});
    EXPECT_NE(rc, 0) << to;
    EXPECT_NE(rc, ECONNREFUSED) << to << ": A answered the SYN with a RST";
  }
  EXPECT_GE(lwip::read_counters().ip_drops, before.ip_drops + 2);
}

}  // namespace
}  // namespace anysock::testing
