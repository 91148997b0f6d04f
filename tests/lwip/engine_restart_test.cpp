// Engine restart: the lwIP engine stops when its last host and that host's last socket are gone,
// and the next host starts a fresh one. Every engine of the process must pass the same workloads,
// start its protocol counters from zero and leak nothing.
#include "lwip_support.hpp"

namespace anysock::testing {
namespace {

// Whether an lwIP engine runs now (its counters list at least one host).
bool engine_runs() { return !lwip::read_counters().links.empty(); }

// The IPv4 addresses `name` resolves to on `b`.
std::vector<std::string> ipv4_of(backend& b, const std::string& name) {
  backend_scope scope(b);
  std::vector<std::string> out;
  for (const addr_info& ai : getaddrinfo(name, "7", AF_INET, SOCK_STREAM)) {
    out.push_back(ai.addr.host);
  }
  return out;
}

// One UDP datagram from `from` to `to` (at `to_host`), received intact.
void datagram_arrives(backend& from, backend& to, const std::string& to_host) {
  socket rx(to, AF_INET, SOCK_DGRAM);
  rx.bind({to_host, 0});
  rx.settimeout(kGenerousWait);
  socket tx(from, AF_INET, SOCK_DGRAM);
  tx.sendto("datagram", {to_host, rx.getsockname().port});
  EXPECT_EQ(rx.recvfrom(64).first, "datagram");
}

class EngineRestart : public LwipTest {};

}  // namespace

TEST_F(EngineRestart, AnEngineStartedAgainPassesTheSameWorkloadsWithCountersFromZero) {
  ASSERT_FALSE(engine_runs()) << "an earlier test left an lwIP host or socket behind";
  std::vector<std::string> first_cycle_address;
  for (int cycle = 0; cycle < 3; ++cycle) {
    SCOPED_TRACE("engine #" + std::to_string(cycle + 1));
    {
      auto a = make_backend("lwip+sim:host=a");
      auto b = make_backend("lwip+sim:host=b");
      const lwip::counters fresh = lwip::read_counters();
      ASSERT_EQ(fresh.links.size(), 2u) << "only this cycle's hosts exist";
      EXPECT_EQ(fresh.tcp_in, 0u);
      EXPECT_EQ(fresh.tcp_out, 0u);
      EXPECT_EQ(fresh.udp_in, 0u);
      EXPECT_EQ(fresh.udp_out, 0u);
      EXPECT_EQ(fresh.ip_in, 0u);
      EXPECT_EQ(fresh.tcp_retransmissions, 0u);
      EXPECT_EQ(link_of(fresh, "a").frames_in, 0u);
      EXPECT_EQ(link_of(fresh, "b").frames_in, 0u);

      // Default addresses come from the engine's link numbering, which restarts too.
      const std::vector<std::string> a_address = ipv4_of(*b, "a");
      ASSERT_EQ(a_address.size(), 1u);
      if (cycle == 0) first_cycle_address = a_address;
      EXPECT_EQ(a_address, first_cycle_address);

      {
        socket l(*a, AF_INET, SOCK_STREAM);
        l.bind({a_address[0], 0});
        l.listen(1);
        l.settimeout(kGenerousWait);
        socket on_b(*b, AF_INET, SOCK_STREAM);
        on_b.settimeout(kGenerousWait);
        on_b.connect({a_address[0], l.getsockname().port});
        socket on_a = l.accept().first;
        const uint64_t bytes = uint64_t{8} << 20;
        auto [b_to_a, a_to_b] = bulk_exchange(on_b, on_a, bytes);
        for (const direction_report* r : {&b_to_a, &a_to_b}) {
          EXPECT_EQ(r->error, "");
          EXPECT_EQ(r->received_bytes, bytes);
          EXPECT_EQ(r->received_hash, r->sent_hash);
        }
      }
      ASSERT_NO_FATAL_FAILURE(open_and_close_connections(*b, *a, a_address[0], 500));
      ASSERT_NO_FATAL_FAILURE(datagram_arrives(*b, *a, a_address[0]));

      const lwip::counters used = lwip::read_counters();
      EXPECT_GT(used.tcp_in, 3000u);
      EXPECT_GT(used.tcp_out, 3000u);
      EXPECT_GE(used.udp_in, 1u);
      EXPECT_GE(used.udp_out, 1u);
      EXPECT_EQ(lwip::leak_report(), "");
    }
    EXPECT_FALSE(engine_runs()) << "the engine stops with its last host";
    EXPECT_TRUE(lwip::read_counters().pools.empty());
  }
}

TEST_F(EngineRestart, ASocketKeepsTheEngineRunningAfterItsHostIsDropped) {
  ASSERT_FALSE(engine_runs());
  auto a = make_backend("lwip+sim:host=a");
  socket s(*a, AF_INET, SOCK_STREAM);
  s.bind({"127.0.0.1", 0});
  s.listen();
  a.reset();
  const lwip::counters c = lwip::read_counters();
  ASSERT_EQ(c.links.size(), 1u);
  EXPECT_EQ(c.links[0].host, "a");
  EXPECT_EQ(s.get_backend().gethostname(), "a");
  s.close();
  EXPECT_FALSE(engine_runs());
}

TEST_F(EngineRestart, TheEngineModeCanChangeOnlyWhenNoEngineRuns) {
  ASSERT_FALSE(engine_runs());
  {
    auto p = make_backend("lwip+sim:host=p,engine=poll");
    EXPECT_THROW(make_backend("lwip+sim:host=q,engine=thread"), std::invalid_argument);
    auto q = make_backend("lwip+sim:host=q");  // no mode given: joins the running engine
    EXPECT_EQ(lwip::read_counters().links.size(), 2u);
    auto [x, y] = [&] {
      backend_scope scope(*q);
      return socketpair();
    }();
    x.sendall("poll mode");
    y.settimeout(kGenerousWait);
    EXPECT_EQ(y.recv(64), "poll mode");
    x.close();
    y.close();
    EXPECT_EQ(lwip::leak_report(), "");
  }
  EXPECT_FALSE(engine_runs());
  {
    auto t = make_backend("lwip+sim:host=t,engine=thread");
    EXPECT_THROW(make_backend("lwip+sim:host=u,engine=poll"), std::invalid_argument);
    EXPECT_EQ(lwip::read_counters().links.size(), 1u);
  }
  EXPECT_FALSE(engine_runs());
}

}  // namespace anysock::testing
