// Readiness: select() and poller over connected and listening sockets — pending data, writability,
// pending connections, peer close, timeouts with nothing ready, and argument errors.
#include <string>
#include <vector>

#include "fixture.hpp"

namespace anysock::testing {
namespace {

// The revents poll() reports for `s`, or 0 when `s` is not among the results.
short revents_of(const std::vector<std::pair<socket*, short>>& results, const socket& s) {
  for (const auto& [sock, revents] : results) {
    if (sock == &s) return revents;
  }
  return 0;
}

}  // namespace

// ---- select -------------------------------------------------------------------------------------

TEST_P(Conformance, SelectReportsASocketWithPendingDataAsReadable) {
  auto [c, s] = tcp_pair();
  EXPECT_TRUE(select({&s}, {}, {}, 0.0).read.empty());
  c.sendall("data");
  select_result r = select({&s, &c}, {}, {}, 5.0);
  ASSERT_EQ(r.read.size(), 1u);
  EXPECT_EQ(r.read[0], &s);
  EXPECT_TRUE(r.write.empty());
  EXPECT_TRUE(r.except.empty());
}

TEST_P(Conformance, SelectReportsAConnectedSocketAsWritable) {
  auto [c, s] = tcp_pair();
  select_result r = select({}, {&c, &s}, {}, 5.0);
  ASSERT_EQ(r.write.size(), 2u);
  EXPECT_EQ(r.write[0], &c);
  EXPECT_EQ(r.write[1], &s);
  EXPECT_TRUE(r.read.empty());
}

TEST_P(Conformance, SelectWithNothingReadyReturnsEmptyAfterTheTimeout) {
  auto [c, s] = tcp_pair();
  double start = client().now();
  select_result r = select({&c, &s}, {}, {&c, &s}, 0.1);
  double took = client().now() - start;
  EXPECT_TRUE(r.read.empty());
  EXPECT_TRUE(r.write.empty());
  EXPECT_TRUE(r.except.empty());
  EXPECT_GE(took, 0.05);
  EXPECT_LT(took, 5.0);
}

TEST_P(Conformance, SelectReportsAListenerWithAPendingConnectionAsReadable) {
  socket l = listener();
  EXPECT_TRUE(select({&l}, {}, {}, 0.0).read.empty());
  socket c(client(), AF_INET, SOCK_STREAM);
  c.settimeout(5.0);
  c.connect(dial_address(AF_INET, l));
  select_result r = select({&l}, {}, {}, 5.0);
  ASSERT_EQ(r.read.size(), 1u);
  EXPECT_EQ(r.read[0], &l);
  l.setblocking(false);  // readable means accept won't wait
  auto [s, peer] = l.accept();
  EXPECT_EQ(peer, c.getsockname());
}

TEST_P(Conformance, SelectReportsPeerCloseAsReadable) {
  auto [c, s] = tcp_pair();
  c.close();
  select_result r = select({&s}, {}, {}, 5.0);
  ASSERT_EQ(r.read.size(), 1u);
  EXPECT_EQ(s.recv(16), "");
}

TEST_P(Conformance, SelectOnAClosedSocketThrowsInvalidArgument) {
  auto [c, s] = tcp_pair();
  c.close();
  EXPECT_THROW(select({&c}, {}, {}, 0.0), std::invalid_argument);
  EXPECT_THROW(select({}, {&s, &c}, {}, 0.0), std::invalid_argument);
  EXPECT_THROW(select({&s}, {}, {}, -1.0), std::invalid_argument);
}

TEST_P(Conformance, SelectAcceptsTheSameSocketInReadAndWriteLists) {
  auto [c, s] = tcp_pair();
  c.sendall("x");
  select_result r = select({&s}, {&s}, {}, 5.0);
  ASSERT_EQ(r.write.size(), 1u);
  EXPECT_EQ(r.write[0], &s);
  if (r.read.empty()) r.read = select({&s}, {}, {}, 5.0).read;  // data may trail writability
  ASSERT_EQ(r.read.size(), 1u);
  EXPECT_EQ(r.read[0], &s);
}

// ---- poller -------------------------------------------------------------------------------------

TEST_P(Conformance, PollerReportsPollinWhenDataIsPending) {
  auto [c, s] = tcp_pair();
  poller p;
  p.add(s, POLLIN);
  EXPECT_TRUE(p.poll(0.0).empty());
  c.sendall("data");
  auto ready = p.poll(5.0);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].first, &s);
  EXPECT_TRUE(ready[0].second & POLLIN);
}

TEST_P(Conformance, PollerReportsPolloutForAWritableSocket) {
  auto [c, s] = tcp_pair();
  poller p;
  p.add(c, POLLOUT);
  auto ready = p.poll(5.0);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].first, &c);
  EXPECT_TRUE(ready[0].second & POLLOUT);
  EXPECT_FALSE(ready[0].second & POLLIN);
}

TEST_P(Conformance, PollerReportsPeerCloseAsHangupOrInput) {
  auto [c, s] = tcp_pair();
  poller p;
  p.add(s, POLLIN);
  c.close();
  short revents = revents_of(p.poll(5.0), s);
  EXPECT_TRUE(revents & (POLLIN | POLLHUP)) << "revents " << revents;
  EXPECT_EQ(s.recv(16), "");
}

TEST_P(Conformance, PollerModifyAndRemoveChangeWhatIsReported) {
  auto [c, s] = tcp_pair();
  c.sendall("pending");
  poller p;
  p.add(s, POLLIN);
  p.add(c, POLLIN);
  EXPECT_EQ(p.size(), 2u);
  auto ready = p.poll(5.0);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].first, &s);

  p.modify(s, POLLOUT);  // no longer asking for input
  p.modify(c, POLLOUT);
  ready = p.poll(5.0);
  ASSERT_EQ(ready.size(), 2u);
  EXPECT_EQ(ready[0].first, &s);  // registration order
  EXPECT_EQ(ready[1].first, &c);
  EXPECT_EQ(ready[0].second & POLLIN, 0);

  p.remove(s);
  EXPECT_EQ(p.size(), 1u);
  ready = p.poll(5.0);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].first, &c);
}

TEST_P(Conformance, PollerRejectsAddingASocketTwice) {
  auto [c, s] = tcp_pair();
  poller p;
  p.add(s, POLLIN);
  EXPECT_EQ(errno_of([&] { p.add(s, POLLOUT); }), EEXIST);
  EXPECT_EQ(p.size(), 1u);
}

TEST_P(Conformance, PollerModifyOrRemoveOfAnUnregisteredSocketRaisesEnoent) {
  auto [c, s] = tcp_pair();
  poller p;
  p.add(c, POLLIN);
  EXPECT_EQ(errno_of([&] { p.modify(s, POLLIN); }), ENOENT);
  EXPECT_EQ(errno_of([&] { p.remove(s); }), ENOENT);
  p.remove(c);
  EXPECT_EQ(errno_of([&] { p.remove(c); }), ENOENT);
}

TEST_P(Conformance, PollerWithNothingReadyReturnsEmptyAfterTheTimeout) {
  auto [c, s] = tcp_pair();
  poller p;
  p.add(c, POLLIN);
  p.add(s, POLLIN);
  double start = client().now();
  auto ready = p.poll(0.1);
  double took = client().now() - start;
  EXPECT_TRUE(ready.empty());
  EXPECT_GE(took, 0.05);
  EXPECT_LT(took, 5.0);
}

TEST_P(Conformance, PollerReportsPollnvalForASocketClosedWhileRegistered) {
  auto [c, s] = tcp_pair();
  poller p;
  p.add(c, POLLIN);
  c.close();
  auto ready = p.poll(5.0);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].first, &c);
  EXPECT_EQ(ready[0].second, POLLNVAL);
}

TEST_P(Conformance, PollerFollowsRegisteredSocketsWhenTheirVectorGrows) {
  std::vector<socket> clients;
  std::vector<socket> servers;
  poller p;
  for (int i = 0; i < 5; ++i) {  // each push_back may move the sockets registered before it
    auto [c, s] = tcp_pair();
    clients.push_back(std::move(c));
    servers.push_back(std::move(s));
    p.add(servers.back(), POLLIN);
  }
  EXPECT_TRUE(p.poll(0.0).empty());
  clients[0].sendall("data");
  auto ready = p.poll(5.0);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].first, &servers[0]);  // where the socket is now
  EXPECT_TRUE(ready[0].second & POLLIN);

  p.modify(servers[0], POLLOUT);
  p.remove(servers[4]);
  EXPECT_EQ(p.size(), 4u);
  servers[2].close();
  servers.reserve(servers.capacity() + 1);  // moves them all once more
  ready = p.poll(5.0);
  ASSERT_EQ(ready.size(), 2u);
  EXPECT_EQ(ready[0].first, &servers[0]);
  EXPECT_TRUE(ready[0].second & POLLOUT);
  EXPECT_EQ(ready[1].first, &servers[2]);
  EXPECT_EQ(ready[1].second, POLLNVAL);  // closed after registration, as select.poll reports it
  p.remove(servers[2]);
  EXPECT_EQ(p.size(), 3u);
}

TEST_P(Conformance, PollerForgetsASocketThatIsDestroyedOrAssignedOver) {
  auto [c, s] = tcp_pair();
  auto [c2, s2] = tcp_pair();
  poller p;
  {
    socket moved_out = std::move(c);  // c is now an empty, closed socket
    p.add(moved_out, POLLOUT);
    p.add(c, POLLIN);
    EXPECT_EQ(p.size(), 2u);
  }
  // Destroyed while registered: gone from the poller, as a closed descriptor leaves an epoll set.
  auto ready = p.poll(5.0);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].first, &c);
  EXPECT_EQ(ready[0].second, POLLNVAL);
  EXPECT_EQ(p.size(), 1u);
  p.remove(c);

  p.add(s, POLLIN);
  p.add(s2, POLLIN);
  c2.sendall("data");
  s = std::move(s2);  // s's connection is closed; s now holds s2's, and its registration
  ready = p.poll(5.0);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].first, &s);
  EXPECT_TRUE(ready[0].second & POLLIN);
  EXPECT_EQ(p.size(), 1u);
  EXPECT_EQ(errno_of([&] { p.remove(s2); }), ENOENT);
  p.remove(s);
  EXPECT_EQ(p.size(), 0u);
}

}  // namespace anysock::testing
