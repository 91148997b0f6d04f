// Many connections: 10,000 TCP connections between two lwIP hosts opened, used and closed one
// after another, after which every lwIP pool (and the TCP pcb pool in particular) is back where it
// was before the first one.
#include <chrono>
#include <iostream>

#include "lwip_support.hpp"

namespace anysock::testing {
namespace {

class ManyConnections : public LwipTest {
 protected:
  std::shared_ptr<backend> a_ =
      make_backend("lwip+sim:host=a,link=many,ip=10.62.0.1/24,ip6='fd00:62::1/64'");
  std::shared_ptr<backend> b_ =
      make_backend("lwip+sim:host=b,link=many,ip=10.62.0.2/24,ip6='fd00:62::2/64'");

  void open_and_close_leaves_nothing_behind(const std::string& server_host, int count) {
    const lwip::counters before = lwip::read_counters();
    ASSERT_GE(pool_used(before, "TCP_PCB"), 0) << "lwIP reports a TCP_PCB pool";
    const auto start = std::chrono::steady_clock::now();
    ASSERT_NO_FATAL_FAILURE(open_and_close_connections(*b_, *a_, server_host, count));
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    std::cout << "[ info     ] " << count << " connections took " << took.count() << " s\n";
    // a receives at least a SYN, the handshake's ACK, a request and a FIN or ACK per connection.
    EXPECT_GE(link_of(lwip::read_counters(), "a").frames_in - link_of(before, "a").frames_in,
              4u * static_cast<uint64_t>(count))
        << "every connection crossed the link";

    EXPECT_EQ(lwip::leak_report(), "");
    const lwip::counters after = lwip::read_counters();
    EXPECT_EQ(pool_used(after, "TCP_PCB"), pool_used(before, "TCP_PCB"));
    EXPECT_EQ(pool_used(after, "TCP_PCB_LISTEN"), pool_used(before, "TCP_PCB_LISTEN"));
    for (const auto& p : after.pools) {
      if (p.name == "SYS_TIMEOUT" || p.name == "heap") continue;  // the TCP timer may linger
      EXPECT_EQ(static_cast<int64_t>(p.used), pool_used(before, p.name)) << "pool " << p.name;
    }
    EXPECT_EQ(after.memory_failures, 0u);
  }
};

}  // namespace

TEST_F(ManyConnections, TenThousandConnectionsOpenedAndClosedLeaveEveryPoolAsItWas) {
  open_and_close_leaves_nothing_behind("10.62.0.1", 10000);
}

TEST_F(ManyConnections, TwoThousandIPv6ConnectionsOpenedAndClosedLeaveEveryPoolAsItWas) {
  open_and_close_leaves_nothing_behind("fd00:62::1", 2000);
}

}  // namespace anysock::testing
