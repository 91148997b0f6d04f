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

TEST_P(KernelPeer, KernelClientAndAnysockServerExchangeDataBothWays) {
  socket listener(*host_, AF_INET, SOCK_STREAM);
  listener.bind({"", 5001});
  listener.listen(1);
  socket client(kernel_backend(), AF_INET, SOCK_STREAM);
  client.settimeout(kGenerousWait);
  client.connect({link_.lwip_ip4(), 5001});
  auto [server, peer] = listener.accept();
  EXPECT_EQ(peer.host, link_.kernel_ip4());
  auto [to_lwip, to_kernel] = bulk_exchange(client, server, kBulkBytes);
  expect_intact(to_lwip, "kernel to lwIP");
  expect_intact(to_kernel, "lwIP to kernel");
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

INSTANTIATE_TEST_SUITE_P(Drivers, KernelPeer, ::testing::ValuesIn(all_drivers()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace anysock::testing
