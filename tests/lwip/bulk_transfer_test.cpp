// Bulk transfer: 256 MiB each way at once over one TCP connection between two lwIP hosts on the
// in-memory link, both streams checked by hashing what was generated against what arrived.
#include <chrono>
#include <iostream>

#include "lwip_support.hpp"

namespace anysock::testing {
namespace {

class BulkTransfer : public LwipTest {
 protected:
  std::shared_ptr<backend> a_ =
      make_backend("lwip+sim:host=a,link=bulk,ip=10.61.0.1/24,ip6='fd00:61::1/64',mtu=65535");
  std::shared_ptr<backend> b_ =
      make_backend("lwip+sim:host=b,link=bulk,ip=10.61.0.2/24,ip6='fd00:61::2/64',mtu=65535");

  // {end on b (client), end on a (server)} of a fresh connection from b to a at `host`.
  std::pair<socket, socket> connect_b_to_a(int family, const std::string& host) {
    socket l(*a_, family, SOCK_STREAM);
    l.bind({host, 0});
    l.listen(1);
    l.settimeout(kGenerousWait);
    socket c(*b_, family, SOCK_STREAM);
    c.settimeout(kGenerousWait);
    c.connect({host, l.getsockname().port});
    return {std::move(c), l.accept().first};
  }

  void expect_intact(const direction_report& r, uint64_t bytes, const char* what) {
    EXPECT_EQ(r.error, "") << what;
    EXPECT_EQ(r.sent_bytes, bytes) << what;
    EXPECT_EQ(r.received_bytes, bytes) << what;
    EXPECT_EQ(r.received_hash, r.sent_hash) << what << ": the stream arrived altered";
  }

  void transfer_both_ways(int family, const std::string& host, uint64_t bytes) {
    auto [on_b, on_a] = connect_b_to_a(family, host);
    const auto start = std::chrono::steady_clock::now();
    auto [b_to_a, a_to_b] = bulk_exchange(on_b, on_a, bytes);
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    std::cout << "[ info     ] " << (bytes >> 20) << " MiB each way took " << took.count() << " s ("
              << 2.0 * static_cast<double>(bytes) / took.count() / 1e6 << " MB/s total)\n";
    expect_intact(b_to_a, bytes, "b to a");
    expect_intact(a_to_b, bytes, "a to b");
    EXPECT_NE(b_to_a.sent_hash, a_to_b.sent_hash) << "the two directions carry different streams";
    const lwip::counters c = lwip::read_counters();
    EXPECT_GE(link_of(c, "b").bytes_out, bytes) << "b's stream crossed the link";
    EXPECT_GE(link_of(c, "a").bytes_out, bytes) << "a's stream crossed the link";
    EXPECT_EQ(c.tcp_checksum_errors, 0u);
  }
};

}  // namespace

TEST_F(BulkTransfer, StreamHashDependsOnEveryByteAndItsPlaceButNotOnHowTheStreamIsCut) {
  const std::string data = pattern(1000, 7);
  stream_hash whole, pieces, changed, swapped;
  whole.update(data.data(), data.size());
  for (size_t i = 0; i < data.size(); i += 3) {
    pieces.update(data.data() + i, std::min<size_t>(3, data.size() - i));
  }
  std::string one_bit = data;
  one_bit[555] ^= 1;
  changed.update(one_bit.data(), one_bit.size());
  std::string moved = data;
  std::swap(moved[8], moved[16]);
  swapped.update(moved.data(), moved.size());
  EXPECT_EQ(whole.value(), pieces.value());
  EXPECT_NE(whole.value(), changed.value());
  EXPECT_NE(whole.value(), swapped.value());
  stream_hash shorter;
  shorter.update(data.data(), data.size() - 1);
  EXPECT_NE(whole.value(), shorter.value());
}

TEST_F(BulkTransfer, TwoHundredFiftySixMebibytesEachWayAtOnceArriveIntactOverIPv4) {
  transfer_both_ways(AF_INET, "10.61.0.1", uint64_t{256} << 20);
}

TEST_F(BulkTransfer, SixtyFourMebibytesEachWayAtOnceArriveIntactOverIPv6) {
  transfer_both_ways(AF_INET6, "fd00:61::1", uint64_t{64} << 20);
}

}  // namespace anysock::testing
