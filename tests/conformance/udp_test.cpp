// Datagram sockets: sendto/recvfrom with sender addresses, truncation, empty datagrams, connected
// UDP, MSG_PEEK, the three timeout modes on recvfrom, the errors of sending without a peer, and
// the ICMP port unreachable a connected socket hears about (once) when its peer's port is closed.
#include <array>
#include <cerrno>
#include <chrono>
#include <exception>
#include <string>
#include <string_view>
#include <thread>

#include "fixture.hpp"

namespace anysock::testing {
namespace {

// Where `sender` appears to come from when it sends to `to`: its own port, and the local host its
// backend picks for that destination (what a connected probe's getsockname() reports).
address seen_from(backend& b, int family, const socket& sender, const address& to) {
  socket probe(b, family, SOCK_DGRAM);
  probe.connect(to);
  return {probe.getsockname().host, sender.getsockname().port};
}

// One sendto/recvfrom round trip in each direction between a bound client and a server socket the
// client reaches at `to`.
void check_round_trip(backend& client_backend, int family, socket& cli, socket& srv,
                      const address& to) {
  cli.settimeout(kGenerousWait);
  srv.settimeout(kGenerousWait);

  EXPECT_EQ(cli.sendto("hello", to), 5u);
  auto [data, from] = srv.recvfrom(100);
  EXPECT_EQ(data, "hello");
  EXPECT_EQ(from, seen_from(client_backend, family, cli, to));

  EXPECT_EQ(srv.sendto("world", from), 5u);
  auto [reply, reply_from] = cli.recvfrom(100);
  EXPECT_EQ(reply, "world");
  EXPECT_EQ(reply_from.host, to.host);
  EXPECT_EQ(reply_from.port, to.port);
}

// Waits (up to kGenerousWait) until `s` reports an error, without taking it: poll with no events
// still reports POLLERR. The ICMP port unreachable may arrive after send() returned.
void wait_for_error(socket& s) {
  poller p;
  p.add(s, 0);
  auto ready = p.poll(kGenerousWait);
  ASSERT_EQ(ready.size(), 1u) << "no error reported within " << kGenerousWait << " s";
  EXPECT_TRUE(ready[0].second & POLLERR);
}

// A connected socket that sent to a closed port: the next recv raises ECONNREFUSED, and only that
// one (the following recv times out as usual).
void check_refused_once_on_recv(socket& cli) {
  cli.settimeout(kGenerousWait);
  EXPECT_EQ(cli.send("anyone?"), 7u);
  EXPECT_EQ(errno_of([&] { cli.recv(100); }), ECONNREFUSED);
  cli.settimeout(0.2);
  EXPECT_THROW(cli.recv(100), anysock::timeout);
}

// Sends `count` copies of `payload` from `cli` to `srv`, which nobody reads meanwhile, then counts
// the datagrams `srv` kept. A datagram sent afterwards to a second socket of the server's host
// shows that the link has delivered (or dropped) all of them: both receivers share the way there.
// (It is sent again until it arrives: a TAP's queue may overflow under the burst.)
int datagrams_kept(backend& server_backend, const std::string& server_host, socket& cli,
                   socket& srv, const address& to, std::string_view payload, int count) {
  socket marker(server_backend, to.host.find(':') == std::string::npos ? AF_INET : AF_INET6,
                SOCK_DGRAM);
  marker.bind({server_host, 0});
  marker.settimeout(0.1);
  // A marker datagram that arrives after `sent`: everything sent before it has been delivered.
  auto pass_marker = [&] {
    for (int tries = 1;; ++tries) {
      cli.sendto("marker", {to.host, marker.getsockname().port});
      try {
        if (marker.recv(16) == "marker") break;
      } catch (const anysock::timeout&) {
        if (tries * 0.1 >= kGenerousWait) throw;
      }
    }
  };
  // First resolve the peer's link-layer address (ARP/ND): a burst sent while that is pending
  // waits in a short queue, on Linux and lwIP alike, and would be lost before the socket.
  pass_marker();
  while (errno_of([&] { marker.recv(16, MSG_DONTWAIT); }) == 0) {
  }
  for (int i = 0; i < count; ++i) cli.sendto(payload, to);
  pass_marker();
  srv.setblocking(false);
  int kept = 0;
  while (errno_of([&] { srv.recv(16); }) == 0) ++kept;
  return kept;
}

}  // namespace

TEST_P(Conformance, UdpSendtoRecvfromCarriesDataAndSenderAddressOverIpv4) {
  auto [cli, srv] = udp_pair(AF_INET);
  check_round_trip(client(), AF_INET, cli, srv, dial_address(AF_INET, srv));
}

TEST_P(Conformance, UdpSendtoRecvfromCarriesDataAndSenderAddressOverIpv6) {
  SKIP_UNLESS_FAMILY(AF_INET6);
  auto [cli, srv] = udp_pair(AF_INET6);
  check_round_trip(client(), AF_INET6, cli, srv, dial_address(AF_INET6, srv));
}

TEST_P(Conformance, UdpRecvfromIntoFillsTheBufferAndReportsTheSender) {
  auto [cli, srv] = udp_pair();
  srv.settimeout(kGenerousWait);
  const address to = dial_address(AF_INET, srv);
  cli.sendto("datagram", to);

  std::array<char, 32> buf{};
  auto [n, from] = srv.recvfrom_into(buf.data(), buf.size());
  EXPECT_EQ(std::string(buf.data(), n), "datagram");
  EXPECT_EQ(from, seen_from(client(), AF_INET, cli, to));
}

TEST_P(Conformance, UdpShortReadTruncatesTheDatagramAndDiscardsTheRest) {
  auto [cli, srv] = udp_pair();
  srv.settimeout(kGenerousWait);
  const address to = dial_address(AF_INET, srv);
  cli.sendto("abcdefgh", to);
  cli.sendto("second", to);

  EXPECT_EQ(srv.recv(3), "abc");
  EXPECT_EQ(srv.recv(100), "second");  // "defgh" is gone with its datagram
}

TEST_P(Conformance, UdpEmptyDatagramIsReceivedAsAnEmptyString) {
  auto [cli, srv] = udp_pair();
  srv.settimeout(kGenerousWait);
  const address to = dial_address(AF_INET, srv);
  EXPECT_EQ(cli.sendto("", to), 0u);
  cli.sendto("after", to);

  auto [data, from] = srv.recvfrom(100);
  EXPECT_EQ(data, "");
  EXPECT_EQ(from.port, cli.getsockname().port);  // a real datagram, with a sender
  EXPECT_EQ(srv.recv(100), "after");
}

TEST_P(Conformance, ConnectedUdpSendsAndReceivesWithoutAddresses) {
  auto [cli, srv] = udp_pair();
  cli.settimeout(kGenerousWait);
  srv.settimeout(kGenerousWait);
  const address to = dial_address(AF_INET, srv);
  cli.connect(to);
  EXPECT_EQ(cli.getpeername(), to);

  EXPECT_EQ(cli.send("ping"), 4u);
  auto [data, from] = srv.recvfrom(100);
  EXPECT_EQ(data, "ping");
  EXPECT_EQ(from, cli.getsockname());

  srv.sendto("pong", from);
  EXPECT_EQ(cli.recv(100), "pong");
}

TEST_P(Conformance, ConnectedUdpIgnoresDatagramsFromOtherSenders) {
  auto [cli, srv] = udp_pair();
  cli.settimeout(kGenerousWait);
  srv.settimeout(kGenerousWait);
  cli.connect(dial_address(AF_INET, srv));
  cli.send("hi");
  auto [data, cli_seen] = srv.recvfrom(100);
  ASSERT_EQ(data, "hi");

  socket stranger(server(), AF_INET, SOCK_DGRAM);
  stranger.bind({server_host(AF_INET), 0});
  stranger.sendto("not for you", cli_seen);
  srv.sendto("from peer", cli_seen);
  EXPECT_EQ(cli.recv(100), "from peer");

  cli.setblocking(false);
  EXPECT_EQ(errno_of([&] { cli.recv(100); }), EAGAIN);
}

TEST_P(Conformance, UdpRecvWithMsgPeekLeavesTheDatagramQueued) {
  auto [cli, srv] = udp_pair();
  srv.settimeout(kGenerousWait);
  cli.sendto("peekaboo", dial_address(AF_INET, srv));

  EXPECT_EQ(srv.recv(4, MSG_PEEK), "peek");
  auto [data, from] = srv.recvfrom(100, MSG_PEEK);
  EXPECT_EQ(data, "peekaboo");
  EXPECT_EQ(from.port, cli.getsockname().port);
  EXPECT_EQ(srv.recv(100), "peekaboo");
}

TEST_P(Conformance, NonBlockingUdpRecvfromOnAnEmptySocketRaisesEagain) {
  auto [cli, srv] = udp_pair();
  srv.setblocking(false);
  EXPECT_EQ(srv.gettimeout(), 0.0);
  EXPECT_EQ(errno_of([&] { srv.recvfrom(100); }), EAGAIN);
  std::array<char, 8> buf{};
  EXPECT_EQ(errno_of([&] { srv.recvfrom_into(buf.data(), buf.size()); }), EAGAIN);
  EXPECT_EQ(errno_of([&] { srv.recv(100); }), EAGAIN);
}

TEST_P(Conformance, UdpRecvfromWithATimeoutRaisesTimeoutWhenNothingArrives) {
  auto [cli, srv] = udp_pair();
  srv.settimeout(0.2);
  const double start = server().now();
  EXPECT_THROW(srv.recvfrom(100), anysock::timeout);
  const double waited = server().now() - start;
  EXPECT_GE(waited, 0.15);
  EXPECT_LT(waited, 5.0);

  // The socket still works after a timeout.
  cli.sendto("late", dial_address(AF_INET, srv));
  srv.settimeout(kGenerousWait);
  EXPECT_EQ(srv.recv(100), "late");
}

TEST_P(Conformance, SendtoOnAnUnconnectedTcpSocketRaisesEpipe) {
  socket l = listener();
  socket tcp(client(), AF_INET, SOCK_STREAM);
  EXPECT_EQ(errno_of([&] { tcp.sendto("x", dial_address(AF_INET, l)); }), EPIPE);
  EXPECT_EQ(errno_of([&] { tcp.send("x"); }), EPIPE);
}

TEST_P(Conformance, SendOnAnUnconnectedUdpSocketRaisesEdestaddrreq) {
  socket udp(client(), AF_INET, SOCK_DGRAM);
  EXPECT_EQ(errno_of([&] { udp.send("x"); }), EDESTADDRREQ);
  EXPECT_EQ(errno_of([&] { udp.sendall("x"); }), EDESTADDRREQ);
}

TEST_P(Conformance, UdpGetpeernameBeforeConnectRaisesEnotconn) {
  socket udp(client(), AF_INET, SOCK_DGRAM);
  EXPECT_EQ(errno_of([&] { udp.getpeername(); }), ENOTCONN);
}

// Connecting a UDP socket sends nothing; it only records the peer, so this never transmits.
TEST_P(Conformance, BroadcastHostNameConnectsToTheBroadcastAddressWithSoBroadcast) {
  socket without(client(), AF_INET, SOCK_DGRAM);
  EXPECT_EQ(errno_of([&] { without.connect({"<broadcast>", 9}); }), EACCES);

  socket with(client(), AF_INET, SOCK_DGRAM);
  with.setsockopt(SOL_SOCKET, SO_BROADCAST, 1);
  with.connect({"<broadcast>", 9});
  EXPECT_EQ(with.getpeername(), (address{"255.255.255.255", 9}));
}

// ---- ICMP port unreachable ----------------------------------------------------------------------

TEST_P(Conformance, ConnectedUdpToAClosedPortRaisesEconnrefusedOnceOnTheNextRecv) {
  socket cli(client(), AF_INET, SOCK_DGRAM);
  cli.connect(closed_udp_address(AF_INET));
  check_refused_once_on_recv(cli);
}

TEST_P(Conformance, ConnectedUdpToAClosedPortRaisesEconnrefusedOnceOnTheNextRecvOverIpv6) {
  SKIP_UNLESS_FAMILY(AF_INET6);
  socket cli(client(), AF_INET6, SOCK_DGRAM);
  cli.connect(closed_udp_address(AF_INET6));
  check_refused_once_on_recv(cli);
}

TEST_P(Conformance, ConnectedUdpToAClosedPortRaisesEconnrefusedOnceOnTheNextSend) {
  socket cli(client(), AF_INET, SOCK_DGRAM);
  cli.connect(closed_udp_address(AF_INET));
  cli.send("anyone?");
  wait_for_error(cli);
  // The pending error makes the socket readable (and writable) for select, though nothing is
  // queued.
  auto ready = select({&cli}, {&cli}, {}, 0.0);
  EXPECT_EQ(ready.read.size(), 1u);
  EXPECT_EQ(ready.write.size(), 1u);

  EXPECT_EQ(errno_of([&] { cli.send("again"); }), ECONNREFUSED);
  EXPECT_EQ(cli.send("again"), 5u);  // reported once
}

TEST_P(Conformance, ConnectedUdpSoErrorReturnsAndClearsThePortUnreachable) {
  socket cli(client(), AF_INET, SOCK_DGRAM);
  cli.connect(closed_udp_address(AF_INET));
  cli.send("anyone?");
  wait_for_error(cli);
  EXPECT_EQ(cli.getsockopt(SOL_SOCKET, SO_ERROR), ECONNREFUSED);
  EXPECT_EQ(cli.getsockopt(SOL_SOCKET, SO_ERROR), 0);
  cli.settimeout(0.2);
  EXPECT_THROW(cli.recv(100), anysock::timeout);
}

TEST_P(Conformance, UdpRecvBlockedWhenThePortUnreachableArrivesRaisesEconnrefused) {
  socket cli(client(), AF_INET, SOCK_DGRAM);
  cli.connect(closed_udp_address(AF_INET));
  cli.settimeout(kGenerousWait);
  std::exception_ptr send_failure;
  std::thread sender([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let recv block first
    try {
      cli.send("anyone?");
    } catch (...) {
      send_failure = std::current_exception();
    }
  });
  EXPECT_EQ(errno_of([&] { cli.recv(100); }), ECONNREFUSED);
  sender.join();
  EXPECT_FALSE(send_failure);
}

TEST_P(Conformance, ConnectedUdpReportsThePortUnreachableBeforeQueuedDatagrams) {
  auto [cli, srv] = udp_pair();
  cli.settimeout(kGenerousWait);
  cli.connect(dial_address(AF_INET, srv));
  cli.send("hi");
  auto [data, cli_seen] = srv.recvfrom(100);
  ASSERT_EQ(data, "hi");
  srv.sendto("queued", cli_seen);
  poller p;
  p.add(cli, POLLIN);
  ASSERT_EQ(p.poll(kGenerousWait).size(), 1u);  // "queued" has arrived
  srv.close();

  cli.send("anyone?");
  wait_for_error(cli);
  EXPECT_EQ(errno_of([&] { cli.recv(100); }), ECONNREFUSED);
  EXPECT_EQ(cli.recv(100), "queued");
}

TEST_P(Conformance, UnconnectedUdpIsNotToldThatTheDestinationPortIsClosed) {
  auto [cli, srv] = udp_pair();
  cli.sendto("anyone?", closed_udp_address(AF_INET));
  cli.settimeout(0.3);
  EXPECT_THROW(cli.recvfrom(100), anysock::timeout);
  EXPECT_EQ(cli.getsockopt(SOL_SOCKET, SO_ERROR), 0);
}

TEST_P(Conformance, ConnectedUdpIsNotToldAboutAClosedPortOtherThanItsPeer) {
  auto [cli, srv] = udp_pair();
  cli.connect(dial_address(AF_INET, srv));
  cli.sendto("anyone?", closed_udp_address(AF_INET));
  cli.settimeout(0.3);
  EXPECT_THROW(cli.recv(100), anysock::timeout);
  EXPECT_EQ(cli.getsockopt(SOL_SOCKET, SO_ERROR), 0);
}

// Linux charges each queued datagram's buffer (its skb's truesize: 832 bytes for a small datagram
// over loopback, 704 from a TAP), not only its payload, against SO_RCVBUF, and drops what does not
// fit: an unread socket keeps 256 empty datagrams over loopback (302 from a TAP) with the default
// buffer of 212,992 bytes, and 9 (11) with SO_RCVBUF 4096, doubled to 8,192. Empty datagrams are
// never free.
TEST_P(Conformance, AnUnreadUdpSocketKeepsABoundedNumberOfEmptyDatagrams) {
  {
    auto [cli, srv] = udp_pair();
    int kept = datagrams_kept(server(), server_host(AF_INET), cli, srv, dial_address(AF_INET, srv),
                              "", 600);
    EXPECT_GE(kept, 64);
    EXPECT_LE(kept, 320) << "the kernel keeps 256 to 302 with the default SO_RCVBUF";
  }
  {
    auto [cli, srv] = udp_pair();
    srv.setsockopt(SOL_SOCKET, SO_RCVBUF, 4096);
    int kept = datagrams_kept(server(), server_host(AF_INET), cli, srv, dial_address(AF_INET, srv),
                              "", 200);
    EXPECT_GE(kept, 1);
    EXPECT_LE(kept, 12) << "the kernel keeps 9 to 11 with SO_RCVBUF 4096";
  }
}

// However small SO_RCVBUF is, an empty queue takes one datagram (Linux), larger than the buffer.
TEST_P(Conformance, AUdpSocketWithATinyReceiveBufferStillTakesOneDatagram) {
  auto [cli, srv] = udp_pair();
  srv.setsockopt(SOL_SOCKET, SO_RCVBUF, 1);  // the minimum: 2,304 bytes
  const std::string big = pattern(8000, 3);
  EXPECT_EQ(
      datagrams_kept(server(), server_host(AF_INET), cli, srv, dial_address(AF_INET, srv), big, 3),
      1);
}

// The largest UDP payload over IPv6 is 65,527 bytes (the UDP length field holds the header too);
// one byte more is EMSGSIZE. lwIP carries at most 65,487 bytes over IPv6 (its packet lengths,
// IPv6 header included, are 16-bit): it refuses to send more with EMSGSIZE and drops larger
// datagrams that arrive (stack/lwip/README.md). So 65,487 bytes cross both ways; past that, each
// end either carries the datagram both ways or refuses to send it, and an end that refuses still
// receives what follows.
TEST_P(Conformance, Ipv6UdpCarriesUpTo65527BytesOrRefusesThemWithEmsgsize) {
  SKIP_UNLESS_FAMILY(AF_INET6);
  auto [cli, srv] = udp_pair(AF_INET6);
  cli.settimeout(kGenerousWait);
  srv.settimeout(kGenerousWait);
  const address to_srv = dial_address(AF_INET6, srv);
  EXPECT_EQ(errno_of([&] { cli.sendto(std::string(65528, 'x'), to_srv); }), EMSGSIZE);
  const std::string fits = pattern(65487, 1);
  EXPECT_EQ(cli.sendto(fits, to_srv), fits.size());
  auto [got, to_cli] = srv.recvfrom(70000);
  EXPECT_TRUE(got == fits) << got.size() << " bytes arrived at the server";
  EXPECT_EQ(srv.sendto(fits, to_cli), fits.size());
  EXPECT_TRUE(cli.recv(70000) == fits) << "65,487 bytes changed on the way to the client";
  EXPECT_EQ(errno_of([&] { srv.sendto(std::string(65528, 'x'), to_cli); }), EMSGSIZE);

  for (size_t size : {size_t{65488}, size_t{65500}, size_t{65520}, size_t{65527}}) {
    SCOPED_TRACE(size);
    const std::string big = pattern(size, static_cast<uint32_t>(size));
    const int cli_refuses = errno_of([&] { EXPECT_EQ(cli.sendto(big, to_srv), size); });
    const int srv_refuses = errno_of([&] { EXPECT_EQ(srv.sendto(big, to_cli), size); });
    EXPECT_TRUE(cli_refuses == 0 || cli_refuses == EMSGSIZE) << cli_refuses;
    EXPECT_TRUE(srv_refuses == 0 || srv_refuses == EMSGSIZE) << srv_refuses;
    cli.sendto("after", to_srv);
    srv.sendto("after", to_cli);
    if (cli_refuses == 0 && srv_refuses == 0) {
      EXPECT_TRUE(srv.recv(70000) == big) << "changed on the way to the server";
      EXPECT_TRUE(cli.recv(70000) == big) << "changed on the way to the client";
    }
    EXPECT_EQ(srv.recv(70000).substr(0, 16), "after");
    EXPECT_EQ(cli.recv(70000).substr(0, 16), "after");
  }
}

}  // namespace anysock::testing
