// Acknowledgement timing in virtual time. A client that writes a header and then a body before it
// reads the reply (Nagle's algorithm on, the default) waits for the server's ACK of the header
// before the body leaves. On a link without delay, the first exchanges of a connection wait
// nothing (quick-ack mode, as Linux), later ones at most the 40 ms of a delayed ACK (Linux's
// TCP_DELACK_MIN; lwIP's own timer would take up to 250 ms), and after the connection was idle
// longer than the retransmission timeout the next exchanges wait nothing again. A body of many
// segments waits a millisecond at most: the server acknowledges what it has read at once.
#include <string>
#include <vector>

#include "sim_support.hpp"

namespace anysock::sim_testing {
namespace {

constexpr uint16_t kPort = 7400;
constexpr size_t kHeader = 64;
constexpr size_t kReply = 100;
constexpr double kDelayedAck = 0.040;
constexpr double kClockStep = 0.001;  // lwIP's timers run on a millisecond clock

std::string recv_exactly(socket& s, size_t n) {
  std::string out;
  while (out.size() < n) {
    std::string piece = s.recv(n - out.size());
    if (piece.empty()) break;
    out += piece;
  }
  return out;
}

// One connection from a to b: `rounds` groups of `exchanges` write-write-read exchanges (a header,
// a body of `body` bytes, the reply), with `idle` virtual seconds between groups. Returns each
// exchange's duration, in order.
std::vector<double> exchange_durations(uint64_t seed, int rounds, int exchanges, double idle,
                                       size_t body = 200) {
  sim::world w(seed);
  sim::host& a = w.add_host("a");
  sim::host& b = w.add_host("b");
  const int total = rounds * exchanges;
  std::vector<double> took;
  b.spawn([&] {
    socket l(AF_INET, SOCK_STREAM);
    l.bind({"", kPort});
    l.listen(1);
    socket c = l.accept().first;
    c.settimeout(30);
    for (int i = 0; i < total; ++i) {
      if (recv_exactly(c, kHeader + body).size() != kHeader + body) return;
      c.sendall(std::string(kReply, 'r'));
    }
  });
  a.spawn([&] {
    sim::sleep(0.010);  // the server listens by then
    socket c = create_connection({"b", kPort}, 10.0);
    c.settimeout(30);
    for (int r = 0; r < rounds; ++r) {
      if (r > 0) sim::sleep(idle);
      for (int i = 0; i < exchanges; ++i) {
        const double start = sim::now();
        c.sendall(std::string(kHeader, 'h'));
        c.sendall(std::string(body, 'b'));
        if (recv_exactly(c, kReply).size() != kReply) return;
        took.push_back(sim::now() - start);
      }
    }
  });
  w.run();
  return took;
}

}  // namespace

TEST(SimAcks, FirstWriteWriteReadExchangesWaitNothingAndLaterOnesAtMostADelayedAck) {
  const std::vector<double> took = exchange_durations(81, 1, 40, 0);
  ASSERT_EQ(took.size(), 40u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(took[i], 0.0) << "exchange " << i;
  for (size_t i = 0; i < took.size(); ++i) {
    EXPECT_LE(took[i], kDelayedAck + kClockStep) << "exchange " << i;
  }
}

TEST(SimAcks, AfterAnIdleConnectionTheNextExchangesWaitNothingAgain) {
  // Enough exchanges to leave quick-ack mode, 5 s of silence (longer than any retransmission
  // timeout on a link without delay), then a few more.
  const std::vector<double> took = exchange_durations(82, 2, 30, 5.0);
  ASSERT_EQ(took.size(), 60u);
  for (size_t i = 30; i < 34; ++i) EXPECT_EQ(took[i], 0.0) << "exchange " << i;
  for (size_t i = 0; i < took.size(); ++i) {
    EXPECT_LE(took[i], kDelayedAck + kClockStep) << "exchange " << i;
  }
}

TEST(SimAcks, AHeaderThenABodyOfManySegmentsWaitsAMillisecondAtMost) {
  // 100 kB: 69 segments on the default 1500-byte link; the last, short one leaves only once
  // every earlier one is acknowledged.
  const std::vector<double> took = exchange_durations(83, 1, 40, 0, 100'000);
  ASSERT_EQ(took.size(), 40u);
  for (size_t i = 0; i < took.size(); ++i)
    EXPECT_LE(took[i], 0.001 + kClockStep) << "exchange " << i;
}

}  // namespace anysock::sim_testing
