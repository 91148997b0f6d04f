// Fault scenarios, each asserted on what sockets observe: a transfer through a partition stalls
// and completes intact after heal; a connect through a partition times out; a crashed server's
// clients time out, then see resets and reconnect after its restart, and the capture shows that
// the crashed host sent nothing while it was down; threads of a crashed host get ENETDOWN;
// spawned code that throws, and a deadlock, stop run() naming the hosts; link settings (delay,
// jitter, loss, duplication, corruption, reordering, rate, queue, MTU) do what they say, and bad
// ones are std::invalid_argument.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <set>

#include "sim_support.hpp"

namespace anysock::sim_testing {
namespace {

// How one call (or a few) ended.
struct call_result {
  bool ok = false;
  bool timed_out = false;  // anysock::timeout
  int err = 0;             // the errno of an anysock::error (ETIMEDOUT for a timeout)
  std::string what;
};

template <class F>
call_result attempt(F&& f) {
  call_result r;
  try {
    f();
    r.ok = true;
  } catch (const timeout& e) {
    r.timed_out = true;
    r.err = e.code().value();
    r.what = e.what();
  } catch (const error& e) {
    r.err = e.code().value();
    r.what = e.what();
  }
  return r;
}

std::string describe(const call_result& r) {
  if (r.ok) return "ok";
  return (r.timed_out ? "timeout: " : "error: ") + r.what;
}

// Waits (in virtual time) until the world's clock reads `t`.
void sleep_until(double t) {
  if (t > sim::now()) sim::sleep(t - sim::now());
}

sim::link_config with_delay(double delay) {
  sim::link_config c;
  c.delay = delay;
  return c;
}

// Results that several spawned threads add to (one runs at a time; the lock is never contended).
class endings {
 public:
  void add(const call_result& r) {
    std::lock_guard<std::mutex> g(lock_);
    all_.push_back(r);
  }
  std::vector<call_result> all() const {
    std::lock_guard<std::mutex> g(lock_);
    return all_;
  }

 private:
  mutable std::mutex lock_;
  std::vector<call_result> all_;
};

// An echo service on `h`: a dual-stack listener on `port` that accepts `connections` connections
// (0: until its accept fails), each echoed by a thread of its own until end of stream. The
// listener's ending is the first entry of `out`, the handlers' follow.
void echo_service(sim::host& h, uint16_t port, int connections, endings& out) {
  std::vector<call_result> handlers;
  out.add(attempt([&] {
    socket l(AF_INET6, SOCK_STREAM);
    l.bind({"::", port});
    l.listen(8);
    for (int i = 0; connections == 0 || i < connections; ++i) {
      auto c = std::make_shared<socket>(l.accept().first);
      h.spawn([c, &out] {
        out.add(attempt([&] {
          for (;;) {
            const std::string m = c->recv(4096);
            if (m.empty()) return;
            c->sendall(m);
          }
        }));
        c->close();
      });
    }
  }));
}

// The echo of `message` through `s` (throws std::runtime_error if it comes back different).
void expect_echo(socket& s, const std::string& message) {
  s.sendall(message);
  std::string back;
  while (back.size() < message.size()) {
    std::string piece = s.recv(4096);
    if (piece.empty()) break;
    back += piece;
  }
  if (back != message) throw std::runtime_error("echo came back as '" + back + "'");
}

}  // namespace

// ---- partitions ---------------------------------------------------------------------------------

TEST(SimPartition, ATransferStallsWhilePartitionedAndCompletesIntactAfterHeal) {
  constexpr uint64_t kBytes = 4 << 20;
  sim::world w(21);
  sim::host& a = w.add_host("a");
  sim::host& b = w.add_host("b");
  sim::link_config link;
  link.delay = 0.001;
  link.rate_bps = 10'000'000;  // 4 MiB take ~3.4 s: the partition at 1 s cuts it in the middle
  w.set_default_link(link);
  std::atomic<uint64_t> received{0};
  std::string wrong;
  bool saw_end = false;
  call_result sender, receiver;
  b.spawn([&] {
    receiver = attempt([&] {
      socket l(AF_INET, SOCK_STREAM);
      l.bind({"", 7100});
      l.listen(1);
      l.settimeout(10);
      socket c = l.accept().first;
      c.settimeout(120);
      const stream_bytes gen(77);
      for (;;) {
        const std::string piece = c.recv(65536);
        if (piece.empty()) {
          saw_end = true;
          return;
        }
        if (gen.first_mismatch(received, piece) != std::string_view::npos) {
          wrong = "a wrong byte after " + std::to_string(received.load());
          return;
        }
        received += piece.size();
      }
    });
  });
  a.spawn([&] {
    sender = attempt([&] {
      socket c = create_connection({"b", 7100}, 10.0);
      c.settimeout(120);
      const stream_bytes gen(77);
      for (uint64_t off = 0; off < kBytes; off += 65536) c.sendall(gen.at(off, 65536));
      c.shutdown(SHUT_WR);
    });
  });
  w.run_for(1.0);
  const uint64_t before = received;
  EXPECT_GT(before, 0u) << "the transfer is under way";
  w.partition(a, b);
  w.run_for(5.0);  // packets already past the partition point may still arrive meanwhile
  const uint64_t during = received;
  w.run_for(15.0);
  EXPECT_EQ(received.load(), during) << "nothing crosses a partition";
  EXPECT_LT(during, kBytes) << "the partition cut the transfer short";
  EXPECT_GT(w.stats().partitioned, 0u);
  w.heal(a, b);
  w.run();
  EXPECT_TRUE(sender.ok) << describe(sender);
  EXPECT_TRUE(receiver.ok) << describe(receiver);
  EXPECT_EQ(wrong, "");
  EXPECT_TRUE(saw_end);
  EXPECT_EQ(received.load(), kBytes);
}

TEST(SimPartition, AConnectThroughAPartitionTimesOutAndOneAfterHealSucceeds) {
  sim::world w(22);
  sim::host& a = w.add_host("a");
  sim::host& b = w.add_host("b");
  w.set_default_link(with_delay(0.005));
  w.partition(a, b);
  endings server;
  call_result first, second;
  double waited = -1;
  b.spawn([&] { echo_service(b, 7200, 1, server); });
  a.spawn([&] {
    first = attempt([&] {
      socket s(AF_INET, SOCK_STREAM);
      s.settimeout(5);
      const double t = sim::now();
      try {
        s.connect({b.ip(), 7200});
      } catch (const error&) {
        waited = sim::now() - t;
        throw;
      }
    });
    sleep_until(20);
    second = attempt([&] {
      socket s = create_connection({"b", 7200}, 5.0);
      expect_echo(s, "through");
    });
  });
  w.run_for(10);
  EXPECT_TRUE(first.timed_out) << describe(first);
  EXPECT_NEAR(waited, 5.0, 0.01);
  EXPECT_GT(w.stats().partitioned, 0u);
  w.heal(a, b);
  w.run();
  EXPECT_TRUE(second.ok) << describe(second);
  for (const call_result& r : server.all()) EXPECT_TRUE(r.ok) << describe(r);
}

TEST(SimPartition, AOneWayPartitionInEitherDirectionStopsAConnectUntilHealed) {
  for (bool forward : {true, false}) {
    SCOPED_TRACE(forward ? "a->b cut" : "b->a cut");
    sim::world w(23);
    sim::host& a = w.add_host("a");
    sim::host& b = w.add_host("b");
    w.set_default_link(with_delay(0.005));
    if (forward) {
      w.partition_one_way(a, b);
    } else {
      w.partition_one_way(b, a);
    }
    endings server;
    call_result first, second;
    b.spawn([&] { echo_service(b, 7250, 1, server); });
    a.spawn([&] {
      first = attempt([&] { create_connection({b.ip(), 7250}, 3.0); });
      sleep_until(10);
      second = attempt([&] {
        socket s = create_connection({b.ip(), 7250}, 5.0);
        expect_echo(s, "one way");
      });
    });
    w.run_for(5);
    EXPECT_TRUE(first.timed_out) << describe(first);
    w.heal(a, b);
    w.run();
    EXPECT_TRUE(second.ok) << describe(second);
    EXPECT_GT(w.stats().partitioned, 0u);
  }
}

// ---- crashes ------------------------------------------------------------------------------------

namespace {

struct client_log {
  call_result hello, while_down, connect_while_down, old_after_restart, reconnect;
  uint16_t old_port = 0;  // the client's port of its first connection
};

constexpr double kCrashAt = 2.0, kRestartAt = 20.0;

// Connects and exchanges an echo; during the crash sends on that connection and tries a new one;
// after the restart reads the old connection again, then connects anew.
void crash_client(client_log& log) {
  std::optional<socket> old;
  log.hello = attempt([&] {
    old.emplace(create_connection({"server", 7300}, 5.0));
    log.old_port = old->getsockname().port;
    old->settimeout(5);
    expect_echo(*old, "hello");
  });
  if (!old) return;
  sleep_until(kCrashAt + 1);
  log.while_down = attempt([&] { expect_echo(*old, "ping"); });
  log.connect_while_down = attempt([&] { create_connection({"server", 7300}, 3.0); });
  sleep_until(kRestartAt + 5);
  log.old_after_restart = attempt([&] {
    old->settimeout(60);
    old->recv(64);
  });
  log.reconnect = attempt([&] {
    socket s = create_connection({"server", 7300}, 10.0);
    s.settimeout(10);
    expect_echo(s, "again");
  });
}

}  // namespace

TEST(SimCrash, ClientsTimeOutWhileTheServerIsDownThenSeeResetsAndReconnectAfterRestart) {
  temp_dir dir;
  const std::string pcap = dir.file("crash.pcap");
  endings first_life, second_life;
  client_log logs[2];
  double crashed_at = 0, restarted_at = 0;
  std::string server_ip, server_ip6;
  {
    sim::world w(31);
    w.capture(pcap);
    sim::host& server = w.add_host("server");
    sim::host* clients[] = {&w.add_host("c1"), &w.add_host("c2")};
    server_ip = server.ip();
    server_ip6 = server.ip6();
    w.set_default_link(with_delay(0.002));
    server.spawn([&] { echo_service(server, 7300, 0, first_life); });
    for (int i = 0; i < 2; ++i) clients[i]->spawn([&, i] { crash_client(logs[i]); });
    w.run_for(kCrashAt);
    EXPECT_FALSE(server.crashed());
    server.crash();
    crashed_at = w.now();
    EXPECT_TRUE(server.crashed());
    w.run_for(kRestartAt - w.now());
    server.restart();
    restarted_at = w.now();
    EXPECT_FALSE(server.crashed());
    server.spawn([&] { echo_service(server, 7300, 2, second_life); });
    w.run();
    EXPECT_GT(w.stats().unroutable, 0u) << "packets to the crashed host went nowhere";
  }

  for (const client_log& log : logs) {
    EXPECT_TRUE(log.hello.ok) << describe(log.hello);
    EXPECT_TRUE(log.while_down.timed_out) << describe(log.while_down);
    EXPECT_TRUE(log.connect_while_down.timed_out) << describe(log.connect_while_down);
    EXPECT_EQ(log.old_after_restart.err, ECONNRESET) << describe(log.old_after_restart);
    EXPECT_TRUE(log.reconnect.ok) << describe(log.reconnect);
  }
  const std::vector<call_result> before = first_life.all();
  EXPECT_EQ(before.size(), 3u) << "the listener and two handlers were blocked at the crash";
  for (const call_result& r : before) EXPECT_EQ(r.err, ENETDOWN) << describe(r);
  const std::vector<call_result> after = second_life.all();
  EXPECT_EQ(after.size(), 3u);
  for (const call_result& r : after) EXPECT_TRUE(r.ok) << describe(r);

  // The capture: nothing at all from the server while it was down; on the first connections, no
  // FIN from it after the crash, and the resets only from its restarted stack.
  size_t sent_before = 0, sent_while_down = 0, fins_after = 0, resets_after_restart = 0;
  for (const captured_packet& p : read_pcap(pcap).packets) {
    const auto s = summarize(p.bytes);
    ASSERT_TRUE(s) << "an IP packet";
    if (s->src != server_ip && s->src != server_ip6) continue;
    if (p.time <= crashed_at) {
      ++sent_before;
      continue;
    }
    if (p.time < restarted_at) ++sent_while_down;
    const bool old_connection =
        s->protocol == IPPROTO_TCP && s->src_port == 7300 &&
        (s->dst_port == logs[0].old_port || s->dst_port == logs[1].old_port);
    if (!old_connection) continue;
    if (s->tcp_flags & TH_FIN) ++fins_after;
    if ((s->tcp_flags & TH_RST) && p.time >= restarted_at) ++resets_after_restart;
  }
  EXPECT_GT(sent_before, 0u);
  EXPECT_EQ(sent_while_down, 0u) << "a crashed host sends nothing";
  EXPECT_EQ(fins_after, 0u) << "a crash closes nothing gracefully";
  EXPECT_GE(resets_after_restart, 2u) << "the restarted server resets both old connections";
}

TEST(SimCrash, ThreadsBlockedOnACrashedHostGetENETDOWNAndItsPeerOnlySilence) {
  sim::world w(32);
  sim::host& a = w.add_host("a");
  sim::host& b = w.add_host("b");
  w.set_default_link(with_delay(0.001));
  call_result udp_recv, udp_send_later, tcp_recv, tcp_send_later, accept_blocked, peer_recv;
  b.spawn([&] {
    socket l(AF_INET, SOCK_STREAM);
    l.bind({"", 7500});
    l.listen(1);
    socket c = l.accept().first;
    c.settimeout(10);
    peer_recv = attempt([&] { c.recv(16); });
  });
  a.spawn([&] {
    socket u(AF_INET, SOCK_DGRAM);
    u.bind({"", 7510});
    udp_recv = attempt([&] { u.recv(16); });
    udp_send_later = attempt([&] { u.sendto("late", {b.ip(), 9}); });
  });
  a.spawn([&] {
    socket c = create_connection({"b", 7500}, 5.0);
    c.settimeout(std::nullopt);
    tcp_recv = attempt([&] { c.recv(16); });
    tcp_send_later = attempt([&] { c.send("late"); });
  });
  a.spawn([&] {
    socket l(AF_INET, SOCK_STREAM);
    l.bind({"", 7520});
    l.listen(1);
    accept_blocked = attempt([&] { l.accept(); });
  });
  w.run_for(1.0);
  a.crash();
  w.run();
  for (const call_result* r :
       {&udp_recv, &udp_send_later, &tcp_recv, &tcp_send_later, &accept_blocked}) {
    EXPECT_EQ(r->err, ENETDOWN) << describe(*r);
  }
  EXPECT_TRUE(peer_recv.timed_out) << "no FIN, no RST from a crashed host: " << describe(peer_recv);

  // After a restart the host has a fresh stack: the crashed listener's port is free again.
  a.restart();
  call_result rebind;
  a.spawn([&] {
    rebind = attempt([&] {
      socket l(AF_INET, SOCK_STREAM);
      l.bind({"", 7520});
      l.listen(1);
    });
  });
  w.run();
  EXPECT_TRUE(rebind.ok) << describe(rebind);
}

// ---- how run() ends -----------------------------------------------------------------------------

TEST(SimRun, SpawnedCodeThatThrowsMakesRunThrowNamingTheHost) {
  call_result bob_blocked;
  {
    sim::world w(41);
    sim::host& alice = w.add_host("alice");
    sim::host& bob = w.add_host("bob");
    bob.spawn([&] {
      bob_blocked = attempt([] {
        socket u(AF_INET, SOCK_DGRAM);
        u.bind({"", 9999});
        u.recv(16);
      });
    });
    alice.spawn([] {
      sim::sleep(1);
      throw std::runtime_error("boom");
    });
    try {
      w.run();
      ADD_FAILURE() << "run() returned";
    } catch (const sim::spawn_error& e) {
      EXPECT_EQ(e.host(), "alice");
      const std::string what = e.what();
      EXPECT_NE(what.find("alice"), std::string::npos) << what;
      EXPECT_NE(what.find("boom"), std::string::npos) << what;
      std::string inner;
      try {
        std::rethrow_if_nested(e);
      } catch (const std::runtime_error& x) {
        inner = x.what();
      }
      EXPECT_EQ(inner, "boom") << "the original exception is nested";
    }
  }
  EXPECT_EQ(bob_blocked.err, ECANCELED) << describe(bob_blocked);
}

TEST(SimRun, AnAnysockErrorEscapingSpawnedCodeIsRethrownAsItselfNamingTheHost) {
  sim::world w(42);
  sim::host& alice = w.add_host("alice");
  sim::host& bob = w.add_host("bob");
  alice.spawn([&] {
    socket s(AF_INET, SOCK_STREAM);
    s.settimeout(5);
    s.connect({bob.ip(), 1});  // nobody listens there
  });
  try {
    w.run();
    ADD_FAILURE() << "run() returned";
  } catch (const sim::spawn_error& e) {
    ADD_FAILURE() << "an anysock::error keeps its type: " << e.what();
  } catch (const error& e) {
    EXPECT_EQ(e.code().value(), ECONNREFUSED) << e.what();
    EXPECT_NE(std::string(e.what()).find("alice"), std::string::npos) << e.what();
  }
}

TEST(SimRun, TwoHostsWaitingOnEachOtherWithoutDeadlinesMakeRunThrowDeadlockNamingBoth) {
  sim::world w(43);
  sim::host& north = w.add_host("north");
  sim::host& south = w.add_host("south");
  w.set_default_link(with_delay(0.003));
  south.spawn([] {
    socket l(AF_INET, SOCK_STREAM);
    l.bind({"", 7700});
    l.listen(1);
    socket c = l.accept().first;
    c.recv(16);  // north never sends
  });
  north.spawn([] {
    socket c = create_connection({"south", 7700});
    c.recv(16);  // south never sends
  });
  try {
    w.run();
    ADD_FAILURE() << "run() returned";
  } catch (const sim::deadlock& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("north"), std::string::npos) << what;
    EXPECT_NE(what.find("south"), std::string::npos) << what;
  }
  EXPECT_LT(w.now(), 5.0) << "found as soon as nothing can happen (lwIP's timers do not count)";
}

// ---- links --------------------------------------------------------------------------------------

TEST(SimLinks, OutOfRangeValuesThrowInvalidArgument) {
  sim::world w(51);
  sim::host& a = w.add_host("a");
  sim::host& b = w.add_host("b");
  struct change {
    const char* what;
    std::function<void(sim::link_config&)> apply;
  };
  const change bad[] = {
      {"loss -0.01", [](auto& c) { c.loss = -0.01; }},
      {"loss 1.01", [](auto& c) { c.loss = 1.01; }},
      {"delay -0.001", [](auto& c) { c.delay = -0.001; }},
      {"jitter -1", [](auto& c) { c.jitter = -1; }},
      {"reorder -0.5", [](auto& c) { c.reorder = -0.5; }},
      {"reorder 1.5", [](auto& c) { c.reorder = 1.5; }},
      {"duplicate 2", [](auto& c) { c.duplicate = 2; }},
      {"duplicate -1", [](auto& c) { c.duplicate = -1; }},
      {"corrupt 1.0001", [](auto& c) { c.corrupt = 1.0001; }},
      {"corrupt -0.2", [](auto& c) { c.corrupt = -0.2; }},
      {"mtu 0", [](auto& c) { c.mtu = 0; }},
      {"mtu 575", [](auto& c) { c.mtu = 575; }},
      {"mtu 65536", [](auto& c) { c.mtu = 65536; }},
  };
  for (const change& x : bad) {
    sim::link_config c;
    x.apply(c);
    EXPECT_THROW(w.set_default_link(c), std::invalid_argument) << x.what;
    EXPECT_THROW(w.set_link(a, b, c), std::invalid_argument) << x.what;
    EXPECT_THROW(w.set_link_one_way(a, b, c), std::invalid_argument) << x.what;
  }
  const change good[] = {
      {"loss 1", [](auto& c) { c.loss = 1; }},
      {"every probability 1", [](auto& c) { c.reorder = c.duplicate = c.corrupt = 1; }},
      {"mtu 576", [](auto& c) { c.mtu = 576; }},
      {"mtu 65535", [](auto& c) { c.mtu = 65535; }},
      {"an hour's delay", [](auto& c) { c.delay = 3600; }},
  };
  for (const change& x : good) {
    sim::link_config c;
    x.apply(c);
    EXPECT_NO_THROW(w.set_default_link(c)) << x.what;
    EXPECT_NO_THROW(w.set_link(a, b, c)) << x.what;
    EXPECT_NO_THROW(w.set_link_one_way(a, b, c)) << x.what;
  }
}

TEST(SimLinks, NotANumberIsNotAValidProbabilityOrTime) {
  sim::world w(52);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  sim::link_config loss, delay;
  loss.loss = nan;
  delay.delay = nan;
  EXPECT_THROW(w.set_default_link(loss), std::invalid_argument);
  EXPECT_THROW(w.set_default_link(delay), std::invalid_argument);
}

namespace {

// Round trips (virtual seconds) of `rounds` small UDP datagrams a -> b -> a, or of small TCP
// messages over one connection with TCP_NODELAY (after the handshake).
std::vector<double> round_trips(sim::world& w, sim::host& a, sim::host& b, int rounds, bool tcp) {
  std::vector<double> rtts;
  call_result client, server;
  b.spawn([&] {
    server = attempt([&] {
      if (tcp) {
        socket l(AF_INET, SOCK_STREAM);
        l.bind({"", 7800});
        l.listen(1);
        socket c = l.accept().first;
        c.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
        c.settimeout(10);
        for (int i = 0; i < rounds; ++i) c.sendall(c.recv(64));
      } else {
        socket u(AF_INET, SOCK_DGRAM);
        u.bind({"", 7800});
        u.settimeout(10);
        for (int i = 0; i < rounds; ++i) {
          auto [m, from] = u.recvfrom(64);
          u.sendto(m, from);
        }
      }
    });
  });
  a.spawn([&] {
    client = attempt([&] {
      socket s = tcp ? create_connection({b.ip(), 7800}, 10.0) : socket(AF_INET, SOCK_DGRAM);
      if (tcp) s.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
      s.settimeout(10);
      for (int i = 0; i < rounds; ++i) {
        const double t = sim::now();
        if (tcp) {
          s.sendall("x");
        } else {
          s.sendto("x", {b.ip(), 7800});
        }
        s.recv(64);
        rtts.push_back(sim::now() - t);
      }
    });
  });
  w.run();
  EXPECT_TRUE(client.ok) << describe(client);
  EXPECT_TRUE(server.ok) << describe(server);
  return rtts;
}

}  // namespace

TEST(SimLinks, ARoundTripOnATenMillisecondLinkTakesTwentyMilliseconds) {
  for (bool tcp : {false, true}) {
    SCOPED_TRACE(tcp ? "TCP" : "UDP");
    sim::world w(53);
    sim::host& a = w.add_host("a");
    sim::host& b = w.add_host("b");
    w.set_default_link(with_delay(0.010));
    const std::vector<double> rtts = round_trips(w, a, b, 5, tcp);
    ASSERT_EQ(rtts.size(), 5u);
    for (double rtt : rtts) {
      EXPECT_GE(rtt, 0.020 - 1e-6);
      EXPECT_NEAR(rtt, 0.020, 0.0005);
    }
  }
}

TEST(SimLinks, OneWayDelaysAddUpInARoundTrip) {
  sim::world w(54);
  sim::host& a = w.add_host("a");
  sim::host& b = w.add_host("b");
  w.set_link_one_way(a, b, with_delay(0.010));
  w.set_link_one_way(b, a, with_delay(0.030));
  for (double rtt : round_trips(w, a, b, 3, false)) EXPECT_NEAR(rtt, 0.040, 0.0005);
}

TEST(SimLinks, JitterVariesTheDelayWithinItsBounds) {
  sim::world w(55);
  sim::host& a = w.add_host("a");
  sim::host& b = w.add_host("b");
  sim::link_config c = with_delay(0.010);
  c.jitter = 0.004;
  w.set_default_link(c);
  const std::vector<double> rtts = round_trips(w, a, b, 20, false);
  ASSERT_EQ(rtts.size(), 20u);
  for (double rtt : rtts) {
    EXPECT_GE(rtt, 0.012 - 1e-6);
    EXPECT_LE(rtt, 0.028 + 1e-6);
  }
  EXPECT_GT(std::set<double>(rtts.begin(), rtts.end()).size(), 5u) << "the delay varies";
}

namespace {

// Datagram `index` of a burst: "<index> ", then `size` bytes in all of padding that varies in
// every bit (so that two flipped bits can cancel out in a checksum).
std::string burst_datagram(int index, size_t size) {
  std::string m = std::to_string(index) + ' ';
  for (size_t k = m.size(); k < size; ++k) {
    m.push_back(static_cast<char>((k * 167 + static_cast<size_t>(index) * 13) & 0xff));
  }
  m.resize(size);
  return m;
}

// Sends `count` UDP datagrams of `size` bytes (burst_datagram) from a to b at once, and returns
// the indexes of those b received, in arrival order (b stops after `quiet` virtual seconds
// without one). Each received datagram must be intact.
std::vector<int> udp_burst(sim::world& w, sim::host& a, sim::host& b, int count, size_t size = 32,
                           double quiet = 5) {
  std::vector<int> got;
  call_result sender;
  bool intact = true;
  b.spawn([&] {
    socket u(AF_INET, SOCK_DGRAM);
    u.bind({"", 7900});
    u.settimeout(quiet);
    try {
      for (;;) {
        const std::string m = u.recv(65536);
        const int index = std::atoi(m.c_str());
        if (m != burst_datagram(index, size)) intact = false;
        got.push_back(index);
      }
    } catch (const timeout&) {
    }
  });
  a.spawn([&] {
    sender = attempt([&] {
      socket u(AF_INET, SOCK_DGRAM);
      for (int i = 0; i < count; ++i) u.sendto(burst_datagram(i, size), {b.ip(), 7900});
    });
  });
  w.run();
  EXPECT_TRUE(sender.ok) << describe(sender);
  EXPECT_TRUE(intact) << "a datagram arrived altered";
  return got;
}

// A duplicated SYN must not undo the listener's MSS cap (lwIP 2.1.3 parses a second copy of the
// SYN again in SYN_RCVD and took the peer's MSS): a's MTU is 752 (its link to c), the a<->b link
// duplicates every packet, and a's data to b must still leave in segments that fit, unfragmented.
TEST(SimLinks, ADuplicatedSynDoesNotMakeTheListenerSendSegmentsLargerThanItsMtu) {
  for (int family : {AF_INET, AF_INET6}) {
    SCOPED_TRACE(family == AF_INET ? "IPv4" : "IPv6");
    temp_dir dir;
    const std::string pcap = dir.file("mss.pcap");
    size_t received = 0;
    {
      sim::world w(1);
      w.capture(pcap);
      sim::host& a = w.add_host("a");
      sim::host& b = w.add_host("b");
      sim::host& c = w.add_host("c");
      sim::link_config dup, small;
      dup.delay = small.delay = 0.005;
      dup.duplicate = 1;
      small.mtu = 752;
      w.set_link(a, b, dup);
      w.set_link(a, c, small);
      a.spawn([&] {
        socket l(family, SOCK_STREAM);
        l.bind({family == AF_INET ? "" : "::", 80});
        l.listen(1);
        l.accept().first.sendall(std::string(64 << 10, 'x'));
      });
      b.spawn([&] {
        socket s = create_connection({family == AF_INET ? a.ip() : a.ip6(), 80});
        for (std::string got; !(got = s.recv(65536)).empty();) received += got.size();
      });
      w.run();
    }
    EXPECT_EQ(received, size_t{64} << 10);
    size_t data_segments = 0;
    for (const captured_packet& p : read_pcap(pcap).packets) {
      const auto* bytes = reinterpret_cast<const uint8_t*>(p.bytes.data());
      ASSERT_GE(p.bytes.size(), 40u);
      if ((bytes[0] >> 4) == 4) {
        const unsigned frag = (bytes[6] << 8 | bytes[7]) & 0x3fff;  // MF flag and offset
        EXPECT_EQ(frag, 0u) << "an IPv4 fragment at " << p.time;
      } else {
        EXPECT_NE(bytes[6], 44) << "an IPv6 fragment at " << p.time;  // Fragment header
      }
      EXPECT_LE(p.bytes.size(), 752u) << "a packet larger than a's MTU at " << p.time;
      auto sum = summarize(p.bytes);
      if (sum && sum->protocol == IPPROTO_TCP && sum->payload > 0) ++data_segments;
    }
    EXPECT_GT(data_segments, 90u);  // 64 KiB in segments of at most 692 (712 over IPv6) bytes
  }
}

// lwIP draws its ephemeral-port counter at random when it starts; with seed 24069 the draw used to
// land on the range's last port, from which lwIP 2.1.3 wrapped to 0 and every bind to port 0 failed
// with ENOBUFS (a CI flake: 1 in 16384 engines).
TEST(SimHosts, EveryWorldCanBindAnEphemeralPortEvenWhenLwipsCounterStartsAtTheEnd) {
  for (uint64_t seed : {uint64_t{24069}, uint64_t{1}, uint64_t{2}}) {
    sim::world w(seed);
    sim::host& h = w.add_host("h");
    int port = -1;
    h.spawn([&] {
      socket s(AF_INET, SOCK_STREAM);
      s.bind({"", 0});
      port = s.getsockname().port;
    });
    w.run();
    EXPECT_GE(port, 0xc000) << "seed " << seed;
    EXPECT_LT(port, 0xffff) << "seed " << seed;
  }
}

}  // namespace

TEST(SimLinks, LossOneDropsEveryPacket) {
  sim::world w(56);
  sim::host& a = w.add_host("a");
  sim::host& b = w.add_host("b");
  sim::link_config c;
  c.loss = 1;
  w.set_default_link(c);
  EXPECT_TRUE(udp_burst(w, a, b, 10).empty());
  EXPECT_GE(w.stats().lost, 10u);
  EXPECT_EQ(w.stats().delivered, 0u);
}

TEST(SimLinks, DuplicateOneDeliversEveryDatagramTwice) {
  sim::world w(57);
  sim::host& a = w.add_host("a");
  sim::host& b = w.add_host("b");
  sim::link_config c;
  c.duplicate = 1;
  w.set_default_link(c);
  std::vector<int> got = udp_burst(w, a, b, 10);
  std::sort(got.begin(), got.end());
  std::vector<int> twice;
  for (int i = 0; i < 10; ++i) twice.insert(twice.end(), {i, i});
  EXPECT_EQ(got, twice);
  EXPECT_GE(w.stats().duplicated, 10u);
}

TEST(SimLinks, CorruptOneDamagesEveryPacketAndChecksumsCatchIt) {
  sim::world w(58);
  sim::host& a = w.add_host("a");
  sim::host& b = w.add_host("b");
  sim::link_config c;
  c.corrupt = 1;
  w.set_default_link(c);
  EXPECT_TRUE(udp_burst(w, a, b, 20).empty()) << "no damaged datagram reaches the application";
  EXPECT_GE(w.stats().corrupted, 20u);
}

// A datagram larger than the MTU leaves in fragments; a flipped bit in each of two fragments
// could cancel out in the reassembled datagram's checksum, so each datagram gets one at most.
TEST(SimLinks, CorruptOneDamagesAFragmentedDatagramOnceAndChecksumsCatchIt) {
  sim::world w(59);
  sim::host& a = w.add_host("a");
  sim::host& b = w.add_host("b");
  sim::link_config c;
  c.corrupt = 1;
  w.set_default_link(c);
  EXPECT_TRUE(udp_burst(w, a, b, 400, 2000).empty())
      << "no damaged datagram reaches the application";
  EXPECT_GE(w.stats().corrupted, 400u);
}

TEST(SimLinks, ReorderingLetsLaterDatagramsOvertakeButLosesNone) {
  sim::world w(59);
  sim::host& a = w.add_host("a");
  sim::host& b = w.add_host("b");
  sim::link_config c = with_delay(0.001);
  c.reorder = 0.3;
  w.set_default_link(c);
  const std::vector<int> got = udp_burst(w, a, b, 50);
  std::vector<int> sorted = got;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int> all(50);
  for (int i = 0; i < 50; ++i) all[i] = i;
  EXPECT_EQ(sorted, all) << "every datagram arrives once";
  EXPECT_NE(got, all) << "some arrive out of order";
  EXPECT_GT(w.stats().reordered, 0u);
}

TEST(SimLinks, AFullQueueBeforeARateLimitDropsTheTail) {
  sim::world w(60);
  sim::host& a = w.add_host("a");
  sim::host& b = w.add_host("b");
  sim::link_config c;
  c.rate_bps = 1'000'000;
  c.queue_limit = 4;
  w.set_default_link(c);
  const std::vector<int> got = udp_burst(w, a, b, 50, 1000);
  EXPECT_GE(got.size(), 4u) << "a queue's worth gets through";
  EXPECT_LE(got.size(), 8u);
  EXPECT_GT(w.stats().queue_drops, 0u);
  EXPECT_TRUE(std::is_sorted(got.begin(), got.end())) << "a queue keeps its order";
}

TEST(SimLinks, ARateLimitSpacesPacketsByTheirSerialisationTime) {
  sim::world w(61);
  sim::host& a = w.add_host("a");
  sim::host& b = w.add_host("b");
  sim::link_config c;
  c.rate_bps = 1'000'000;
  w.set_default_link(c);
  // 100 datagrams of 1250 bytes: 1,000,000 bits of payload alone, so at least a second.
  double last = 0;
  b.spawn([&] {
    socket u(AF_INET, SOCK_DGRAM);
    u.bind({"", 7950});
    u.settimeout(10);
    for (int i = 0; i < 100; ++i) u.recv(2048);
    last = sim::now();
  });
  a.spawn([&] {
    socket u(AF_INET, SOCK_DGRAM);
    for (int i = 0; i < 100; ++i) u.sendto(std::string(1250, 'r'), {b.ip(), 7950});
  });
  w.run();
  EXPECT_GE(last, 1.0);
  EXPECT_LE(last, 1.2);
}

TEST(SimLinks, TcpSegmentsFitASmallMtuAndNothingIsDroppedForSize) {
  temp_dir dir;
  sim::world w(62);
  w.capture(dir.file("mtu.pcap"));
  w.add_host("a");
  sim::host& b = w.add_host("b");
  sim::link_config c = with_delay(0.002);
  c.mtu = 576;
  w.set_default_link(c);
  const traffic_report r = run_traffic(w, {{.id = 1,
                                            .kind = stream_kind::upload,
                                            .client = "a",
                                            .server = "b",
                                            .dial = b.ip(),
                                            .bytes = 100'000,
                                            .deadline = 60},
                                           {.id = 2,
                                            .kind = stream_kind::download,
                                            .client = "a",
                                            .server = "b",
                                            .dial = b.ip6(),
                                            .bytes = 100'000,
                                            .deadline = 60}});
  EXPECT_EQ(r.count(outcome::completed), 2u) << r.digest();
  EXPECT_EQ(w.stats().too_big, 0u);
  size_t largest = 0;
  for (const captured_packet& p : read_pcap(dir.file("mtu.pcap")).packets) {
    largest = std::max(largest, p.bytes.size());
  }
  EXPECT_LE(largest, 576u);
  EXPECT_GT(largest, 500u) << "segments fill the MTU";
}

// ---- sockets made outside spawned code ----------------------------------------------------------

TEST(SimHosts, ASocketMadeOnAHostsStackOutsideSpawnedCodeTakesPartInTheWorld) {
  sim::world w(63);
  sim::host& a = w.add_host("a");
  sim::host& b = w.add_host("b");
  w.set_default_link(with_delay(0.001));
  socket u(a.stack(), AF_INET, SOCK_DGRAM);
  u.bind({"", 8000});
  u.settimeout(0.0);
  b.spawn([&] {
    socket s(AF_INET, SOCK_DGRAM);
    s.sendto("hello", {a.ip(), 8000});
  });
  w.run();
  w.run_for(0.1);  // the datagram is in flight for 1 ms
  EXPECT_EQ(u.recv(16), "hello");
}

}  // namespace anysock::sim_testing
