// Determinism and virtual time. One seed and one program give the same packets at the same virtual
// times: two runs' captures are byte-identical, also when the world comes after ninety-nine others
// in the same process, and another seed gives another trace. Time is virtual: a 30 s timeout on a
// silent socket expires at once, 30 virtual seconds later.
#include <time.h>

#include <chrono>
#include <iostream>

#include "sim_support.hpp"

namespace anysock::sim_testing {
namespace {

// Every fault on at once, mild enough that every stream completes well within its deadline.
sim::link_config faulty_link() {
  sim::link_config c;
  c.loss = 0.03;
  c.delay = 0.004;
  c.jitter = 0.002;
  c.reorder = 0.05;
  c.duplicate = 0.03;
  c.corrupt = 0.02;
  c.rate_bps = 50'000'000;
  return c;
}

struct scenario_run {
  std::string pcap;  // the capture's bytes
  traffic_report report;
  sim::stats stats;
  double end = 0;  // virtual time when run() returned
};

// Three hosts, faults on: client1 uploads to the server and downloads from it, client2 runs
// request/response sessions with the server (over IPv6) and with client1 (by name), all at once.
scenario_run three_host_scenario(uint64_t seed, const std::string& path) {
  sim::world w(seed);
  w.capture(path);
  sim::host& server = w.add_host("server");
  sim::host& client1 = w.add_host("client1");
  w.add_host("client2");
  w.set_default_link(faulty_link());
  const std::vector<stream_plan> plan = {
      {.id = 1,
       .kind = stream_kind::upload,
       .client = "client1",
       .server = "server",
       .dial = "server",
       .bytes = 256 * 1024,
       .start = 0.0,
       .deadline = 120},
      {.id = 2,
       .kind = stream_kind::download,
       .client = "client1",
       .server = "server",
       .dial = server.ip(),
       .bytes = 128 * 1024,
       .start = 0.01,
       .deadline = 120},
      {.id = 3,
       .kind = stream_kind::exchanges,
       .client = "client2",
       .server = "server",
       .dial = server.ip6(),
       .exchanges = 20,
       .start = 0.0,
       .deadline = 120},
      {.id = 4,
       .kind = stream_kind::exchanges,
       .client = "client2",
       .server = "client1",
       .dial = "client1",
       .exchanges = 10,
       .start = 0.5,
       .deadline = 120},
      {.id = 5,
       .kind = stream_kind::upload,
       .client = "server",
       .server = "client1",
       .dial = client1.ip(),
       .bytes = 64 * 1024,
       .start = 0.2,
       .deadline = 120},
  };
  scenario_run r;
  r.report = run_traffic(w, plan);
  r.stats = w.stats();
  r.end = w.now();
  r.pcap = read_file(path);
  return r;
}

// A small world: two hosts, one short request/response session under faults.
void cheap_world(uint64_t seed) {
  sim::world w(seed);
  w.add_host("a");
  w.add_host("b");
  w.set_default_link(faulty_link());
  const traffic_report r = run_traffic(w, {{.id = seed,
                                            .kind = stream_kind::exchanges,
                                            .client = "a",
                                            .server = "b",
                                            .dial = "b",
                                            .exchanges = 3,
                                            .deadline = 60}});
  EXPECT_EQ(r.count(outcome::wrong_bytes) + r.count(outcome::bad_end), 0u) << "seed " << seed;
}

// "" when equal, else where the two captures first differ.
std::string difference(const std::string& a, const std::string& b) {
  if (a == b) return "";
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  return "sizes " + std::to_string(a.size()) + " and " + std::to_string(b.size()) +
         ", first difference at byte " + std::to_string(i);
}

void expect_every_stream_completed(const scenario_run& r) {
  EXPECT_EQ(r.report.count(outcome::completed), r.report.streams.size()) << r.report.digest();
  EXPECT_TRUE(r.report.server_problems.empty()) << r.report.digest();
}

}  // namespace

TEST(SimDeterminism, OneSeedGivesByteIdenticalCapturesAndAnotherSeedADifferentOne) {
  temp_dir dir;
  const scenario_run first = three_host_scenario(42, dir.file("first.pcap"));
  const scenario_run second = three_host_scenario(42, dir.file("second.pcap"));
  const scenario_run other = three_host_scenario(43, dir.file("other.pcap"));

  expect_every_stream_completed(first);
  expect_every_stream_completed(other);
  const capture_file cap = read_pcap(dir.file("first.pcap"));
  EXPECT_EQ(cap.packets.size(), first.stats.delivered);
  EXPECT_GT(first.stats.lost, 0u);
  EXPECT_GT(first.stats.duplicated, 0u);
  EXPECT_GT(first.stats.corrupted, 0u);
  EXPECT_GT(first.stats.reordered, 0u);

  EXPECT_EQ(difference(first.pcap, second.pcap), "") << "the same seed must replay byte for byte";
  EXPECT_EQ(first.report.digest(), second.report.digest());
  EXPECT_EQ(first.end, second.end);
  EXPECT_EQ(first.stats.sent, second.stats.sent);
  EXPECT_EQ(first.stats.lost, second.stats.lost);
  EXPECT_NE(first.pcap, other.pcap) << "another seed must give another trace under faults";
}

TEST(SimDeterminism, AWorldAfterNinetyNineOthersInTheProcessReplaysTheFirstByteForByte) {
  temp_dir dir;
  const scenario_run first = three_host_scenario(7, dir.file("first.pcap"));
  expect_every_stream_completed(first);
  for (uint64_t seed = 1000; seed < 1099; ++seed) cheap_world(seed);
  const scenario_run again = three_host_scenario(7, dir.file("again.pcap"));
  EXPECT_EQ(difference(first.pcap, again.pcap), "")
      << "lwIP state left by earlier worlds changed the trace";
  EXPECT_EQ(first.report.digest(), again.report.digest());
  EXPECT_EQ(first.end, again.end);
}

TEST(SimDeterminism, HostsGetTheSameAddressesInEveryWorldAndFindEachOtherByName) {
  std::vector<std::string> seen[2];
  for (uint64_t seed : {1, 2}) {
    sim::world w(seed);
    std::vector<sim::host*> hosts;
    for (const char* name : {"alpha", "beta", "gamma"}) hosts.push_back(&w.add_host(name));
    EXPECT_EQ(w.hosts(), hosts);
    EXPECT_EQ(&w.get("beta"), hosts[1]);
    EXPECT_THROW(w.get("delta"), std::out_of_range);
    EXPECT_THROW(w.add_host("beta"), std::invalid_argument);
    std::vector<std::string>& s = seen[seed - 1];
    for (sim::host* h : hosts) {
      s.push_back(h->ip());
      s.push_back(h->ip6());
    }
    // What alpha's code resolves for each name, and alpha's own name.
    std::vector<std::string> resolved;
    std::string own_name;
    hosts[0]->spawn([&] {
      own_name = gethostname();
      for (const char* name : {"alpha", "beta", "gamma"}) {
        for (int family : {AF_INET, AF_INET6}) {
          const auto ai = getaddrinfo(std::string(name), 80, family, SOCK_STREAM);
          resolved.push_back(ai.empty() ? "" : ai.front().addr.host);
        }
      }
    });
    w.run();
    EXPECT_EQ(own_name, "alpha");
    EXPECT_EQ(resolved, s) << "names resolve to the hosts' addresses inside the world";
  }
  EXPECT_EQ(seen[0], seen[1]);
  for (size_t i = 0; i < seen[0].size(); ++i) {
    for (size_t j = i + 1; j < seen[0].size(); ++j) EXPECT_NE(seen[0][i], seen[0][j]);
    const int family = i % 2 == 0 ? AF_INET : AF_INET6;
    EXPECT_NO_THROW(inet_pton(family, seen[0][i])) << seen[0][i];
  }
}

TEST(SimVirtualTime, ASilentSocketsThirtySecondTimeoutExpiresThirtyVirtualSecondsLater) {
  const auto wall_start = std::chrono::steady_clock::now();
  sim::world w(1);
  sim::host& a = w.add_host("a");
  sim::host& b = w.add_host("b");
  double udp_waited = -1, tcp_waited = -1;
  bool udp_timed_out = false, tcp_timed_out = false;
  // b listens and accepts but never sends; a waits on a UDP socket and on the TCP connection.
  b.spawn([&] {
    socket l(AF_INET, SOCK_STREAM);
    l.bind({"", 9000});
    l.listen(1);
    auto [c, peer] = l.accept();
    sim::sleep(100);  // keeps the connection open and silent
  });
  a.spawn([&] {
    socket u(AF_INET, SOCK_DGRAM);
    u.bind({"", 0});
    u.settimeout(30);
    double t = sim::now();
    try {
      u.recv(100);
    } catch (const timeout&) {
      udp_timed_out = true;
    }
    udp_waited = sim::now() - t;
    socket c = create_connection({"b", 9000}, 5.0);
    c.settimeout(30);
    t = sim::now();
    try {
      c.recv(100);
    } catch (const timeout&) {
      tcp_timed_out = true;
    }
    tcp_waited = sim::now() - t;
  });
  w.run();
  const std::chrono::duration<double> wall = std::chrono::steady_clock::now() - wall_start;
  std::cout << "[ info     ] 30 + 30 virtual seconds of timeouts (and 100 s of sleep) took "
            << wall.count() << " s of wall time\n";
  EXPECT_TRUE(udp_timed_out);
  EXPECT_TRUE(tcp_timed_out);
  EXPECT_NEAR(udp_waited, 30.0, 0.01);
  EXPECT_NEAR(tcp_waited, 30.0, 0.01);
  EXPECT_GE(w.now(), 100.0);
}

TEST(SimVirtualTime, SleepAndRunForMoveTheClockByExactlyWhatTheyAreGiven) {
  sim::world w(3);
  sim::host& a = w.add_host("a");
  std::vector<double> times;
  a.spawn([&] {
    times.push_back(sim::now());
    sim::sleep(2.5);
    times.push_back(sim::now());
    sim::sleep(7.5);
    times.push_back(sim::now());
  });
  w.run_for(5.0);
  EXPECT_NEAR(w.now(), 5.0, 1e-3);
  EXPECT_EQ(times.size(), 2u) << "the thread is still asleep after run_for(5)";
  w.run();
  ASSERT_EQ(times.size(), 3u);
  EXPECT_NEAR(times[1] - times[0], 2.5, 1e-3);
  EXPECT_NEAR(times[2] - times[0], 10.0, 1e-3);
  EXPECT_NEAR(w.now(), times[2], 1e-3);
}

TEST(SimVirtualTime, OutsideAWorldNowAndSleepUseTheMonotonicClock) {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  const double mono = double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
  const double t0 = sim::now();
  EXPECT_NEAR(t0, mono, 1.0);
  sim::sleep(0.02);
  EXPECT_GE(sim::now() - t0, 0.02);
}

}  // namespace anysock::sim_testing
