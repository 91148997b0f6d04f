// Every link driver against the Linux kernel on the other side of the link, in the test's own
// network namespace: ARP both ways, a kernel UDP datagram after answering the kernel's ARP, bursts
// both ways counted frame by frame, gather lists, and an interface going down or away underneath.
#include "link.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../support/support.hpp"
#include "frames.hpp"
#include "netns.hpp"

namespace anysock::testing {
namespace {

using drivers::frame;
using drivers::tx_frame;

constexpr mac kOurMac{0x02, 0x77, 0x00, 0x00, 0x00, 0x02};  // locally administered
constexpr uint16_t kUdpPort = 9999;

// Sizes 60 .. 1514 that differ from frame to frame, so slots of every length get used.
size_t size_for(uint32_t seq) { return 60 + (seq * 97) % 1455; }

using deadline_t = std::chrono::steady_clock::time_point;

deadline_t after(double seconds) {
  return std::chrono::steady_clock::now() +
         std::chrono::duration_cast<std::chrono::steady_clock::duration>(
             std::chrono::duration<double>(seconds));
}

int ms_until(deadline_t deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// Waits until `l`'s descriptor is ready (POLLIN) or the deadline passes.
void wait_readable(drivers::link& l, deadline_t deadline) {
  pollfd p{l.fd(), POLLIN, 0};
  ::poll(&p, 1, ms_until(deadline));
}

// Receives until `want` accepts a frame (returned as a copy) or kGenerousWait passes; the frames
// before it are dropped. A receive error fails the test.
template <class Want>
std::optional<std::vector<uint8_t>> receive_until(drivers::link& l, Want want) {
  auto deadline = after(kGenerousWait);
  std::optional<std::vector<uint8_t>> found;
  while (!found && ms_until(deadline) > 0) {
    drivers::burst b = l.receive(64, [&](frame f) {
      if (!found && want(f)) found.emplace(f.begin(), f.end());
    });
    EXPECT_EQ(b.error, 0) << std::strerror(b.error);
    if (b.error != 0) break;
    if (!found && b.frames == 0) wait_readable(l, deadline);
  }
  return found;
}

// Transmits `frames` whole: retries after EAGAIN once the descriptor says so; then flushes.
void transmit_all(drivers::link& l, const std::vector<tx_frame>& frames) {
  auto deadline = after(kGenerousWait);
  size_t sent = 0;
  while (sent < frames.size()) {
    drivers::burst b = l.transmit(std::span(frames).subspan(sent));
    sent += b.frames;
    if (b.error == EAGAIN && ms_until(deadline) > 0) {
      pollfd p{l.fd(), POLLIN | POLLOUT, 0};
      ::poll(&p, 1, 10);
      continue;
    }
    ASSERT_EQ(b.error, 0) << std::strerror(b.error) << " after " << sent << " frames";
  }
  int err;
  while ((err = l.flush()) == EAGAIN && ms_until(deadline) > 0) {
    pollfd p{l.fd(), POLLIN | POLLOUT, 0};
    ::poll(&p, 1, 10);
  }
  ASSERT_EQ(err, 0) << std::strerror(err);
}

struct driver_case {
  std::string kind;
  drivers::link_options options = {};  // besides iface
  std::string name = kind;
};

class EthernetLink : public ::testing::TestWithParam<driver_case> {
 protected:
  void SetUp() override {
    if (!in_private_namespace()) GTEST_SKIP() << namespace_unavailable_reason();
    if (tap()) {
      user_iface_ = kernel_iface_ = "as_tap0";
    } else {
      ASSERT_EQ(shell("ip link add as_u0 type veth peer name as_k0"), "");
      // Without offloads the kernel sends frames no larger than the MTU, with real checksums.
      ASSERT_EQ(shell("ethtool -K as_k0 tx off tso off gso off >/dev/null"), "");
      ASSERT_EQ(shell("ip addr add 10.77.3.1/24 dev as_k0 && ip link set as_u0 up && "
                      "ip link set as_k0 up"),
                "");
    }
    drivers::link_options options{{"iface", user_iface_}};
    options.insert(options.end(), GetParam().options.begin(), GetParam().options.end());
    link_ = drivers::open_link(GetParam().kind, options);
    if (tap()) {
      ASSERT_EQ(shell("ip addr add 10.77.1.1/24 dev as_tap0 && ip link set as_tap0 up"), "");
    }
    kernel_mac_ = sysfs_mac(kernel_iface_);
  }

  void TearDown() override {
    link_.reset();  // a TAP the link created goes with it
    if (!tap()) (void)shell("ip link del as_u0 2>/dev/null");
  }

  bool tap() const { return GetParam().kind == "tap"; }
  ip4 kernel_ip() const { return {10, 77, static_cast<uint8_t>(tap() ? 1 : 3), 1}; }
  ip4 user_ip() const { return {10, 77, static_cast<uint8_t>(tap() ? 1 : 3), 2}; }
  std::string user_ip_text() const { return tap() ? "10.77.1.2" : "10.77.3.2"; }

  // Sends an ARP request for the kernel's address and checks the reply field by field.
  void expect_arp_exchange() {
    auto request = arp_frame(1, kBroadcast, kOurMac, user_ip(), mac{}, kernel_ip());
    tx_frame f{frame(request)};
    drivers::burst b = link_->transmit({&f, 1});
    ASSERT_EQ(b.error, 0) << std::strerror(b.error);
    ASSERT_EQ(b.frames, 1u);
    ASSERT_EQ(link_->flush(), 0);

    auto reply = receive_until(*link_, [&](frame r) {
      auto a = parse_arp(r);
      return a && a->op == 2 && a->spa == kernel_ip();
    });
    ASSERT_TRUE(reply) << "no ARP reply from the kernel";
    EXPECT_EQ(ethertype_of(*reply), kEtherArp);
    EXPECT_EQ(dst_of(*reply), kOurMac);
    EXPECT_EQ(src_of(*reply), kernel_mac_);
    auto a = parse_arp(*reply);
    EXPECT_EQ(a->sha, kernel_mac_);
    EXPECT_EQ(a->tha, kOurMac);
    EXPECT_EQ(a->tpa, user_ip());
  }

  std::string user_iface_ = "as_u0";
  std::string kernel_iface_ = "as_k0";
  mac kernel_mac_{};
  std::unique_ptr<drivers::link> link_;
};

TEST_P(EthernetLink, ReportsTheInterfaceItIsOn) {
  EXPECT_EQ(link_->kind(), GetParam().kind);
  EXPECT_EQ(link_->iface(), user_iface_);
  EXPECT_EQ(link_->mtu(), 1500);
  EXPECT_EQ(link_->max_frame(), 1514u);
  EXPECT_EQ(link_->mac(), sysfs_mac(user_iface_));
  EXPECT_EQ(link_->state(), drivers::link_state::up);
  EXPECT_GE(link_->fd(), 0);
}

TEST_P(EthernetLink, ArpRequestGetsTheKernelsReply) { expect_arp_exchange(); }

TEST_P(EthernetLink, AnswersTheKernelsArpAndReceivesItsUdpDatagram) {
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(s, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(kUdpPort);
  std::memcpy(&to.sin_addr, user_ip().data(), 4);
  const std::string payload = "hello from the kernel";
  ASSERT_EQ(
      ::sendto(s, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
      static_cast<ssize_t>(payload.size()));

  // The kernel asks who has our address; answer, and the queued datagram follows.
  auto request = receive_until(*link_, [&](frame f) {
    auto a = parse_arp(f);
    return a && a->op == 1 && a->tpa == user_ip();
  });
  ::close(s);
  ASSERT_TRUE(request) << "the kernel never asked for " << user_ip_text();
  EXPECT_EQ(dst_of(*request), kBroadcast);
  EXPECT_EQ(src_of(*request), kernel_mac_);
  auto a = parse_arp(*request);
  EXPECT_EQ(a->sha, kernel_mac_);
  EXPECT_EQ(a->spa, kernel_ip());

  auto reply = arp_frame(2, kernel_mac_, kOurMac, user_ip(), kernel_mac_, kernel_ip());
  ASSERT_NO_FATAL_FAILURE(transmit_all(*link_, {tx_frame(frame(reply))}));

  auto datagram = receive_until(*link_, [&](frame f) {
    auto u = parse_udp(f);
    return u && u->dport == kUdpPort;
  });
  ASSERT_TRUE(datagram) << "no UDP datagram after answering the kernel's ARP";
  EXPECT_EQ(ethertype_of(*datagram), kEtherIp4);
  EXPECT_EQ(dst_of(*datagram), kOurMac);
  EXPECT_EQ(src_of(*datagram), kernel_mac_);
  auto u = parse_udp(*datagram);
  EXPECT_EQ(u->src, kernel_ip());
  EXPECT_EQ(u->dst, user_ip());
  EXPECT_EQ(u->payload, payload);
}

TEST_P(EthernetLink, BurstArrivesAtTheKernelFrameByFrame) {
  kernel_socket kernel(kernel_iface_, kEtherTest);
  constexpr uint32_t kFrames = 64;
  std::vector<std::vector<uint8_t>> bytes;
  for (uint32_t i = 0; i < kFrames; ++i) {
    bytes.push_back(numbered_frame(kernel_mac_, kOurMac, i, size_for(i)));
  }
  std::vector<tx_frame> frames(bytes.begin(), bytes.end());
  drivers::burst b = link_->transmit(frames);
  EXPECT_EQ(b.frames, kFrames);
  EXPECT_EQ(b.error, 0) << std::strerror(b.error);
  EXPECT_EQ(link_->flush(), 0);

  auto got = kernel.receive(kFrames, kGenerousWait);
  ASSERT_EQ(got.size(), kFrames);
  for (uint32_t i = 0; i < kFrames; ++i) {
    EXPECT_EQ(got[i], bytes[i]) << "frame " << i;
  }
  EXPECT_TRUE(kernel.receive(1, 0.05).empty()) << "more frames than were sent";
  EXPECT_EQ(link_->stats().tx_frames, kFrames);
}

TEST_P(EthernetLink, ManyBurstsReuseTheTransmitRing) {
  kernel_socket kernel(kernel_iface_, kEtherTest);
  constexpr uint32_t kBursts = 40;
  constexpr uint32_t kPerBurst = 100;  // 4000 frames: several times round every ring
  std::set<uint32_t> seen;
  for (uint32_t burst = 0; burst < kBursts; ++burst) {
    std::vector<std::vector<uint8_t>> bytes;
    for (uint32_t i = 0; i < kPerBurst; ++i) {
      uint32_t seq = burst * kPerBurst + i;
      bytes.push_back(numbered_frame(kernel_mac_, kOurMac, seq, size_for(seq)));
    }
    std::vector<tx_frame> frames(bytes.begin(), bytes.end());
    ASSERT_NO_FATAL_FAILURE(transmit_all(*link_, frames));
    for (const auto& f : kernel.receive(kPerBurst, kGenerousWait)) {
      auto seq = number_of(f);
      ASSERT_TRUE(seq) << "a frame arrived damaged";
      EXPECT_EQ(f.size(), size_for(*seq));
      EXPECT_TRUE(seen.insert(*seq).second) << "frame " << *seq << " arrived twice";
    }
    ASSERT_EQ(seen.size(), (burst + 1) * kPerBurst) << "frames lost in burst " << burst;
  }
}

TEST_P(EthernetLink, KernelBurstIsReceivedInOrder) {
  kernel_socket kernel(kernel_iface_, kEtherTest);
  constexpr uint32_t kFrames = 64;
  std::vector<std::vector<uint8_t>> bytes;
  for (uint32_t i = 0; i < kFrames; ++i) {
    bytes.push_back(numbered_frame(kOurMac, kernel_mac_, i, size_for(i)));
    ASSERT_TRUE(kernel.send(bytes.back()));
  }
  std::vector<std::vector<uint8_t>> got;
  auto deadline = after(kGenerousWait);
  while (got.size() < kFrames && ms_until(deadline) > 0) {
    drivers::burst b = link_->receive(16, [&](frame f) {
      if (number_of(f)) got.emplace_back(f.begin(), f.end());
    });
    ASSERT_EQ(b.error, 0) << std::strerror(b.error);
    ASSERT_LE(b.frames, 16u);
    if (b.frames == 0) wait_readable(*link_, deadline);
  }
  ASSERT_EQ(got.size(), kFrames);
  for (uint32_t i = 0; i < kFrames; ++i) EXPECT_EQ(got[i], bytes[i]) << "frame " << i;
  drivers::link_stats st = link_->stats();
  EXPECT_GE(st.rx_frames, kFrames);
  EXPECT_EQ(st.rx_dropped, 0u);
}

TEST_P(EthernetLink, ManyKernelBurstsGoRoundTheReceiveRing) {
  kernel_socket kernel(kernel_iface_, kEtherTest);
  constexpr uint32_t kRounds = 60;
  constexpr uint32_t kPerRound = 200;  // 12,000 frames, ~9 MB: more than any receive ring holds
  uint32_t expected = 0;
  for (uint32_t round = 0; round < kRounds; ++round) {
    for (uint32_t i = 0; i < kPerRound; ++i) {
      uint32_t seq = round * kPerRound + i;
      ASSERT_TRUE(kernel.send(numbered_frame(kOurMac, kernel_mac_, seq, size_for(seq))));
    }
    auto deadline = after(kGenerousWait);
    while (expected < (round + 1) * kPerRound && ms_until(deadline) > 0) {
      drivers::burst b = link_->receive(64, [&](frame f) {
        auto seq = number_of(f);
        if (!seq) return;  // not ours
        EXPECT_EQ(*seq, expected) << "out of order";
        EXPECT_EQ(f.size(), size_for(*seq));
        expected = *seq + 1;
      });
      ASSERT_EQ(b.error, 0) << std::strerror(b.error);
      if (b.frames == 0) wait_readable(*link_, deadline);
    }
    ASSERT_EQ(expected, (round + 1) * kPerRound) << "frames lost in round " << round;
  }
  EXPECT_EQ(link_->stats().rx_dropped, 0u);
}

TEST_P(EthernetLink, GatherListLeavesAsOneFrame) {
  kernel_socket kernel(kernel_iface_, kEtherTest);
  auto whole = numbered_frame(kernel_mac_, kOurMac, 7, 300);
  iovec pieces[3] = {{whole.data(), 14}, {whole.data() + 14, 100}, {whole.data() + 114, 186}};
  tx_frame f{std::span<const iovec>(pieces)};
  EXPECT_EQ(f.size(), whole.size());
  ASSERT_NO_FATAL_FAILURE(transmit_all(*link_, {f}));
  auto got = kernel.receive(1, kGenerousWait);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], whole);
}

TEST_P(EthernetLink, FrameLongerThanTheMtuIsRefused) {
  std::vector<uint8_t> big(link_->max_frame() + 1, 0);
  tx_frame f{frame(big)};
  drivers::burst b = link_->transmit({&f, 1});
  EXPECT_EQ(b.frames, 0u);
  EXPECT_EQ(b.error, EMSGSIZE);
  expect_arp_exchange();  // and the link still works
}

TEST_P(EthernetLink, InterfaceDownReportsEnetdownUntilItIsUpAgain) {
  ASSERT_EQ(shell("ip link set " + user_iface_ + " down"), "");
  auto probe = numbered_frame(kernel_mac_, kOurMac, 1, 60);
  tx_frame f{frame(probe)};
  drivers::burst b = link_->transmit({&f, 1});
  int flushed = link_->flush();
  EXPECT_TRUE(b.error == ENETDOWN || flushed == ENETDOWN)
      << "transmit: " << std::strerror(b.error) << ", flush: " << std::strerror(flushed);
  EXPECT_EQ(link_->state(), drivers::link_state::down);
  EXPECT_EQ(link_->receive(8, [](frame) {}).error, ENETDOWN);

  ASSERT_EQ(shell("ip link set " + user_iface_ + " up"), "");
  if (tap()) {
    ASSERT_EQ(shell("ip addr replace 10.77.1.1/24 dev as_tap0"), "");
  }
  // Carrier comes back a moment after the interface is up (the kernel's link watch).
  auto deadline = after(kGenerousWait);
  while (link_->state() != drivers::link_state::up && ms_until(deadline) > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(link_->state(), drivers::link_state::up);
  expect_arp_exchange();
}

TEST_P(EthernetLink, DeletedInterfaceReportsEnodevWithinTwoSeconds) {
  auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(shell("ip link del " + user_iface_), "");
  auto deadline = start + std::chrono::seconds(2);
  int err = 0;
  // Sleep in poll(2) on the link's descriptor: it must wake when the device goes.
  while (err != ENODEV && ms_until(deadline) > 0) {
    err = link_->receive(64, [](frame) {}).error;
    EXPECT_TRUE(err == 0 || err == ENETDOWN || err == ENODEV) << std::strerror(err);
    if (err == 0) wait_readable(*link_, deadline);
  }
  EXPECT_EQ(err, ENODEV) << "receive did not report the deleted interface within 2 s";
  auto probe = numbered_frame(kernel_mac_, kOurMac, 1, 60);
  tx_frame f{frame(probe)};
  EXPECT_EQ(link_->transmit({&f, 1}).error, ENODEV);
  EXPECT_EQ(link_->flush(), ENODEV);
  EXPECT_EQ(link_->state(), drivers::link_state::gone);
  link_.reset();  // closing a link on a dead device is fine too
}

INSTANTIATE_TEST_SUITE_P(
    Drivers, EthernetLink,
    ::testing::Values(
        driver_case{"tap"}, driver_case{"pcap"}, driver_case{"af_packet"},
        driver_case{"af_packet", {{"version", "2"}}, "af_packet_v2"},
        // The send system call on the caller's thread, or on the link's own.
        driver_case{"af_packet", {{"tx_thread", "0"}}, "af_packet_sync"},
        driver_case{"af_packet", {{"tx_thread", "1"}}, "af_packet_tx_thread"},
        driver_case{"af_packet", {{"version", "2"}, {"tx_thread", "1"}}, "af_packet_v2_tx_thread"},
        // Without PACKET_VNET_HDR: the kernel maps slots as page fragments.
        driver_case{"af_packet", {{"vnet_hdr", "0"}}, "af_packet_no_vnet"}, driver_case{"af_xdp"},
        driver_case{"af_xdp", {{"tx_thread", "0"}}, "af_xdp_sync"},
        driver_case{"af_xdp", {{"tx_thread", "1"}}, "af_xdp_tx_thread"}),
    [](const auto& p) { return p.param.name; });

}  // namespace
}  // namespace anysock::testing
