// Writes with Nagle's algorithm on (the default): a program that writes twice before it reads (a
// header, then a body) waits for the peer's acknowledgement of the first write before the second
// leaves. The kernel acknowledges at once early in a connection and delays an ACK by 40 ms at most
// on loopback (measured: ~44 ms per exchange after the first, ~90 ms when both sides write twice;
// a body of many segments waits nothing), so every backend must keep each such exchange well
// below the 250 ms of lwIP's own delayed-ACK timer.
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "fixture.hpp"

namespace anysock::testing {
namespace {

using steady = std::chrono::steady_clock;

// Reads exactly `n` bytes (fewer only at end of stream).
std::string recv_exactly(socket& s, size_t n) {
  std::string out;
  while (out.size() < n) {
    std::string chunk = s.recv(n - out.size());
    if (chunk.empty()) break;
    out += chunk;
  }
  return out;
}

// The exchanges' durations in milliseconds, for failure messages.
std::string list_ms(const std::vector<double>& seconds) {
  std::string out;
  for (double t : seconds) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s%.1f", out.empty() ? "" : " ", t * 1e3);
    out += buf;
  }
  return out;
}

double total_of(const std::vector<double>& v) {
  double sum = 0;
  for (double t : v) sum += t;
  return sum;
}

constexpr size_t kHeader = 64;
constexpr size_t kBody = 200;
constexpr size_t kReply = 100;
constexpr int kExchanges = 20;

// The client sends a header and a body of `body_size` bytes (two writes), then reads the reply;
// the server replies once it has both, in one write or (`reply_in_two_writes`) in two. Returns
// each exchange's duration as the client saw it.
std::vector<double> write_write_read(socket& c, socket& s, bool reply_in_two_writes,
                                     size_t body_size = kBody) {
  const std::string header(kHeader, 'h'), body(body_size, 'b'), reply(kReply, 'r');
  std::thread server([&] {
    for (int i = 0; i < kExchanges; ++i) {
      if (recv_exactly(s, kHeader + body_size).size() != kHeader + body_size) return;
      if (reply_in_two_writes) {
        s.sendall(header);
        s.sendall(std::string(kBody, 'b'));
      } else {
        s.sendall(reply);
      }
    }
  });
  const size_t reply_size = reply_in_two_writes ? kHeader + kBody : kReply;
  std::vector<double> took;
  for (int i = 0; i < kExchanges; ++i) {
    const steady::time_point start = steady::now();
    c.sendall(header);
    c.sendall(body);
    if (recv_exactly(c, reply_size).size() != reply_size) break;
    took.push_back(std::chrono::duration<double>(steady::now() - start).count());
  }
  server.join();
  return took;
}

}  // namespace

TEST_P(Conformance, WriteWriteReadExchangesWaitAtMostAShortDelayedAck) {
  auto [c, s] = tcp_pair();
  c.settimeout(kGenerousWait);
  s.settimeout(kGenerousWait);
  const std::vector<double> took = write_write_read(c, s, false);
  ASSERT_EQ(took.size(), static_cast<size_t>(kExchanges));
  // The kernel: ~0 for the first exchange, ~44 ms for each later one. Waiting for a 250 ms timer
  // would take ~5 s in all.
  EXPECT_LT(total_of(took), kExchanges * 0.100) << "exchanges (ms): " << list_ms(took);
}

TEST_P(Conformance, ExchangesWhereBothSidesWriteTwiceWaitAtMostTwoShortDelayedAcks) {
  auto [c, s] = tcp_pair();
  c.settimeout(kGenerousWait);
  s.settimeout(kGenerousWait);
  const std::vector<double> took = write_write_read(c, s, true);
  ASSERT_EQ(took.size(), static_cast<size_t>(kExchanges));
  // The kernel: ~90 ms for each exchange after the first (one delayed ACK on each side).
  EXPECT_LT(total_of(took), kExchanges * 0.150) << "exchanges (ms): " << list_ms(took);
}

TEST_P(Conformance, AHeaderThenABodyOfManySegmentsDoesNotWaitForADelayedAck) {
  auto [c, s] = tcp_pair();
  c.settimeout(kGenerousWait);
  s.settimeout(kGenerousWait);
  const std::vector<double> took = write_write_read(c, s, false, 100'000);
  ASSERT_EQ(took.size(), static_cast<size_t>(kExchanges));
  // The kernel: well under a millisecond per exchange (it acknowledges a write of several
  // segments at once).
  EXPECT_LT(total_of(took), kExchanges * 0.050) << "exchanges (ms): " << list_ms(took);
}

}  // namespace anysock::testing
