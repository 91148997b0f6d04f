// The prefix length of ip6= is the host's on-link route, as on Linux: a destination outside every
// prefix of the host, with no router, is ENETUNREACH at once (TCP connect, UDP connect, UDP
// sendto), whatever the link could deliver; inside it is reached, whether the prefix is shorter or
// longer than /64 (lwIP by itself assumes /64). Linux measured in a namespace (veth, address
// fd00:1::5/64 and fd00:3::5/80, no other route): connect, sendto and a UDP connect to fd00:2::1
// and to fd00:3::1:0:0:9 fail with ENETUNREACH; fd00:1::9 and fd00:3::9 are tried on the link.
#include "lwip_support.hpp"

namespace anysock::testing {
namespace {

class Ipv6Prefix : public LwipTest {
 protected:
  // Hosts on one in-memory link (which delivers to any address a host of it owns).
  std::shared_ptr<backend> host(const std::string& name, const std::string& ip6) {
    return make_backend("lwip+sim:host=" + name + ",link=prefix,ip6='" + ip6 + "'");
  }
};

// A TCP listener and a UDP socket on `b` at `address`; returns their port (the same number).
struct servers {
  socket tcp, udp;
  uint16_t port = 0;
  servers(backend& b, const std::string& address)
      : tcp(b, AF_INET6, SOCK_STREAM), udp(b, AF_INET6, SOCK_DGRAM) {
    tcp.bind({address, 0});
    tcp.listen(4);
    port = tcp.getsockname().port;
    udp.bind({address, port});
  }
};

// The errnos of a TCP connect, a UDP sendto and a UDP connect from `from` to `to` (0: it worked).
std::vector<int> reach(backend& from, const address& to) {
  socket t(from, AF_INET6, SOCK_STREAM);
  t.settimeout(kGenerousWait);
  socket u(from, AF_INET6, SOCK_DGRAM);
  socket v(from, AF_INET6, SOCK_DGRAM);
  return {errno_of([&] { t.connect(to); }), errno_of([&] { u.sendto("x", to); }),
          errno_of([&] { v.connect(to); })};
}

const std::vector<int> kUnreachable{ENETUNREACH, ENETUNREACH, ENETUNREACH};
const std::vector<int> kReached{0, 0, 0};

TEST_F(Ipv6Prefix, ADestinationOutsideTheSlash64IsENetUnreachLikeLinux) {
  auto a = host("a", "fd00:1::5/64");
  auto b = host("b", "fd00:2::7/64");
  auto c = host("c", "fd00:1::9/64");
  servers on_b(*b, "fd00:2::7");
  servers on_c(*c, "fd00:1::9");
  EXPECT_EQ(reach(*a, {"fd00:2::7", on_b.port}), kUnreachable);
  EXPECT_EQ(reach(*a, {"fd00:1::9", on_c.port}), kReached);
  // The same the other way round: b has no route to a's prefix either.
  EXPECT_EQ(reach(*b, {"fd00:1::9", on_c.port}), kUnreachable);
  // Loopback and the host's own address stay reachable.
  servers on_a(*a, "::");
  EXPECT_EQ(reach(*a, {"::1", on_a.port}), kReached);
  EXPECT_EQ(reach(*a, {"fd00:1::5", on_a.port}), kReached);
}

TEST_F(Ipv6Prefix, APrefixLongerThan64IsHonoured) {
  auto a = host("a", "fd00:3::5/80");
  auto b = host("b", "fd00:3::1:0:0:9/64");  // a's /64, outside its /80
  auto c = host("c", "fd00:3::9/64");        // inside a's /80
  servers on_b(*b, "fd00:3::1:0:0:9");
  servers on_c(*c, "fd00:3::9");
  EXPECT_EQ(reach(*a, {"fd00:3::1:0:0:9", on_b.port}), kUnreachable);
  EXPECT_EQ(reach(*a, {"fd00:3::9", on_c.port}), kReached);
}

TEST_F(Ipv6Prefix, APrefixShorterThan64IsOnLinkAsAWhole) {
  auto a = host("a", "fd00:4::5/48");
  auto b = host("b", "fd00:4:0:1::7/48");  // outside a's /64, inside its /48
  servers on_b(*b, "fd00:4:0:1::7");
  EXPECT_EQ(reach(*a, {"fd00:4:0:1::7", on_b.port}), kReached);
  EXPECT_EQ(reach(*a, {"fd00:5::1", on_b.port}), kUnreachable);
}

}  // namespace
}  // namespace anysock::testing
