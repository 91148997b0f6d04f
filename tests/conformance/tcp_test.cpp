// TCP stream sockets: connection set-up (accept, connect, connect_ex, listen, create_connection),
// the addresses each end reports, and moving bytes (recv, recv_into, send, sendall, MSG_PEEK,
// MSG_DONTWAIT, shutdown), including signals, closed peers and full-duplex use from two threads.
#include <pthread.h>
#include <signal.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <future>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <thread>

#include "fixture.hpp"

namespace anysock::testing {
namespace {

constexpr std::array kIpFamilies{AF_INET, AF_INET6};

const char* family_name(int family) { return family == AF_INET6 ? "AF_INET6" : "AF_INET"; }

// A port on `host` where nothing listens: bound once, then closed again.
uint16_t closed_port(backend& b, int family, const std::string& host) {
  socket s(b, family, SOCK_STREAM);
  s.bind({host, 0});
  return s.getsockname().port;
}

// FNV-1a over a byte stream, fed in pieces.
struct stream_hash {
  uint64_t value = 14695981039346656037ull;
  size_t bytes = 0;
  void add(std::string_view data) {
    for (char c : data) {
      value ^= static_cast<unsigned char>(c);
      value *= 1099511628211ull;
    }
    bytes += data.size();
  }
  friend bool operator==(const stream_hash&, const stream_hash&) = default;
};

stream_hash hash_of(std::string_view data) {
  stream_hash h;
  h.add(data);
  return h;
}

// Reads `s` until end of stream, hashing what arrives.
stream_hash drain(socket& s) {
  stream_hash h;
  while (true) {
    std::string chunk = s.recv(65536);
    if (chunk.empty()) return h;
    h.add(chunk);
  }
}

std::atomic<int> signals_seen{0};
void count_signal(int) { signals_seen.fetch_add(1, std::memory_order_relaxed); }

}  // namespace

// ---- addresses and connection set-up ------------------------------------------------------------

TEST_P(Conformance, AcceptReturnsThePeerAddressTheClientReportsForItself) {
  for (int family : kIpFamilies) {
    if (!family_available(family)) continue;
    SCOPED_TRACE(family_name(family));
    socket l = listener(family);
    l.settimeout(5.0);
    socket c(client(), family, SOCK_STREAM);
    c.settimeout(5.0);
    c.connect(dial_address(family, l));
    auto [s, peer] = l.accept();
    EXPECT_EQ(peer, c.getsockname());
    EXPECT_EQ(s.getpeername(), c.getsockname());
    EXPECT_EQ(c.getpeername(), dial_address(family, l));
    EXPECT_EQ(s.getsockname().port, l.getsockname().port);
    EXPECT_EQ(s.getsockname().host, server_host(family));
    EXPECT_NE(c.getsockname().port, 0);
  }
}

TEST_P(Conformance, BoundSocketReportsItsHostAndTheChosenPort) {
  for (int family : kIpFamilies) {
    if (!family_available(family)) continue;
    SCOPED_TRACE(family_name(family));
    socket s(server(), family, SOCK_STREAM);
    s.bind({server_host(family), 0});
    address bound = s.getsockname();
    EXPECT_EQ(bound.host, server_host(family));
    EXPECT_NE(bound.port, 0);
    EXPECT_EQ(errno_of([&] { s.getpeername(); }), ENOTCONN);
  }
}

TEST_P(Conformance, ConnectExReturnsZeroOnSuccess) {
  for (int family : kIpFamilies) {
    if (!family_available(family)) continue;
    SCOPED_TRACE(family_name(family));
    socket l = listener(family);
    l.settimeout(5.0);
    socket c(client(), family, SOCK_STREAM);
    c.settimeout(5.0);
    EXPECT_EQ(c.connect_ex(dial_address(family, l)), 0);
    auto [s, peer] = l.accept();
    EXPECT_EQ(peer, c.getsockname());
  }
}

TEST_P(Conformance, ConnectToAClosedPortIsRefused) {
  for (int family : kIpFamilies) {
    if (!family_available(family)) continue;
    SCOPED_TRACE(family_name(family));
    uint16_t port = closed_port(server(), family, server_host(family));
    socket a(client(), family, SOCK_STREAM);
    a.settimeout(5.0);
    EXPECT_EQ(a.connect_ex({dial_host(family), port}), ECONNREFUSED);
    socket b(client(), family, SOCK_STREAM);
    b.settimeout(5.0);
    EXPECT_EQ(errno_of([&] { b.connect({dial_host(family), port}); }), ECONNREFUSED);
  }
}

TEST_P(Conformance, NonBlockingConnectIsInProgressThenSoErrorReportsSuccess) {
  for (int family : kIpFamilies) {
    if (!family_available(family)) continue;
    SCOPED_TRACE(family_name(family));
    socket l = listener(family);
    l.settimeout(5.0);
    socket c(client(), family, SOCK_STREAM);
    c.setblocking(false);
    EXPECT_EQ(c.connect_ex(dial_address(family, l)), EINPROGRESS);
    select_result ready = select({}, {&c}, {}, 5.0);
    ASSERT_EQ(ready.write.size(), 1u);
    EXPECT_EQ(c.getsockopt(SOL_SOCKET, SO_ERROR), 0);
    auto [s, peer] = l.accept();
    EXPECT_EQ(peer, c.getsockname());
    EXPECT_EQ(c.getpeername(), dial_address(family, l));
  }
}

TEST_P(Conformance, NonBlockingConnectToAClosedPortReportsRefusedThroughSoError) {
  for (int family : kIpFamilies) {
    if (!family_available(family)) continue;
    SCOPED_TRACE(family_name(family));
    uint16_t port = closed_port(server(), family, server_host(family));
    socket c(client(), family, SOCK_STREAM);
    c.setblocking(false);
    int rc = c.connect_ex({dial_host(family), port});
    if (rc == EINPROGRESS) {
      select_result ready = select({}, {&c}, {}, 5.0);
      ASSERT_EQ(ready.write.size(), 1u);
      rc = c.getsockopt(SOL_SOCKET, SO_ERROR);
    }
    EXPECT_EQ(rc, ECONNREFUSED);
  }
}

TEST_P(Conformance, ListenQueuesSeveralConnectionsUntilAccepted) {
  for (int family : kIpFamilies) {
    if (!family_available(family)) continue;
    SCOPED_TRACE(family_name(family));
    socket l = listener(family, 5);
    l.settimeout(5.0);
    std::vector<socket> clients;
    std::set<uint16_t> client_ports;
    for (int i = 0; i < 4; ++i) {
      socket c(client(), family, SOCK_STREAM);
      c.settimeout(5.0);
      c.connect(dial_address(family, l));  // completes before any accept
      client_ports.insert(c.getsockname().port);
      clients.push_back(std::move(c));
    }
    std::set<uint16_t> accepted_ports;
    for (int i = 0; i < 4; ++i) {
      auto [s, peer] = l.accept();
      accepted_ports.insert(peer.port);
      s.sendall("hello " + std::to_string(peer.port));
    }
    EXPECT_EQ(accepted_ports, client_ports);
    for (socket& c : clients) {
      EXPECT_EQ(c.recv(64), "hello " + std::to_string(c.getsockname().port));
    }
  }
}

// Linux: a connection reset before accept() stays queued, and counts against the backlog until
// accept() takes it. listen(1) admits two; later connects time out (their SYNs are dropped while
// the queue is full); accept() hands out the two, whose first recv reports the reset; then the
// listener admits connections again.
TEST_P(Conformance, ConnectionsResetBeforeAcceptKeepTheirPlaceInTheBacklog) {
  socket l = listener(AF_INET, 1);
  const address to = dial_address(AF_INET, l);
  const linger reset_on_close{1, 0};
  const std::string_view reset_option(reinterpret_cast<const char*>(&reset_on_close),
                                      sizeof reset_on_close);
  auto connect_and_reset = [&](double timeout) {
    socket c(client(), AF_INET, SOCK_STREAM);
    c.setsockopt(SOL_SOCKET, SO_LINGER, reset_option);
    c.settimeout(timeout);
    c.connect(to);
    c.close();  // a reset
  };
  for (int i = 0; i < 2; ++i) {
    SCOPED_TRACE("connection " + std::to_string(i));
    connect_and_reset(kGenerousWait);
  }
  int admitted = 0;
  for (int i = 0; i < 8; ++i) {
    try {
      connect_and_reset(0.2);
      ++admitted;
    } catch (const anysock::timeout&) {
    }
  }
  EXPECT_EQ(admitted, 0) << "connections admitted past a full backlog of reset connections";

  l.settimeout(kGenerousWait);
  for (int i = 0; i < 2 + admitted; ++i) {
    SCOPED_TRACE("accepted connection " + std::to_string(i));
    auto [s, peer] = l.accept();
    s.settimeout(kGenerousWait);
    EXPECT_EQ(errno_of([&] { s.recv(16); }), ECONNRESET);
  }
  l.setblocking(false);
  EXPECT_EQ(errno_of([&] { l.accept(); }), EAGAIN) << "more connections queued than admitted";

  // The queue is empty again: a new connection is admitted and carries data.
  socket c(client(), AF_INET, SOCK_STREAM);
  c.settimeout(kGenerousWait);
  c.connect(to);
  l.settimeout(kGenerousWait);
  auto [s, peer] = l.accept();
  c.sendall("still listening");
  s.settimeout(kGenerousWait);
  EXPECT_EQ(s.recv(64), "still listening");
}

// ---- create_connection --------------------------------------------------------------------------

TEST_P(Conformance, CreateConnectionConnectsWithTheGivenTimeout) {
  backend_scope scope(client());
  for (int family : kIpFamilies) {
    if (!family_available(family)) continue;
    SCOPED_TRACE(family_name(family));
    socket l = listener(family);
    l.settimeout(5.0);
    socket c = create_connection(dial_address(family, l), 4.0);
    EXPECT_EQ(c.gettimeout(), std::optional<double>(4.0));
    EXPECT_EQ(c.family(), family);
    EXPECT_EQ(&c.get_backend(), &client());
    auto [s, peer] = l.accept();
    EXPECT_EQ(peer, c.getsockname());
    c.sendall("via create_connection");
    s.settimeout(5.0);
    EXPECT_EQ(s.recv(64), "via create_connection");
  }
}

TEST_P(Conformance, CreateConnectionBindsTheSourceAddress) {
  backend_scope scope(client());
  for (int family : kIpFamilies) {
    if (!family_available(family)) continue;
    SCOPED_TRACE(family_name(family));
    // The client's own address, as a connection from it shows.
    std::string client_host = tcp_pair(family).first.getsockname().host;
    socket l = listener(family);
    l.settimeout(5.0);
    socket c = create_connection(dial_address(family, l), 5.0, address{client_host, 0});
    EXPECT_EQ(c.getsockname().host, client_host);
    auto [s, peer] = l.accept();
    EXPECT_EQ(peer.host, client_host);
    EXPECT_EQ(peer.port, c.getsockname().port);
  }
}

TEST_P(Conformance, CreateConnectionToAClosedPortRaisesConnectionRefused) {
  backend_scope scope(client());
  for (int family : kIpFamilies) {
    if (!family_available(family)) continue;
    SCOPED_TRACE(family_name(family));
    uint16_t port = closed_port(server(), family, server_host(family));
    EXPECT_EQ(errno_of([&] { create_connection({dial_host(family), port}, 5.0); }), ECONNREFUSED);
  }
}

TEST_P(Conformance, CreateConnectionByNameFindsAnIpv4OnlyListener) {
  if (env().server_host4 != "127.0.0.1") {
    GTEST_SKIP() << "the server does not listen on 127.0.0.1 in " << env().name;
  }
  backend_scope scope(client());
  socket l = listener(AF_INET);  // IPv4 only, although the name may resolve to ::1 first
  l.settimeout(5.0);
  socket c = create_connection({env().server_name, l.getsockname().port}, 5.0);
  EXPECT_EQ(c.family(), AF_INET);
  EXPECT_EQ(c.getpeername(), l.getsockname());
  auto [s, peer] = l.accept();
  EXPECT_EQ(peer, c.getsockname());
}

// ---- moving bytes -------------------------------------------------------------------------------

TEST_P(Conformance, RecvReturnsWhatIsAvailableRatherThanTheWholeBuffer) {
  for (int family : kIpFamilies) {
    if (!family_available(family)) continue;
    SCOPED_TRACE(family_name(family));
    auto [c, s] = tcp_pair(family);
    s.settimeout(5.0);
    c.sendall("abc");
    EXPECT_EQ(s.recv(4096), "abc");
    s.sendall("reply");
    c.settimeout(5.0);
    EXPECT_EQ(c.recv(4096), "reply");
  }
}

TEST_P(Conformance, PeerCloseMakesRecvReturnEmpty) {
  for (int family : kIpFamilies) {
    if (!family_available(family)) continue;
    SCOPED_TRACE(family_name(family));
    auto [c, s] = tcp_pair(family);
    s.settimeout(5.0);
    c.sendall("last words");
    c.close();
    EXPECT_EQ(s.recv(64), "last words");
    EXPECT_EQ(s.recv(64), "");
    EXPECT_EQ(s.recv(64), "");  // and stays at end of stream
  }
}

TEST_P(Conformance, PeerShutdownWriteEndsTheStreamButNotTheOtherDirection) {
  for (int family : kIpFamilies) {
    if (!family_available(family)) continue;
    SCOPED_TRACE(family_name(family));
    auto [c, s] = tcp_pair(family);
    c.settimeout(5.0);
    s.settimeout(5.0);
    c.sendall("request");
    c.shutdown(SHUT_WR);
    EXPECT_EQ(s.recv(64), "request");
    EXPECT_EQ(s.recv(64), "");
    s.sendall("response");
    s.close();
    EXPECT_EQ(c.recv(64), "response");
    EXPECT_EQ(c.recv(64), "");
  }
}

TEST_P(Conformance, RecvIntoFillsARawBuffer) {
  auto [c, s] = tcp_pair();
  s.settimeout(5.0);
  c.sendall("into a buffer");
  char buf[64] = {};
  size_t n = s.recv_into(buf, sizeof buf);
  EXPECT_EQ(std::string_view(buf, n), "into a buffer");
  c.close();
  EXPECT_EQ(s.recv_into(buf, sizeof buf), 0u);
}

TEST_P(Conformance, RecvIntoFillsASpanAndStopsAtItsSize) {
  auto [c, s] = tcp_pair();
  s.settimeout(5.0);
  c.sendall("0123456789");
  std::array<std::byte, 4> small{};
  ASSERT_EQ(s.recv_into(std::span<std::byte>(small)), 4u);
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(small.data()), 4), "0123");
  std::array<std::byte, 64> rest{};
  size_t n = s.recv_into(std::span<std::byte>(rest));
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(rest.data()), n), "456789");
}

TEST_P(Conformance, SendReturnsTheNumberOfBytesSent) {
  auto [c, s] = tcp_pair();
  s.settimeout(5.0);
  size_t n = c.send("counted");
  EXPECT_GT(n, 0u);
  EXPECT_LE(n, 7u);
  EXPECT_EQ(s.recv(64), std::string("counted").substr(0, n));
  EXPECT_EQ(c.send(""), 0u);
}

TEST_P(Conformance, SendallDeliversSixteenMebibytesIntact) {
  for (int family : kIpFamilies) {
    if (!family_available(family)) continue;
    SCOPED_TRACE(family_name(family));
    auto [c, s] = tcp_pair(family);
    c.settimeout(60.0);
    s.settimeout(60.0);
    const std::string data = pattern(16 << 20, 0x5eed + family);
    auto reader = std::async(std::launch::async, [&s] { return drain(s); });
    c.sendall(data);
    c.shutdown(SHUT_WR);
    stream_hash got = reader.get();
    EXPECT_EQ(got.bytes, data.size());
    EXPECT_EQ(got, hash_of(data));
  }
}

TEST_P(Conformance, PeekLeavesTheDataInPlace) {
  auto [c, s] = tcp_pair();
  s.settimeout(5.0);
  c.sendall("peekaboo");
  ASSERT_EQ(select({&s}, {}, {}, 5.0).read.size(), 1u);
  EXPECT_EQ(s.recv(4, MSG_PEEK), "peek");
  EXPECT_EQ(s.recv(64, MSG_PEEK), "peekaboo");
  EXPECT_EQ(s.recv(64), "peekaboo");
}

TEST_P(Conformance, DontwaitOnABlockingSocketRaisesEagainWhenNothingIsThere) {
  auto [c, s] = tcp_pair();
  ASSERT_EQ(s.gettimeout(), std::nullopt);
  int err = errno_of([&] { s.recv(64, MSG_DONTWAIT); });
  EXPECT_TRUE(err == EAGAIN || err == EWOULDBLOCK) << "errno " << err;
  EXPECT_EQ(s.gettimeout(), std::nullopt);  // the socket itself stays blocking
  c.sendall("now");
  s.settimeout(5.0);
  EXPECT_EQ(s.recv(64), "now");
}

TEST_P(Conformance, SendAfterShutdownWriteRaisesEpipe) {
  auto [c, s] = tcp_pair();
  c.shutdown(SHUT_WR);
  EXPECT_EQ(errno_of([&] { c.send("too late"); }), EPIPE);
  EXPECT_EQ(errno_of([&] { c.sendall("too late"); }), EPIPE);
}

TEST_P(Conformance, ShutdownWithAnInvalidHowRaisesEinval) {
  // CPython hands `how` to the OS, which answers EINVAL.
  auto [c, s] = tcp_pair();
  EXPECT_EQ(errno_of([&] { c.shutdown(3); }), EINVAL);
  EXPECT_EQ(errno_of([&] { c.shutdown(-1); }), EINVAL);
  EXPECT_EQ(errno_of([&] { c.shutdown(7); }), EINVAL);
  c.sendall("still open");  // the bad calls changed nothing
  s.settimeout(5.0);
  EXPECT_EQ(s.recv(64), "still open");
  socket u(client(), AF_INET, SOCK_DGRAM);
  EXPECT_EQ(errno_of([&] { u.shutdown(3); }), EINVAL);
}

TEST_P(Conformance, RecvOfZeroBytesWaitsLikeAnyReceive) {
  auto [c, s] = tcp_pair();
  // Nothing queued: non-blocking raises EAGAIN, a timeout raises timeout (it is no end of stream).
  c.setblocking(false);
  EXPECT_EQ(errno_of([&] { c.recv(0); }), EAGAIN);
  c.settimeout(0.2);
  EXPECT_THROW(c.recv(0), timeout);
  // Data queued: "" at once, and nothing is consumed.
  s.sendall("abc");
  c.settimeout(kGenerousWait);
  EXPECT_EQ(c.recv(1, MSG_PEEK), "a");  // the data has arrived
  EXPECT_EQ(c.recv(0), "");
  EXPECT_EQ(c.recv(10), "abc");
  // After the peer's FIN: "" at once.
  s.shutdown(SHUT_WR);
  c.settimeout(kGenerousWait);
  EXPECT_EQ(c.recv(10), "");
  c.settimeout(0.2);
  EXPECT_EQ(c.recv(0), "");
}

TEST_P(Conformance, BlockingRecvOfZeroBytesReturnsOnceDataArrives) {
  auto [c, s] = tcp_pair();
  std::thread writer([&s] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    s.sendall("late");
  });
  c.setblocking(true);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(c.recv(0), "");
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(50));
  writer.join();
  c.settimeout(kGenerousWait);
  EXPECT_EQ(c.recv(10), "late");
}

TEST_P(Conformance, UdpRecvOfZeroBytesConsumesOneDatagram) {
  auto [cli, srv] = udp_pair();
  const address to = dial_address(AF_INET, srv);
  cli.sendto("one", to);
  cli.sendto("two", to);
  srv.settimeout(kGenerousWait);
  EXPECT_EQ(srv.recv(1, MSG_PEEK), "o");  // the first has arrived
  EXPECT_EQ(srv.recv(0), "");
  EXPECT_EQ(srv.recv(10), "two");
}

TEST_P(Conformance, SocketTypeAndProtocolErrorsAreTheKernels) {
  for (int family : {AF_INET, AF_INET6}) {
    if (!family_available(family)) continue;
    SCOPED_TRACE(family == AF_INET ? "AF_INET" : "AF_INET6");
    EXPECT_EQ(errno_of([&] { socket s(server(), family, 9999); }), EINVAL);  // flag bits
    EXPECT_EQ(errno_of([&] { socket s(server(), family, 11); }), EINVAL);    // past SOCK_MAX
    EXPECT_EQ(errno_of([&] { socket s(server(), family, SOCK_SEQPACKET); }), ESOCKTNOSUPPORT);
    EXPECT_EQ(errno_of([&] { socket s(server(), family, 7); }), ESOCKTNOSUPPORT);
    EXPECT_EQ(errno_of([&] { socket s(server(), family, SOCK_STREAM, IPPROTO_UDP); }),
              EPROTONOSUPPORT);
    EXPECT_EQ(errno_of([&] { socket s(server(), family, SOCK_DGRAM, IPPROTO_TCP); }),
              EPROTONOSUPPORT);
    EXPECT_EQ(errno_of([&] { socket s(server(), family, SOCK_STREAM, 300); }), EINVAL);
    EXPECT_EQ(errno_of([&] { socket s(server(), family, SOCK_STREAM, -5); }), EINVAL);
    EXPECT_EQ(errno_of([&] { socket s(server(), family, SOCK_STREAM, IPPROTO_TCP); }), 0);
    EXPECT_EQ(errno_of([&] { socket s(server(), family, SOCK_DGRAM, IPPROTO_UDP); }), 0);
  }
}

TEST_P(Conformance, BindWithoutReuseaddrToAPortAClosingConnectionHoldsRaisesEaddrinuse) {
  socket l = listener();  // SO_REUSEADDR, as servers set it
  const uint16_t port = l.getsockname().port;
  socket c(client(), AF_INET, SOCK_STREAM);
  c.connect(dial_address(AF_INET, l));
  auto [s, peer] = l.accept();
  // The server closes first: its end goes through FIN_WAIT to TIME_WAIT, holding the port.
  s.close();
  c.settimeout(kGenerousWait);
  EXPECT_EQ(c.recv(10), "");
  c.close();
  l.close();
  socket plain(server(), AF_INET, SOCK_STREAM);
  EXPECT_EQ(errno_of([&] { plain.bind({server_host(AF_INET), port}); }), EADDRINUSE);
  // With SO_REUSEADDR (the closing connection inherited it from its listener) a server restarts.
  socket again(server(), AF_INET, SOCK_STREAM);
  again.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
  EXPECT_EQ(errno_of([&] { again.bind({server_host(AF_INET), port}); }), 0);
  EXPECT_EQ(errno_of([&] { again.listen(); }), 0);
}

TEST_P(Conformance, OfTwoReuseaddrSocketsOnOnePortOnlyTheFirstListenSucceeds) {
  socket a(server(), AF_INET, SOCK_STREAM);
  socket b(server(), AF_INET, SOCK_STREAM);
  a.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
  b.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
  a.bind({server_host(AF_INET), 0});
  const uint16_t port = a.getsockname().port;
  ASSERT_EQ(errno_of([&] { b.bind({server_host(AF_INET), port}); }), 0);
  EXPECT_EQ(errno_of([&] { a.listen(); }), 0);
  EXPECT_EQ(errno_of([&] { b.listen(); }), EADDRINUSE);
  // Once one listens, even a SO_REUSEADDR socket cannot bind the port.
  socket c(server(), AF_INET, SOCK_STREAM);
  c.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
  EXPECT_EQ(errno_of([&] { c.bind({server_host(AF_INET), port}); }), EADDRINUSE);
}

TEST_P(Conformance, UdpReuseaddrSocketsShareAPortButOneWithoutItCannotJoin) {
  socket a(server(), AF_INET, SOCK_DGRAM);
  socket b(server(), AF_INET, SOCK_DGRAM);
  socket c(server(), AF_INET, SOCK_DGRAM);
  a.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
  b.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
  a.bind({server_host(AF_INET), 0});
  const uint16_t port = a.getsockname().port;
  EXPECT_EQ(errno_of([&] { b.bind({server_host(AF_INET), port}); }), 0);
  EXPECT_EQ(errno_of([&] { c.bind({server_host(AF_INET), port}); }), EADDRINUSE);
}

TEST_P(Conformance, SendingToAClosedPeerRaisesAnErrorInsteadOfSigpipe) {
  // With SIGPIPE at its default disposition, a library that let the signal through would kill
  // this test binary.
  struct sigaction dfl {};
  struct sigaction old {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ASSERT_EQ(sigaction(SIGPIPE, &dfl, &old), 0);
  {
    auto [c, s] = tcp_pair();
    c.settimeout(5.0);
    s.close();
    int err = 0;
    const std::string chunk(1024, 'x');
    for (int attempt = 0; attempt < 200 && err == 0; ++attempt) {
      err = errno_of([&] { c.send(chunk); });
      if (err == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_TRUE(err == EPIPE || err == ECONNRESET) << "errno " << err;
  }
  sigaction(SIGPIPE, &old, nullptr);
}

TEST_P(Conformance, BlockingRecvInterruptedBySignalsIsRetried) {
  struct sigaction handler {};
  struct sigaction old {};
  handler.sa_handler = count_signal;
  sigemptyset(&handler.sa_mask);
  handler.sa_flags = 0;  // no SA_RESTART: a raw recv would fail with EINTR
  ASSERT_EQ(sigaction(SIGUSR1, &handler, &old), 0);
  signals_seen = 0;
  {
    auto [c, s] = tcp_pair();
    ASSERT_EQ(s.gettimeout(), std::nullopt);
    std::atomic<bool> started{false};
    std::string got;
    std::exception_ptr failure;
    std::thread reader([&] {
      started = true;
      try {
        got = s.recv(64);
      } catch (...) {
        failure = std::current_exception();
      }
    });
    while (!started) std::this_thread::yield();
    for (int i = 0; i < 5; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
      pthread_kill(reader.native_handle(), SIGUSR1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    c.sendall("after the signals");
    reader.join();
    EXPECT_FALSE(failure) << "recv raised instead of retrying";
    EXPECT_EQ(got, "after the signals");
    EXPECT_GE(signals_seen.load(), 1);
  }
  sigaction(SIGUSR1, &old, nullptr);
}

TEST_P(Conformance, OneThreadReceivesWhileAnotherSendsOnTheSameSocket) {
  auto [c, s] = tcp_pair();
  c.settimeout(60.0);
  s.settimeout(60.0);
  const std::string up = pattern(4 << 20, 1);
  const std::string down = pattern(4 << 20, 2);
  auto send_then_end = [](socket& sock, const std::string& data) {
    sock.sendall(data);
    sock.shutdown(SHUT_WR);
  };
  auto client_reader = std::async(std::launch::async, [&c] { return drain(c); });
  auto server_reader = std::async(std::launch::async, [&s] { return drain(s); });
  auto client_writer = std::async(std::launch::async, [&] { send_then_end(c, up); });
  auto server_writer = std::async(std::launch::async, [&] { send_then_end(s, down); });
  client_writer.get();
  server_writer.get();
  EXPECT_EQ(server_reader.get(), hash_of(up));
  EXPECT_EQ(client_reader.get(), hash_of(down));
}

}  // namespace anysock::testing
