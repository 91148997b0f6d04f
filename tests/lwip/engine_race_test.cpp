// Engine start-up racing engine shutdown: one thread releases the last reference to the engine (a
// host, or a socket that outlived its host) while another makes the next host at the same moment.
// make_backend() then either joins the engine being released or starts a new one while the old one
// shuts lwIP down. Every host must get a working engine, and no two engines may touch lwIP's global
// state at once (the TSan build reports it if they do).
#include <barrier>
#include <chrono>
#include <optional>
#include <thread>

#include "lwip_support.hpp"

namespace anysock::testing {
namespace {

bool engine_runs() { return !lwip::read_counters().links.empty(); }

// One datagram to itself over host `b`'s loopback: the host's engine works.
void loopback_datagram_arrives(backend& b) {
  socket u(b, AF_INET, SOCK_DGRAM);
  u.bind({"127.0.0.1", 0});
  u.settimeout(kGenerousWait);
  u.sendto("ping", u.getsockname());
  EXPECT_EQ(u.recv(16), "ping");
}

// What keeps an engine running: a host, or a listening socket whose host was dropped.
struct engine_reference {
  std::shared_ptr<backend> host;
  std::optional<socket> listener;
};

engine_reference make_host(const std::string& name, bool keep_only_a_socket) {
  engine_reference r;
  r.host = make_backend("lwip+sim:host=" + name);
  loopback_datagram_arrives(*r.host);
  if (keep_only_a_socket) {
    r.listener.emplace(*r.host, AF_INET, SOCK_STREAM);
    r.listener->bind({"127.0.0.1", 0});
    r.listener->listen();
    r.host.reset();
  }
  return r;
}

void spin_for(std::chrono::microseconds d) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < until) {
  }
}

class EngineRace : public LwipTest {};

}  // namespace

TEST_F(EngineRace, AHostMadeWhileTheLastReferenceToTheEngineGoesGetsAWorkingEngine) {
  ASSERT_FALSE(engine_runs()) << "an earlier test left an lwIP host or socket behind";
  // Two threads take turns: in each round one makes a host while the other releases the only
  // reference to the running engine, which it made the round before (a barrier starts both).
  constexpr int kRounds = 200;
  std::barrier start(2);
  auto take_turns = [&](int self) {
    engine_reference held;
    for (int round = 0; round < kRounds; ++round) {
      start.arrive_and_wait();
      if (round % 2 == self) {
        // The release takes some hundred microseconds: start anywhere from before it to after it.
        spin_for(std::chrono::microseconds(round / 2 % 16 * 25));
        held = make_host("t" + std::to_string(self), round % 4 >= 2);
      } else {
        held = {};
      }
    }
    start.arrive_and_wait();
    held = {};
  };
  {
    std::jthread first(take_turns, 0);
    std::jthread second(take_turns, 1);
  }
  EXPECT_FALSE(engine_runs()) << "the engine stops with its last host";
  auto h = make_backend("lwip+sim:host=after");
  loopback_datagram_arrives(*h);
  EXPECT_EQ(lwip::leak_report(), "");
}

}  // namespace anysock::testing
