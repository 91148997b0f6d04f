// Socket options: the int form (booleans read back as 0/1, buffer sizes, SO_ERROR, SO_TYPE,
// IPV6_V6ONLY) and the raw-bytes form (struct linger), plus the errors of bad lengths and options.
#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>

#include "fixture.hpp"

namespace anysock::testing {
namespace {

constexpr int kNoSuchOption = 4242;  // no SOL_SOCKET option has this number

// Sets a boolean option on, off and to a non-1 true value, and checks it reads back as 1/0/1.
void expect_boolean_option(socket& s, int level, int opt) {
  s.setsockopt(level, opt, 1);
  EXPECT_EQ(s.getsockopt(level, opt), 1);
  s.setsockopt(level, opt, 0);
  EXPECT_EQ(s.getsockopt(level, opt), 0);
  s.setsockopt(level, opt, 7);
  EXPECT_EQ(s.getsockopt(level, opt), 1);
}

std::string_view bytes_of(const linger& l) { return {reinterpret_cast<const char*>(&l), sizeof l}; }

}  // namespace

TEST_P(Conformance, SoReuseaddrReadsBackAsZeroOrOne) {
  socket tcp(server(), AF_INET, SOCK_STREAM);
  {
    SCOPED_TRACE("tcp");
    expect_boolean_option(tcp, SOL_SOCKET, SO_REUSEADDR);
  }
  socket udp(server(), AF_INET, SOCK_DGRAM);
  SCOPED_TRACE("udp");
  expect_boolean_option(udp, SOL_SOCKET, SO_REUSEADDR);
}

TEST_P(Conformance, TcpNodelayReadsBackAsZeroOrOne) {
  socket fresh(client(), AF_INET, SOCK_STREAM);
  {
    SCOPED_TRACE("unconnected");
    expect_boolean_option(fresh, IPPROTO_TCP, TCP_NODELAY);
  }
  auto [c, s] = tcp_pair();
  SCOPED_TRACE("connected");
  expect_boolean_option(c, IPPROTO_TCP, TCP_NODELAY);
}

TEST_P(Conformance, SoKeepaliveReadsBackAsZeroOrOne) {
  socket s(client(), AF_INET, SOCK_STREAM);
  EXPECT_EQ(s.getsockopt(SOL_SOCKET, SO_KEEPALIVE), 0);  // off by default
  expect_boolean_option(s, SOL_SOCKET, SO_KEEPALIVE);
}

TEST_P(Conformance, SoBroadcastReadsBackAsZeroOrOne) {
  socket s(client(), AF_INET, SOCK_DGRAM);
  EXPECT_EQ(s.getsockopt(SOL_SOCKET, SO_BROADCAST), 0);
  expect_boolean_option(s, SOL_SOCKET, SO_BROADCAST);
}

TEST_P(Conformance, BufferSizesReadBackAtLeastTheValueSet) {
  for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
    SCOPED_TRACE(type == SOCK_STREAM ? "stream" : "datagram");
    socket s(client(), AF_INET, type);
    EXPECT_GT(s.getsockopt(SOL_SOCKET, SO_RCVBUF), 0);
    EXPECT_GT(s.getsockopt(SOL_SOCKET, SO_SNDBUF), 0);
    s.setsockopt(SOL_SOCKET, SO_RCVBUF, 65536);
    s.setsockopt(SOL_SOCKET, SO_SNDBUF, 65536);
    EXPECT_GE(s.getsockopt(SOL_SOCKET, SO_RCVBUF), 65536);  // the kernel doubles it
    EXPECT_GE(s.getsockopt(SOL_SOCKET, SO_SNDBUF), 65536);
  }
}

TEST_P(Conformance, SoErrorIsZeroOnAFreshSocket) {
  socket tcp(client(), AF_INET, SOCK_STREAM);
  EXPECT_EQ(tcp.getsockopt(SOL_SOCKET, SO_ERROR), 0);
  socket udp(client(), AF_INET, SOCK_DGRAM);
  EXPECT_EQ(udp.getsockopt(SOL_SOCKET, SO_ERROR), 0);
  auto [c, s] = tcp_pair();
  EXPECT_EQ(c.getsockopt(SOL_SOCKET, SO_ERROR), 0);
  EXPECT_EQ(s.getsockopt(SOL_SOCKET, SO_ERROR), 0);
}

TEST_P(Conformance, SoTypeReportsStreamOrDatagram) {
  socket tcp(client(), AF_INET, SOCK_STREAM);
  EXPECT_EQ(tcp.getsockopt(SOL_SOCKET, SO_TYPE), SOCK_STREAM);
  socket udp(client(), AF_INET, SOCK_DGRAM);
  EXPECT_EQ(udp.getsockopt(SOL_SOCKET, SO_TYPE), SOCK_DGRAM);
  auto [c, s] = tcp_pair();
  EXPECT_EQ(s.getsockopt(SOL_SOCKET, SO_TYPE), SOCK_STREAM);  // accepted sockets too
}

TEST_P(Conformance, Ipv6V6onlyCanBeSetAndCleared) {
  SKIP_UNLESS_FAMILY(AF_INET6);
  for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
    SCOPED_TRACE(type == SOCK_STREAM ? "stream" : "datagram");
    socket s(server(), AF_INET6, type);
    expect_boolean_option(s, IPPROTO_IPV6, IPV6_V6ONLY);
  }
}

TEST_P(Conformance, BytesFormReturnsTheRawOptionValue) {
  socket s(client(), AF_INET, SOCK_STREAM);
  std::string raw = s.getsockopt(SOL_SOCKET, SO_TYPE, sizeof(int));
  ASSERT_EQ(raw.size(), sizeof(int));
  int type = 0;
  std::memcpy(&type, raw.data(), sizeof type);
  EXPECT_EQ(type, SOCK_STREAM);

  // A larger buffer than the option needs comes back trimmed to the option's size.
  EXPECT_EQ(s.getsockopt(SOL_SOCKET, SO_TYPE, 64).size(), sizeof(int));
}

TEST_P(Conformance, SoLingerRoundTripsAsAStructLinger) {
  socket s(client(), AF_INET, SOCK_STREAM);
  std::string raw = s.getsockopt(SOL_SOCKET, SO_LINGER, sizeof(linger));
  ASSERT_EQ(raw.size(), sizeof(linger));
  linger before{};
  std::memcpy(&before, raw.data(), sizeof before);
  EXPECT_EQ(before.l_onoff, 0);

  const linger wanted{1, 5};
  s.setsockopt(SOL_SOCKET, SO_LINGER, bytes_of(wanted));
  raw = s.getsockopt(SOL_SOCKET, SO_LINGER, sizeof(linger));
  ASSERT_EQ(raw.size(), sizeof(linger));
  linger after{};
  std::memcpy(&after, raw.data(), sizeof after);
  EXPECT_EQ(after.l_onoff, 1);
  EXPECT_EQ(after.l_linger, 5);

  s.setsockopt(SOL_SOCKET, SO_LINGER, bytes_of(linger{0, 0}));
  raw = s.getsockopt(SOL_SOCKET, SO_LINGER, sizeof(linger));
  std::memcpy(&after, raw.data(), sizeof after);
  EXPECT_EQ(after.l_onoff, 0);
}

TEST_P(Conformance, IntOptionsCanBeSetThroughTheBytesForm) {
  socket s(client(), AF_INET, SOCK_STREAM);
  const int on = 1;
  s.setsockopt(SOL_SOCKET, SO_KEEPALIVE, std::string_view(reinterpret_cast<const char*>(&on), 4));
  EXPECT_EQ(s.getsockopt(SOL_SOCKET, SO_KEEPALIVE), 1);
}

TEST_P(Conformance, GetsockoptBufferLengthMustBeFromOneTo1024) {
  socket s(client(), AF_INET, SOCK_STREAM);
  EXPECT_EQ(errno_of([&] { s.getsockopt(SOL_SOCKET, SO_TYPE, 0); }), EINVAL);
  EXPECT_EQ(errno_of([&] { s.getsockopt(SOL_SOCKET, SO_TYPE, 1025); }), EINVAL);
  EXPECT_EQ(s.getsockopt(SOL_SOCKET, SO_TYPE, 1024).size(), sizeof(int));
}

TEST_P(Conformance, UnknownOptionRaisesEnoprotoopt) {
  socket s(client(), AF_INET, SOCK_STREAM);
  EXPECT_EQ(errno_of([&] { s.getsockopt(SOL_SOCKET, kNoSuchOption); }), ENOPROTOOPT);
  EXPECT_EQ(errno_of([&] { s.getsockopt(SOL_SOCKET, kNoSuchOption, 16); }), ENOPROTOOPT);
  EXPECT_EQ(errno_of([&] { s.setsockopt(SOL_SOCKET, kNoSuchOption, 1); }), ENOPROTOOPT);
  socket u(client(), AF_INET, SOCK_DGRAM);
  EXPECT_EQ(errno_of([&] { u.getsockopt(SOL_SOCKET, kNoSuchOption); }), ENOPROTOOPT);
}

}  // namespace anysock::testing
