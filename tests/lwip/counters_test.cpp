// The engine's counters: link counters count exactly the packets and bytes that cross the link
// (and the ones it cannot deliver), and protocol counters keep counting on long runs.
#include "lwip_support.hpp"

namespace anysock::testing {
namespace {

class Counters : public LwipTest {
 protected:
  std::shared_ptr<backend> a_ = make_backend("lwip+sim:host=a,link=counters,ip=10.70.0.1/24");
  std::shared_ptr<backend> b_ = make_backend("lwip+sim:host=b,link=counters,ip=10.70.0.2/24");
};

}  // namespace

TEST_F(Counters, LinkCountersCountEveryPacketAndByteThatCrossesTheLink) {
  socket rx(*a_, AF_INET, SOCK_DGRAM);
  rx.bind({"10.70.0.1", 0});
  rx.settimeout(kGenerousWait);
  socket tx(*b_, AF_INET, SOCK_DGRAM);
  const address to{"10.70.0.1", rx.getsockname().port};
  wait_until_links_are_quiet();  // a new host's MLD reports are link traffic of their own
  const lwip::counters before = lwip::read_counters();
  const std::string payload(100, 'p');
  for (int i = 0; i < 100; ++i) {
    tx.sendto(payload, to);
    ASSERT_EQ(rx.recvfrom(200).first, payload);
  }
  tx.sendto(payload, {"10.70.0.99", 9});  // nobody on the link owns this address
  const lwip::counters after = lwip::read_counters();
  const lwip::link_counters a0 = link_of(before, "a"), a1 = link_of(after, "a");
  const lwip::link_counters b0 = link_of(before, "b"), b1 = link_of(after, "b");
  const uint64_t ip_udp = 20 + 8;
  EXPECT_EQ(a1.frames_in - a0.frames_in, 100u);
  EXPECT_EQ(a1.bytes_in - a0.bytes_in, 100u * (100 + ip_udp));
  EXPECT_EQ(a1.frames_out - a0.frames_out, 0u);
  EXPECT_EQ(b1.frames_out - b0.frames_out, 101u);
  EXPECT_EQ(b1.bytes_out - b0.bytes_out, 101u * (100 + ip_udp));
  EXPECT_EQ(b1.drops - b0.drops, 1u);
  EXPECT_EQ(a1.drops - a0.drops, 0u);
  EXPECT_EQ(a1.link, "sim:counters");
}

TEST_F(Counters, ProtocolCountersKeepCountingPastSixtyFiveThousandPackets) {
  socket rx(*a_, AF_INET, SOCK_DGRAM);
  rx.bind({"10.70.0.1", 0});
  rx.settimeout(kGenerousWait);
  socket tx(*b_, AF_INET, SOCK_DGRAM);
  const address to{"10.70.0.1", rx.getsockname().port};
  const lwip::counters before = lwip::read_counters();
  constexpr uint64_t kDatagrams = 70000;
  for (uint64_t i = 0; i < kDatagrams; ++i) {
    tx.sendto("x", to);
    if (rx.recvfrom(8).first != "x") FAIL() << "datagram #" << i << " was lost or altered";
  }
  const lwip::counters after = lwip::read_counters();
  EXPECT_GE(link_of(after, "a").frames_in - link_of(before, "a").frames_in, kDatagrams);
  EXPECT_GE(after.udp_out, before.udp_out + kDatagrams);
  EXPECT_GE(after.udp_in, before.udp_in + kDatagrams);
  EXPECT_GE(after.ip_in, before.ip_in + kDatagrams);
  EXPECT_GE(after.ip_out, before.ip_out + kDatagrams);
}

}  // namespace anysock::testing
