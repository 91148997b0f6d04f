// The swarm: many seeds, each drawing its own world — 3 to 6 hosts, random link faults (loss up to
// 20%, reordering, duplication, corruption, jitter, MTUs from 576 to 1500, rate limits, queue
// limits; under heavy faults sometimes a link's MTU shrinking mid-run or a partition healed later),
// and a random mix of bulk uploads and downloads (1 KiB to 1 MiB) and request/response sessions
// between the hosts, each stream with a deadline in virtual time. Every byte that arrives is
// checked against its generator, at both ends.
//
// Asserted per seed: no stream delivers a wrong byte or ends early; on fault-free links every
// stream completes and nothing is dropped; the link counters add up. Over the swarm: with loss <=
// 5% at least 95% of the streams complete within their deadline (the rest end in a clean
// anysock::error/timeout), and every kind of fault (loss, duplication, corruption, reordering,
// queue drops) actually happened. A failing seed, or one the process dies in, prints the command
// that replays it.
//
//   sim_swarm_test [--seeds N] [--first-seed S]    N seeds from S (default 200 from 1); env
//                                                   ANYSOCK_SWARM_SEEDS, ANYSOCK_SWARM_FIRST_SEED
//   sim_swarm_test --seed S [--capture FILE]        seed S alone, verbosely, optionally with its
//                                                   pcap; env ANYSOCK_SWARM_SEED
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <optional>
#include <random>
#include <sstream>

#include "sim_support.hpp"

// A sanitizer that stops the process reports through its death callback, not a signal.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ANYSOCK_SWARM_SANITIZED 1
#include <sanitizer/common_interface_defs.h>
#endif

namespace anysock::sim_testing {
namespace {

struct swarm_options {
  uint64_t first = 1;
  uint64_t count = 200;
  std::optional<uint64_t> only;  // one seed, verbosely
  std::string capture;           // with `only`: where its world writes a pcap ("" = nowhere)
};
swarm_options g_options;

enum class profile { fault_free, low_loss, high_loss };
const char* to_string(profile p) {
  return p == profile::fault_free ? "fault-free"
         : p == profile::low_loss ? "loss<=5%"
                                  : "loss<=20%";
}

// The random choices of one seed, drawn from a generator of its own.
class dice {
 public:
  explicit dice(uint64_t seed) : rng_(mix64(seed ^ 0x5377a12d)) {}
  double unit() { return double(rng_() >> 11) * 0x1.0p-53; }
  bool chance(double p) { return unit() < p; }
  uint64_t below(uint64_t n) { return rng_() % n; }

 private:
  std::mt19937_64 rng_;
};

std::string describe(const sim::link_config& c) {
  std::ostringstream o;
  o << "loss=" << c.loss << " delay=" << c.delay << " jitter=" << c.jitter
    << " reorder=" << c.reorder << " dup=" << c.duplicate << " corrupt=" << c.corrupt
    << " rate=" << c.rate_bps << " mtu=" << c.mtu << " queue=" << c.queue_limit;
  return o.str();
}

sim::link_config draw_link(dice& d, profile p) {
  sim::link_config c;
  const size_t mtu = d.chance(0.5) ? 576 + d.below(1500 - 576 + 1) : 1500;
  c.delay = d.unit() * 0.02;
  c.jitter = d.chance(0.5) ? d.unit() * c.delay : 0;
  c.mtu = mtu;
  if (d.chance(0.4)) {
    static constexpr double kRates[] = {1e6, 1e7, 1e8, 1e9};
    c.rate_bps = static_cast<uint64_t>(kRates[d.below(4)] * (0.5 + d.unit()));
  }
  if (p == profile::fault_free) return c;
  c.loss = d.unit() * (p == profile::low_loss ? 0.05 : 0.2);
  c.reorder = d.chance(0.5) ? d.unit() * 0.2 : 0;
  c.duplicate = d.chance(0.5) ? d.unit() * 0.1 : 0;
  c.corrupt = d.chance(0.5) ? d.unit() * 0.05 : 0;
  if (c.rate_bps != 0 && d.chance(0.5)) c.queue_limit = 2 + d.below(40);
  return c;
}

// One seed's world: what it drew and what happened.
struct seed_run {
  uint64_t seed = 0;
  profile kind = profile::fault_free;
  std::vector<std::string> links;  // descriptions, for messages
  std::vector<stream_plan> plan;
  traffic_report report;
  sim::stats stats;
  double end = 0;
};

seed_run run_seed(uint64_t seed, bool verbose) {
  seed_run r;
  r.seed = seed;
  dice d(seed);
  const double k = d.unit();
  r.kind = k < 0.2 ? profile::fault_free : k < 0.6 ? profile::low_loss : profile::high_loss;

  sim::world w(seed);
  if (verbose && !g_options.capture.empty()) w.capture(g_options.capture);
  const size_t n = 3 + d.below(4);
  std::vector<sim::host*> hosts;
  for (size_t i = 0; i < n; ++i) {
    std::string name = "h";  // (not "h" + ...: gcc 12's -Wrestrict misfires on that at -O3)
    name += std::to_string(i + 1);
    hosts.push_back(&w.add_host(name));
  }
  const sim::link_config def = draw_link(d, r.kind);
  w.set_default_link(def);
  r.links.push_back("default: " + describe(def));
  for (uint64_t i = 0, extra = d.below(3); i < extra; ++i) {
    const size_t ia = d.below(n);
    const size_t ib = (ia + 1 + d.below(n - 1)) % n;
    sim::host& a = *hosts[ia];
    sim::host& b = *hosts[ib];
    const sim::link_config c = draw_link(d, r.kind);
    if (d.chance(0.5)) {
      w.set_link(a, b, c);
      r.links.push_back(a.name() + "<->" + b.name() + ": " + describe(c));
    } else {
      w.set_link_one_way(a, b, c);
      r.links.push_back(a.name() + "->" + b.name() + ": " + describe(c));
    }
  }

  uint64_t id = seed << 16;
  for (size_t c = 0; c < n; ++c) {
    for (uint64_t s = 0, count = 1 + d.below(3); s < count; ++s) {
      stream_plan p;
      p.id = ++id;
      p.kind = static_cast<stream_kind>(d.below(3));
      p.client = hosts[c]->name();
      sim::host& server = *hosts[(c + 1 + d.below(n - 1)) % n];
      p.server = server.name();
      const uint64_t how = d.below(3);
      p.dial = how == 0 ? server.name() : how == 1 ? server.ip() : server.ip6();
      p.bytes = static_cast<uint64_t>(1024.0 * std::exp2(d.unit() * 10));  // 1 KiB .. 1 MiB
      p.exchanges = 1 + static_cast<int>(d.below(8));
      p.start = d.unit() * 2;
      p.deadline = 120;
      r.plan.push_back(p);
    }
  }
  // Under heavy faults, sometimes more: a link's MTU shrinks under the streams (segments already
  // cut for the old one are dropped as too big), or two hosts are partitioned for a while.
  std::vector<world_event> events;
  if (r.kind == profile::high_loss && d.chance(0.3)) {
    const size_t ia = d.below(n), ib = (ia + 1 + d.below(n - 1)) % n;
    sim::link_config c = draw_link(d, r.kind);
    c.mtu = 576;
    const double at = 0.05 + d.unit() * 2;
    events.push_back(
        {at, [&a = *hosts[ia], &b = *hosts[ib], c](sim::world& x) { x.set_link(a, b, c); }});
    r.links.push_back(hosts[ia]->name() + "<->" + hosts[ib]->name() + " from " +
                      std::to_string(at) + " s: " + describe(c));
  }
  if (r.kind == profile::high_loss && d.chance(0.3)) {
    const size_t ia = d.below(n), ib = (ia + 1 + d.below(n - 1)) % n;
    sim::host& a = *hosts[ia];
    sim::host& b = *hosts[ib];
    const double from = d.unit() * 3, to = from + 0.5 + d.unit() * 8;
    events.push_back({from, [&a, &b](sim::world& x) { x.partition(a, b); }});
    events.push_back({to, [&a, &b](sim::world& x) { x.heal(a, b); }});
    r.links.push_back(a.name() + "<->" + b.name() + " partitioned from " + std::to_string(from) +
                      " s to " + std::to_string(to) + " s");
  }
  if (verbose) {  // before the run, so that a crash still shows what the seed set up
    std::cout << "seed " << seed << " (" << to_string(r.kind) << ")\n";
    for (const std::string& l : r.links) std::cout << "  link " << l << '\n';
    std::cout << std::flush;
  }
  r.report = run_traffic(w, r.plan, 7000, events);
  r.stats = w.stats();
  r.end = w.now();
  return r;
}

// The command that replays `seed` alone; worlds do not depend on the ones before them, but if
// that ever breaks, the second command replays the swarm up to this seed.
std::string replay_command(uint64_t seed) {
  std::string c = "ANYSOCK_SWARM_SEED=" + std::to_string(seed) + " " + self_path() +
                  " --gtest_filter='SimSwarm.*'";
  if (!g_options.only && seed > g_options.first) {
    c += "\n  (with the seeds before it: " + self_path() + " --first-seed " +
         std::to_string(g_options.first) + " --seeds " +
         std::to_string(seed - g_options.first + 1) + ")";
  }
  return c;
}

std::string describe(const seed_run& r) {
  std::ostringstream o;
  o << "seed " << r.seed << " (" << to_string(r.kind) << ", " << r.links.size()
    << " link settings, " << r.plan.size() << " streams, ended at " << r.end << " s)\n";
  for (const std::string& l : r.links) o << "  link " << l << '\n';
  for (size_t i = 0; i < r.plan.size(); ++i) {
    const stream_plan& p = r.plan[i];
    static const char* kKinds[] = {"upload", "download", "exchanges"};
    o << "  stream " << i << ": " << kKinds[int(p.kind)] << ' ' << p.client << " -> " << p.server
      << " (" << p.dial << ") bytes=" << p.bytes << " rounds=" << p.exchanges
      << " start=" << p.start << ": " << to_string(r.report.streams[i].result) << " at "
      << r.report.streams[i].finished << ' ' << r.report.streams[i].detail << '\n';
  }
  for (const std::string& p : r.report.server_problems) o << "  server problem: " << p << '\n';
  const sim::stats& s = r.stats;
  o << "  stats: sent=" << s.sent << " delivered=" << s.delivered << " lost=" << s.lost
    << " duplicated=" << s.duplicated << " corrupted=" << s.corrupted
    << " reordered=" << s.reordered << " too_big=" << s.too_big << " queue_drops=" << s.queue_drops
    << " partitioned=" << s.partitioned << " unroutable=" << s.unroutable << '\n';
  return o.str();
}

// If the process dies of a signal (a crash in the simulator or in lwIP) while a seed runs, the
// handler prints that seed's replay command, then lets the previous disposition (the default,
// or a sanitizer's report) take over.
char g_crash_note[1024];
size_t g_crash_note_len = 0;
struct sigaction g_previous[NSIG];
constexpr int kCrashSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

void on_crash(int sig) {
  static volatile sig_atomic_t printed = 0;
  if (printed == 0) {
    printed = 1;
    ssize_t ignored = ::write(STDERR_FILENO, g_crash_note, g_crash_note_len);
    (void)ignored;
  }
  // Returning re-raises under the previous disposition: the fault repeats; abort() raises again.
  if (sig != 0) ::sigaction(sig, &g_previous[sig], nullptr);
}

void note_seed_for_crashes(uint64_t seed) {
  const std::string note = "\n*** the process died during seed " + std::to_string(seed) +
                           "; replay: " + replay_command(seed) + "\n";
  g_crash_note_len = std::min(note.size(), sizeof g_crash_note);
  std::memcpy(g_crash_note, note.data(), g_crash_note_len);
  static const bool installed = [] {
#ifdef ANYSOCK_SWARM_SANITIZED
    __sanitizer_set_death_callback([] { on_crash(0); });
#endif
    for (int sig : kCrashSignals) {
      struct sigaction a {};
      a.sa_handler = on_crash;
      sigemptyset(&a.sa_mask);
      ::sigaction(sig, &a, &g_previous[sig]);
    }
    return true;
  }();
  (void)installed;
}

// The per-seed assertions; returns "" or what went wrong.
std::string check_seed(const seed_run& r) {
  std::string wrong;
  const traffic_report& t = r.report;
  if (size_t n = t.count(outcome::wrong_bytes))
    wrong += std::to_string(n) + " stream(s) got wrong bytes; ";
  if (size_t n = t.count(outcome::bad_end)) wrong += std::to_string(n) + " stream(s) ended badly; ";
  if (size_t n = t.count(outcome::not_run))
    wrong += std::to_string(n) + " stream(s) never reported; ";
  if (!t.server_problems.empty()) wrong += "a server saw a problem; ";
  if (r.kind == profile::fault_free && t.count(outcome::completed) != t.streams.size()) {
    wrong += "a stream failed on fault-free links; ";
  }
  const sim::stats& s = r.stats;
  const uint64_t dropped = s.lost + s.too_big + s.queue_drops + s.partitioned + s.unroutable;
  if (s.delivered + dropped > s.sent + s.duplicated) wrong += "the link counters do not add up; ";
  if (r.kind == profile::fault_free && s.lost + s.too_big + s.queue_drops + s.partitioned != 0) {
    wrong += "packets dropped on fault-free links; ";
  }
  return wrong;
}

}  // namespace

TEST(SimSwarm, RandomFaultsNeverDeliverAWrongByteAndMildOnesRarelyStopAStream) {
  std::vector<uint64_t> seeds;
  if (g_options.only) {
    seeds.push_back(*g_options.only);
  } else {
    for (uint64_t i = 0; i < g_options.count; ++i) seeds.push_back(g_options.first + i);
  }
  struct tally {
    size_t seeds = 0, streams = 0, completed = 0, clean_errors = 0;
  };
  tally by_kind[3];
  sim::stats total;
  size_t failed_seeds = 0;
  const auto wall_start = std::chrono::steady_clock::now();
  for (uint64_t seed : seeds) {
    note_seed_for_crashes(seed);
    seed_run r;
    try {
      r = run_seed(seed, g_options.only.has_value());
    } catch (const std::exception& e) {
      ++failed_seeds;
      ADD_FAILURE() << "seed " << seed << ": the world threw: " << e.what()
                    << "\nreplay: " << replay_command(seed);
      continue;
    }
    if (g_options.only) std::cout << describe(r);
    const std::string wrong = check_seed(r);
    if (!wrong.empty()) {
      ++failed_seeds;
      ADD_FAILURE() << wrong << '\n' << describe(r) << "replay: " << replay_command(seed);
    }
    if (r.kind == profile::low_loss && !g_options.only) {  // the few that count against the 95%
      for (const stream_result& x : r.report.streams) {
        if (x.result != outcome::clean_error) continue;
        std::cout << "[ info     ] seed " << seed << " (loss<=5%): a stream ended in " << x.detail
                  << " at " << x.finished << " s\n";
      }
    }
    tally& t = by_kind[int(r.kind)];
    ++t.seeds;
    t.streams += r.report.streams.size();
    t.completed += r.report.count(outcome::completed);
    t.clean_errors += r.report.count(outcome::clean_error);
    total.sent += r.stats.sent;
    total.delivered += r.stats.delivered;
    total.lost += r.stats.lost;
    total.duplicated += r.stats.duplicated;
    total.corrupted += r.stats.corrupted;
    total.reordered += r.stats.reordered;
    total.too_big += r.stats.too_big;
    total.queue_drops += r.stats.queue_drops;
  }
  const std::chrono::duration<double> wall = std::chrono::steady_clock::now() - wall_start;

  std::cout << "[ info     ] " << seeds.size() << " seeds in " << std::fixed << std::setprecision(1)
            << wall.count() << " s wall, " << failed_seeds << " failing\n";
  for (profile p : {profile::fault_free, profile::low_loss, profile::high_loss}) {
    const tally& t = by_kind[int(p)];
    std::cout << "[ info     ] " << std::setw(10) << to_string(p) << ": " << t.seeds << " seeds, "
              << t.streams << " streams, " << t.completed << " completed, " << t.clean_errors
              << " clean errors\n";
  }
  std::cout << "[ info     ] links: sent " << total.sent << ", delivered " << total.delivered
            << ", lost " << total.lost << ", duplicated " << total.duplicated << ", corrupted "
            << total.corrupted << ", reordered " << total.reordered << ", too big " << total.too_big
            << ", queue drops " << total.queue_drops << '\n';

  if (g_options.only || seeds.size() < 20) {
    std::cout << "[ info     ] too few seeds for the swarm-wide checks\n";
    return;
  }
  const tally& low = by_kind[int(profile::low_loss)];
  EXPECT_GE(double(low.completed), 0.95 * double(low.streams))
      << "with loss <= 5% at least 95% of the streams complete within their deadline";
  EXPECT_GT(total.lost, 0u);
  EXPECT_GT(total.duplicated, 0u);
  EXPECT_GT(total.corrupted, 0u);
  EXPECT_GT(total.reordered, 0u);
  EXPECT_GT(total.queue_drops, 0u);
}

}  // namespace anysock::sim_testing

namespace {

bool parse_u64(const char* text, uint64_t& out) {
  if (text == nullptr || *text == '\0') return false;
  char* end = nullptr;
  out = std::strtoull(text, &end, 10);
  return *end == '\0';
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  auto& o = anysock::sim_testing::g_options;
  uint64_t v = 0;
  if (parse_u64(std::getenv("ANYSOCK_SWARM_SEEDS"), v)) o.count = v;
  if (parse_u64(std::getenv("ANYSOCK_SWARM_FIRST_SEED"), v)) o.first = v;
  if (parse_u64(std::getenv("ANYSOCK_SWARM_SEED"), v)) o.only = v;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    if (a == "--seeds" && parse_u64(value, v)) {
      o.count = v;
    } else if (a == "--first-seed" && parse_u64(value, v)) {
      o.first = v;
    } else if (a == "--seed" && parse_u64(value, v)) {
      o.only = v;
    } else if (a == "--capture" && value != nullptr) {
      o.capture = value;
    } else {
      std::cerr << "usage: " << argv[0]
                << " [gtest flags] [--seeds N] [--first-seed S] [--seed S [--capture FILE]]\n";
      return 2;
    }
    ++i;
  }
  return RUN_ALL_TESTS();
}
