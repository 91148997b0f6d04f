// The prefix length of ip6= on a real link, with the kernel on the other side of a TAP: neighbour
// discovery treats the prefix as on-link (lwIP alone assumes /64 whatever the prefix), and a
// destination outside it with no router is ENETUNREACH at once, as on Linux (measured: a veth with
// fd00:1::5/64 and no other route, connect/sendto/UDP connect to fd00:2::1 are ENETUNREACH).
#include <gtest/gtest.h>

#include <string>

#include "anysock/socket.hpp"
#include "links_support.hpp"

namespace anysock::testing {
namespace {

class LinkIpv6Prefix : public LinkTest {
 protected:
  // An lwIP host on the TAP with `ip6`, the kernel's side holding `kernel_extra` besides its
  // fd00:77:1::1/64.
  void open_with(const std::string& ip6, const std::string& kernel_extra) {
    if (!in_private_namespace()) GTEST_SKIP() << namespace_unavailable_reason();
    link_ = link_for("tap");
    ASSERT_EQ(create_kernel_side(link_), "");
    ASSERT_EQ(shell("ip addr add " + kernel_extra + " dev " + link_.kernel_iface + " nodad"), "");
    host_ = make_backend("lwip+tap:iface=" + link_.user_iface + ",ip=" + link_.lwip_ip4() +
                         "/24,ip6=" + ip6);
  }
};

// A kernel listener on `address`; an lwIP client connects to it and they exchange a few bytes.
// Returns the errno of the connect (0 when the exchange worked).
int connect_from_lwip(backend& lwip_host, const std::string& address) {
  socket listener(kernel_backend(), AF_INET6, SOCK_STREAM);
  listener.bind({address, 0});
  listener.listen(1);
  listener.settimeout(kGenerousWait);
  socket client(lwip_host, AF_INET6, SOCK_STREAM);
  client.settimeout(kGenerousWait);
  const int e = errno_of([&] { client.connect({address, listener.getsockname().port}); });
  if (e != 0) return e;
  socket server = listener.accept().first;
  server.settimeout(kGenerousWait);
  client.sendall("hello");
  EXPECT_EQ(server.recv(16), "hello");
  return 0;
}

// lwIP 2.1.3 solicits a neighbour only from an address in the neighbour's /64 (nd6_send_ns), so
// on an Ethernet link a shorter prefix is on-link within the host's own /64 only; beyond it the
// host needs a router, and without one it is ENETUNREACH at once (never a connect that hangs).
TEST_F(LinkIpv6Prefix, APrefixShorterThan64IsOnLinkWithinTheHostsOwnSlash64) {
  open_with("fd00:77:1::2/48", "fd00:77:1:1::1/64");
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(connect_from_lwip(*host_, link_.kernel_ip6()), 0);
  EXPECT_EQ(connect_from_lwip(*host_, "fd00:77:1:1::1"), ENETUNREACH);
}

TEST_F(LinkIpv6Prefix, OutsideThePrefixWithoutARouterIsENetUnreach) {
  open_with("fd00:77:1::2/80", "fd00:77:1:0:1::1/64");
  ASSERT_FALSE(HasFatalFailure());
  // Inside the /64 but outside the /80 (lwIP alone would ask for it on the link), and another
  // prefix altogether: no route.
  for (const char* to : {"fd00:77:1:0:1::1", "fd00:99::1"}) {
    SCOPED_TRACE(to);
    socket t(*host_, AF_INET6, SOCK_STREAM);
    t.settimeout(kGenerousWait);
    EXPECT_EQ(errno_of([&] { t.connect({to, 9}); }), ENETUNREACH);
    socket u(*host_, AF_INET6, SOCK_DGRAM);
    EXPECT_EQ(errno_of([&] { u.sendto("x", {to, 9}); }), ENETUNREACH);
    EXPECT_EQ(errno_of([&] { u.connect({to, 9}); }), ENETUNREACH);
  }
  EXPECT_EQ(connect_from_lwip(*host_, link_.kernel_ip6()), 0);
}

}  // namespace
}  // namespace anysock::testing
