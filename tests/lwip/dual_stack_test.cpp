// IPv4 on dual-stack sockets (AF_INET6 with IPV6_V6ONLY off, Linux's default): a listener on "::"
// takes IPv4 connections as IPv4-mapped addresses, and "::" shares its port with no IPv4 bind,
// while with IPV6_V6ONLY on, "::" and "0.0.0.0" may share a port.
#include "lwip_support.hpp"

namespace anysock::testing {
namespace {

class DualStack : public LwipTest {
 protected:
  std::shared_ptr<backend> a_ =
      make_backend("lwip+sim:host=a,link=dual,ip=10.71.0.1/24,ip6='fd00:71::1/64'");
  std::shared_ptr<backend> b_ =
      make_backend("lwip+sim:host=b,link=dual,ip=10.71.0.2/24,ip6='fd00:71::2/64'");

  // The errno of binding a new TCP socket of `family` on a to (host, port); 0 when it binds.
  int bind_errno(int family, const std::string& host, uint16_t port, bool v6only = false) {
    socket s(*a_, family, SOCK_STREAM);
    if (family == AF_INET6) s.setsockopt(IPPROTO_IPV6, IPV6_V6ONLY, v6only ? 1 : 0);
    return errno_of([&] { s.bind({host, port}); });
  }
};

}  // namespace

TEST_F(DualStack, ADualStackListenerAcceptsIPv4ConnectionsAsMappedAddresses) {
  socket l(*a_, AF_INET6, SOCK_STREAM);
  ASSERT_EQ(l.getsockopt(IPPROTO_IPV6, IPV6_V6ONLY), 0);
  l.bind({"::", 0});
  l.listen(4);
  l.settimeout(kGenerousWait);
  struct from {
    backend* client;
    std::string dial, seen_as;
  };
  for (const from& f : {from{b_.get(), "10.71.0.1", "::ffff:10.71.0.2"},
                        from{a_.get(), "127.0.0.1", "::ffff:127.0.0.1"}}) {
    SCOPED_TRACE(f.dial);
    socket c(*f.client, AF_INET, SOCK_STREAM);
    c.settimeout(kGenerousWait);
    EXPECT_EQ(c.connect_ex({f.dial, l.getsockname().port}), 0);
    if (HasFailure()) continue;
    auto [s, peer] = l.accept();
    EXPECT_EQ(peer.host, f.seen_as);
    c.sendall("v4");
    s.settimeout(kGenerousWait);
    EXPECT_EQ(s.recv(8), "v4");
  }
}

TEST_F(DualStack, AnIPv6OnlyListenerRefusesIPv4Connections) {
  socket l(*a_, AF_INET6, SOCK_STREAM);
  l.setsockopt(IPPROTO_IPV6, IPV6_V6ONLY, 1);
  l.bind({"::", 0});
  l.listen(4);
  socket c(*b_, AF_INET, SOCK_STREAM);
  c.settimeout(kGenerousWait);
  EXPECT_EQ(c.connect_ex({"10.71.0.1", l.getsockname().port}), ECONNREFUSED);
}

TEST_F(DualStack, TheDualStackWildcardAndAnIPv4BindOfOnePortConflict) {
  socket v4(*a_, AF_INET, SOCK_STREAM);
  v4.bind({"", 0});
  v4.listen();
  EXPECT_EQ(bind_errno(AF_INET6, "::", v4.getsockname().port), EADDRINUSE);
  socket v4_loop(*a_, AF_INET, SOCK_STREAM);
  v4_loop.bind({"127.0.0.1", 0});
  EXPECT_EQ(bind_errno(AF_INET6, "::", v4_loop.getsockname().port), EADDRINUSE);
  socket v6(*a_, AF_INET6, SOCK_STREAM);
  v6.bind({"::", 0});
  v6.listen();
  EXPECT_EQ(bind_errno(AF_INET, "", v6.getsockname().port), EADDRINUSE);
  EXPECT_EQ(bind_errno(AF_INET, "127.0.0.1", v6.getsockname().port), EADDRINUSE);
}

TEST_F(DualStack, AnIPv6OnlyWildcardAndAnIPv4WildcardShareAPort) {
  socket v4(*a_, AF_INET, SOCK_STREAM);
  v4.bind({"", 0});
  v4.listen();
  EXPECT_EQ(bind_errno(AF_INET6, "::", v4.getsockname().port, /*v6only=*/true), 0);
}

}  // namespace anysock::testing
