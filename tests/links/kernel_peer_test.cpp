// An lwIP host on each link driver with the Linux kernel on the other side, in the test's own
// network namespace: the kernel pings it (IPv4 and IPv6: ARP and neighbour discovery both ways),
// kernel and anysock TCP clients and servers exchange 8 MiB each way verified by hash, and UDP
// datagrams of every size up to 64 KiB (fragmented on the way) cross both ways.
#include <gtest/gtest.h>

#include <string>

#include "../lwip/lwip_support.hpp"
#include "anysock/socket.hpp"
#include "links_support.hpp"

namespace anysock::testing {
namespace {

constexpr uint64_t kBulkBytes = 8 << 20;

class KernelPeer : public LinkTest, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override { open(GetParam()); }
};

void expect_intact(const direction_report& d, const char* what) {
  EXPECT_EQ(d.error, "") << what;
  EXPECT_EQ(d.sent_bytes, kBulkBytes) << what;
  EXPECT_EQ(d.received_bytes, d.sent_bytes) << what;
  EXPECT_EQ(d.received_hash, d.sent_hash) << what;
}

TEST_P(KernelPeer, KernelPingsTheLwipHostOverIpv4) {
  auto [status, out] = run("ping -c 3 -i 0.2 -W 2 " + link_.lwip_ip4() + " 2>&1");
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("3 received"), std::string::npos) << out;
}

TEST_P(KernelPeer, KernelPingsTheLwipHostOverIpv6) {
  auto [status, out] = run("ping -6 -c 3 -i 0.2 -W 2 " + link_.lwip_ip6() + " 2>&1");
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("3 received"), std::string::npos) << out;
}

// A kernel client connects to an anysock server on `host`; 8 MiB cross each way at once.
void kernel_client_exchange(backend& host, const test_link& link, uint16_t port) {
  socket listener(host, AF_INET, SOCK_STREAM);
  listener.bind({"", port});
  listener.listen(1);
  socket client(kernel_backend(), AF_INET, SOCK_STREAM);
  client.settimeout(kGenerousWait);
  client.connect({link.lwip_ip4(), port});
  auto [server, peer] = listener.accept();
  EXPECT_EQ(peer.host, link.kernel_ip4());
  auto [to_lwip, to_kernel] = bulk_exchange(client, server, kBulkBytes);
  expect_intact(to_lwip, "kernel to lwIP");
  expect_intact(to_kernel, "lwIP to kernel");
}

TEST_P(KernelPeer, KernelClientAndAnysockServerExchangeDataBothWays) {
  kernel_client_exchange(*host_, link_, 5001);
}

TEST_P(KernelPeer, AnysockClientAndKernelServerExchangeDataBothWaysOverIpv6) {
  socket listener(kernel_backend(), AF_INET6, SOCK_STREAM);
  listener.bind({link_.kernel_ip6(), 5002});
  listener.listen(1);
  listener.settimeout(kGenerousWait);
  socket client(*host_, AF_INET6, SOCK_STREAM);
  client.settimeout(kGenerousWait);
  client.connect({link_.kernel_ip6(), 5002});
  auto [server, peer] = listener.accept();
  EXPECT_EQ(peer.host, link_.lwip_ip6());
  auto [to_kernel, to_lwip] = bulk_exchange(client, server, kBulkBytes);
  expect_intact(to_kernel, "lwIP to kernel");
  expect_intact(to_lwip, "kernel to lwIP");
}

TEST_P(KernelPeer, AnysockClientAndKernelServerExchangeDataBothWaysOverIpv4) {
  socket listener(kernel_backend(), AF_INET, SOCK_STREAM);
  listener.bind({link_.kernel_ip4(), 5003});
  listener.listen(1);
  listener.settimeout(kGenerousWait);
  socket client(*host_, AF_INET, SOCK_STREAM);
  client.settimeout(kGenerousWait);
  client.connect({link_.kernel_ip4(), 5003});
  auto [server, peer] = listener.accept();
  auto [to_kernel, to_lwip] = bulk_exchange(client, server, kBulkBytes);
  expect_intact(to_kernel, "lwIP to kernel");
  expect_intact(to_lwip, "kernel to lwIP");
}

// Each datagram goes lwIP -> kernel, then the kernel's copy comes back kernel -> lwIP.
void udp_round_trips(backend& lwip_host, int family, const std::string& lwip_ip,
                     const std::string& kernel_ip, std::initializer_list<size_t> sizes) {
  socket ours(lwip_host, family, SOCK_DGRAM);
  ours.bind({lwip_ip, 6001});
  ours.settimeout(kGenerousWait);
  socket theirs(kernel_backend(), family, SOCK_DGRAM);
  theirs.bind({kernel_ip, 6002});
  theirs.settimeout(kGenerousWait);
  uint32_t seed = 1;
  for (size_t size : sizes) {
    const std::string sent = pattern(size, seed++);
    EXPECT_EQ(ours.sendto(sent, {kernel_ip, 6002}), size);
    auto [got, from] = theirs.recvfrom(70000);
    EXPECT_EQ(got.size(), size);
    EXPECT_TRUE(got == sent) << size << "-byte datagram changed on the way to the kernel";
    EXPECT_EQ(from.host, lwip_ip);
    EXPECT_EQ(from.port, 6001);
    EXPECT_EQ(theirs.sendto(got, from), size);
    auto [back, back_from] = ours.recvfrom(70000);
    EXPECT_TRUE(back == sent) << size << "-byte datagram changed on the way to lwIP";
    EXPECT_EQ(back_from.host, kernel_ip);
  }
}

TEST_P(KernelPeer, UdpDatagramsCrossBothWaysUpTo64KiB) {
  udp_round_trips(*host_, AF_INET, link_.lwip_ip4(), link_.kernel_ip4(),
                  {1, 512, 1472, 1473, 8000, 65507});
}

TEST_P(KernelPeer, UdpDatagramsCrossBothWaysOverIpv6) {
  udp_round_trips(*host_, AF_INET6, link_.lwip_ip6(), link_.kernel_ip6(),
                  {1, 1452, 1453, 8000, 65000});
}

// The kernel sends IPv6 UDP payloads of up to 65,527 bytes; lwIP reassembles packets of at most
// 65,535 bytes with their header (payloads up to 65,487). The larger ones' fragments are dropped
// and counted (an LWIP_ASSERT in ip6_reass aborted the process), and the host keeps receiving.
TEST_P(KernelPeer, Ipv6UdpDatagramsTooLargeForLwipAreDroppedAndCountedAndTheHostLivesOn) {
  socket ours(*host_, AF_INET6, SOCK_DGRAM);
  ours.bind({link_.lwip_ip6(), 6003});
  ours.settimeout(kGenerousWait);
  socket theirs(kernel_backend(), AF_INET6, SOCK_DGRAM);
  theirs.bind({link_.kernel_ip6(), 6004});
  const address to{link_.lwip_ip6(), 6003};
  const lwip::counters before = lwip::read_counters();
  for (size_t size : {65488, 65500, 65519, 65520, 65527}) {
    theirs.sendto(pattern(size, static_cast<uint32_t>(size)), to);
    theirs.sendto("after", to);
    EXPECT_EQ(ours.recv(70000), "after") << size << " bytes";
  }
  const std::string fits = pattern(65487, 1);
  theirs.sendto(fits, to);
  EXPECT_TRUE(ours.recv(70000) == fits) << "65,487 bytes changed on the way";
  // At least the last fragment of each datagram is dropped.
  EXPECT_GE(lwip::read_counters().ip_drops, before.ip_drops + 5);
}

INSTANTIATE_TEST_SUITE_P(Drivers, KernelPeer, ::testing::ValuesIn(all_drivers()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

// The batching drivers' transmit paths, each way: the send system call on the calling thread
// (tx_thread=0) or on the link's own thread (tx_thread=1, the default with two CPUs or more), and
// af_packet's TPACKET_V2 rings and its sending without PACKET_VNET_HDR.
struct transmit_path {
  std::string driver;
  std::string keys;
  std::string name;
};

class KernelPeerTransmitPath : public LinkTest,
                               public ::testing::WithParamInterface<transmit_path> {
 protected:
  void SetUp() override { open(GetParam().driver, GetParam().keys); }
};

TEST_P(KernelPeerTransmitPath, KernelClientAndAnysockServerExchangeDataBothWays) {
  kernel_client_exchange(*host_, link_, 5004);
}

INSTANTIATE_TEST_SUITE_P(
    Drivers, KernelPeerTransmitPath,
    ::testing::Values(transmit_path{"af_packet", ",tx_thread=0", "af_packet_sync"},
                      transmit_path{"af_packet", ",tx_thread=1", "af_packet_tx_thread"},
                      transmit_path{"af_packet", ",version=2,tx_thread=1", "af_packet_v2"},
                      transmit_path{"af_packet", ",vnet_hdr=0", "af_packet_no_vnet"},
                      transmit_path{"af_xdp", ",tx_thread=0", "af_xdp_sync"},
                      transmit_path{"af_xdp", ",tx_thread=1", "af_xdp_tx_thread"}),
    [](const ::testing::TestParamInfo<transmit_path>& p) { return p.param.name; });

}  // namespace
}  // namespace anysock::testing
