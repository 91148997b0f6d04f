// Python's three timeout modes: blocking (gettimeout() == nullopt), non-blocking (0.0: calls that
// would wait raise error EAGAIN) and timeout mode (> 0: calls that wait too long raise
// anysock::timeout), the process default timeout, and how each mode shows in recv, accept,
// sendall and connect.
#include <pthread.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <future>
#include <limits>
#include <optional>
#include <string>
#include <thread>

#include "fixture.hpp"

namespace anysock::testing {
namespace {

// What `f` raised: kind "timeout", "error" (with its errno) or "none".
struct raised {
  std::string kind = "none";
  int code = 0;
  std::string what;
};

template <class F>
raised raised_by(F&& f) {
  raised r;
  try {
    f();
  } catch (const timeout& e) {
    r = {"timeout", e.code().value(), e.what()};
  } catch (const error& e) {
    r = {"error", e.code().value(), e.what()};
  }
  return r;
}

bool is_eagain(int code) { return code == EAGAIN || code == EWOULDBLOCK; }

}  // namespace

// ---- what gettimeout reports --------------------------------------------------------------------

TEST_P(Conformance, NewSocketIsBlockingWhenTheDefaultTimeoutIsNone) {
  setdefaulttimeout(std::nullopt);
  socket s(client(), AF_INET, SOCK_STREAM);
  EXPECT_EQ(s.gettimeout(), std::nullopt);
}

TEST_P(Conformance, SetblockingFalseMeansATimeoutOfZero) {
  socket s(client(), AF_INET, SOCK_STREAM);
  s.setblocking(false);
  EXPECT_EQ(s.gettimeout(), std::optional<double>(0.0));
  s.setblocking(true);
  EXPECT_EQ(s.gettimeout(), std::nullopt);
}

TEST_P(Conformance, SettimeoutIsReportedBackByGettimeout) {
  socket s(client(), AF_INET, SOCK_STREAM);
  s.settimeout(1.25);
  EXPECT_EQ(s.gettimeout(), std::optional<double>(1.25));
  s.settimeout(0.0);
  EXPECT_EQ(s.gettimeout(), std::optional<double>(0.0));
  s.settimeout(std::nullopt);
  EXPECT_EQ(s.gettimeout(), std::nullopt);
}

TEST_P(Conformance, SetdefaulttimeoutAppliesToNewClientListenerAndAcceptedSockets) {
  setdefaulttimeout(2.5);
  EXPECT_EQ(getdefaulttimeout(), std::optional<double>(2.5));
  socket l = listener();
  EXPECT_EQ(l.gettimeout(), std::optional<double>(2.5));
  socket c(client(), AF_INET, SOCK_STREAM);
  EXPECT_EQ(c.gettimeout(), std::optional<double>(2.5));
  c.connect(dial_address(AF_INET, l));
  auto [s, peer] = l.accept();
  EXPECT_EQ(s.gettimeout(), std::optional<double>(2.5));
}

TEST_P(Conformance, AcceptedSocketTakesTheDefaultNotTheListenersTimeout) {
  setdefaulttimeout(std::nullopt);
  socket l = listener();
  l.settimeout(3.0);
  socket c(client(), AF_INET, SOCK_STREAM);
  c.settimeout(3.0);
  c.connect(dial_address(AF_INET, l));
  auto [s, peer] = l.accept();
  EXPECT_EQ(s.gettimeout(), std::nullopt);
}

TEST_P(Conformance, NegativeOrNanTimeoutsAreInvalid) {
  socket s(client(), AF_INET, SOCK_STREAM);
  s.settimeout(1.0);
  EXPECT_THROW(s.settimeout(-1.0), std::invalid_argument);
  EXPECT_THROW(s.settimeout(std::numeric_limits<double>::quiet_NaN()), std::invalid_argument);
  EXPECT_EQ(s.gettimeout(), std::optional<double>(1.0));  // unchanged
  EXPECT_THROW(setdefaulttimeout(-1.0), std::invalid_argument);
  EXPECT_THROW(setdefaulttimeout(std::numeric_limits<double>::quiet_NaN()), std::invalid_argument);
}

TEST_P(Conformance, TimeoutsTooLargeForCpythonAreInvalid) {
  // CPython: OverflowError past its 64-bit count of nanoseconds (about 9.2e9 s), inf included.
  const double inf = std::numeric_limits<double>::infinity();
  socket s(client(), AF_INET, SOCK_STREAM);
  for (double bad : {inf, 1e10, 9.3e9}) {
    EXPECT_THROW(s.settimeout(bad), std::invalid_argument) << bad;
    EXPECT_THROW(setdefaulttimeout(bad), std::invalid_argument) << bad;
  }
  EXPECT_EQ(s.gettimeout(), getdefaulttimeout());  // unchanged
  backend_scope scope(client());
  EXPECT_THROW(create_connection({"127.0.0.1", 9}, inf), std::invalid_argument);
  EXPECT_NO_THROW(s.settimeout(9.2e9));
  EXPECT_EQ(s.gettimeout(), std::optional<double>(9.2e9));
}

TEST_P(Conformance, AHugeTimeoutWaitsAsleepUntilDataArrives) {
  // The largest accepted timeout must wait like any other: no EINVAL from the OS, no deadline
  // that overflowed into the past (which made the waiter spin a CPU).
  auto [c, s] = tcp_pair();
  s.settimeout(9.2e9);
  std::promise<clockid_t> clock;
  std::future<clockid_t> clock_ready = clock.get_future();
  std::future<std::string> got = std::async(std::launch::async, [&] {
    clockid_t id;
    pthread_getcpuclockid(pthread_self(), &id);
    clock.set_value(id);
    return s.recv(64);
  });
  const clockid_t reader = clock_ready.get();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  timespec before{}, after{};
  clock_gettime(reader, &before);
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  clock_gettime(reader, &after);
  const double cpu = static_cast<double>(after.tv_sec - before.tv_sec) +
                     static_cast<double>(after.tv_nsec - before.tv_nsec) * 1e-9;
  EXPECT_EQ(got.wait_for(std::chrono::seconds(0)), std::future_status::timeout) << "returned";
  EXPECT_LT(cpu, 0.2) << "the blocked reader used " << cpu << " s of CPU in 0.4 s";
  c.sendall("wake up");
  ASSERT_EQ(got.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(got.get(), "wake up");
}

TEST_P(Conformance, RecvOfABufferNoReadCouldFillIsInvalid) {
  auto [c, s] = tcp_pair();
  EXPECT_THROW(c.recv(SIZE_MAX), std::invalid_argument);
  EXPECT_THROW(c.recvfrom(SIZE_MAX), std::invalid_argument);
}

// ---- non-blocking mode --------------------------------------------------------------------------

TEST_P(Conformance, NonBlockingRecvWithNothingReadyRaisesEagainNotTimeout) {
  auto [c, s] = tcp_pair();
  s.setblocking(false);
  raised r = raised_by([&] { s.recv(64); });
  EXPECT_EQ(r.kind, "error");
  EXPECT_TRUE(is_eagain(r.code)) << r.what;
  c.sendall("ready now");
  ASSERT_EQ(select({&s}, {}, {}, 5.0).read.size(), 1u);
  EXPECT_EQ(s.recv(64), "ready now");
}

TEST_P(Conformance, NonBlockingAcceptWithNoClientRaisesEagainNotTimeout) {
  socket l = listener();
  l.setblocking(false);
  raised r = raised_by([&] { l.accept(); });
  EXPECT_EQ(r.kind, "error");
  EXPECT_TRUE(is_eagain(r.code)) << r.what;
}

TEST_P(Conformance, NonBlockingSendIntoAFullBufferRaisesEagain) {
  auto [c, s] = tcp_pair();
  c.setblocking(false);
  const std::string chunk(1 << 16, 'z');
  raised r;
  size_t total = 0;
  for (int i = 0; i < 100000 && r.kind == "none"; ++i) {  // the peer never reads
    r = raised_by([&] { total += c.send(chunk); });
  }
  EXPECT_EQ(r.kind, "error");
  EXPECT_TRUE(is_eagain(r.code)) << r.what;
  EXPECT_GT(total, 0u);
}

// ---- timeout mode -------------------------------------------------------------------------------

TEST_P(Conformance, TimeoutRecvOnASilentPeerRaisesTimedOut) {
  auto [c, s] = tcp_pair();
  s.settimeout(0.2);
  double start = s.get_backend().now();
  raised r = raised_by([&] { s.recv(64); });
  double took = s.get_backend().now() - start;
  EXPECT_EQ(r.kind, "timeout");
  EXPECT_EQ(r.what, "timed out");
  EXPECT_EQ(r.code, ETIMEDOUT);
  EXPECT_GE(took, 0.15);
  EXPECT_LT(took, 5.0);
  c.sendall("the connection survives");  // a timeout does not break the socket
  s.settimeout(5.0);
  EXPECT_EQ(s.recv(64), "the connection survives");
}

TEST_P(Conformance, TimeoutRecvReturnsDataThatArrivesInTime) {
  auto [c, s] = tcp_pair();
  s.settimeout(5.0);
  c.sendall("in time");
  EXPECT_EQ(s.recv(64), "in time");
}

TEST_P(Conformance, TimeoutAcceptWithNoClientRaisesTimedOut) {
  socket l = listener();
  l.settimeout(0.2);
  double start = l.get_backend().now();
  raised r = raised_by([&] { l.accept(); });
  double took = l.get_backend().now() - start;
  EXPECT_EQ(r.kind, "timeout");
  EXPECT_EQ(r.what, "timed out");
  EXPECT_EQ(r.code, ETIMEDOUT);
  EXPECT_GE(took, 0.15);
  EXPECT_LT(took, 5.0);
}

TEST_P(Conformance, SendallTimeoutBoundsTheWholeCall) {
  auto [c, s] = tcp_pair();  // s never reads
  c.settimeout(0.5);
  const std::string data(64 << 20, 'q');
  double start = c.get_backend().now();
  raised r = raised_by([&] { c.sendall(data); });
  double took = c.get_backend().now() - start;
  EXPECT_EQ(r.kind, "timeout");
  EXPECT_EQ(r.code, ETIMEDOUT);
  EXPECT_GE(took, 0.4);
  EXPECT_LT(took, 10.0);
}

TEST_P(Conformance, SendallTimeoutBoundsTheWholeCallWhileThePeerReadsSlowly) {
  // Each send makes progress well within the timeout, so only a deadline for the whole call ends
  // this sendall early: a deadline per send would keep going for the reader's 15 seconds.
  auto [c, s] = tcp_pair();
  try {  // small buffers make the slow reader's progress reach the sender (best effort)
    c.setsockopt(SOL_SOCKET, SO_SNDBUF, 64 << 10);
    s.setsockopt(SOL_SOCKET, SO_RCVBUF, 64 << 10);
  } catch (const error&) {
  }
  s.settimeout(1.0);
  std::atomic<bool> stop{false};
  auto reader = std::async(std::launch::async, [&s, &stop] {
    const double until = s.get_backend().now() + 15.0;
    while (!stop && s.get_backend().now() < until) {
      try {
        if (s.recv(64 << 10).empty()) return;
      } catch (const timeout&) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  c.settimeout(0.5);
  const std::string data(64 << 20, 'q');
  double start = c.get_backend().now();
  raised r = raised_by([&] { c.sendall(data); });
  double took = c.get_backend().now() - start;
  stop = true;
  reader.get();
  EXPECT_EQ(r.kind, "timeout");
  EXPECT_GE(took, 0.4);
  EXPECT_LT(took, 10.0);
}

TEST_P(Conformance, TimeoutConnectSucceedsToAListener) {
  for (int family : {AF_INET, AF_INET6}) {
    if (!family_available(family)) continue;
    SCOPED_TRACE(family == AF_INET6 ? "AF_INET6" : "AF_INET");
    socket l = listener(family);
    l.settimeout(5.0);
    socket c(client(), family, SOCK_STREAM);
    c.settimeout(2.0);
    c.connect(dial_address(family, l));
    EXPECT_EQ(c.gettimeout(), std::optional<double>(2.0));
    auto [s, peer] = l.accept();
    EXPECT_EQ(peer, c.getsockname());
  }
}

TEST_P(Conformance, TimeoutConnectToAClosedPortIsRefusedNotTimedOut) {
  uint16_t port = 0;
  {
    socket probe(server(), AF_INET, SOCK_STREAM);
    probe.bind({server_host(AF_INET), 0});
    port = probe.getsockname().port;
  }
  socket c(client(), AF_INET, SOCK_STREAM);
  c.settimeout(5.0);
  raised r = raised_by([&] { c.connect({dial_host(AF_INET), port}); });
  EXPECT_EQ(r.kind, "error");
  EXPECT_EQ(r.code, ECONNREFUSED);
}

}  // namespace anysock::testing
