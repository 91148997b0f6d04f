// sim-bench: how fast anysock's network simulator (anysock/sim.hpp) runs, in simulated seconds per
// wall-clock second. Each case is one long run of a world, timed from its construction to the end
// of its destruction; the baseline is real time itself (1x).
//
//   bulk  2 hosts, one TCP transfer of --bytes (100 MiB) on a 1 Gbit/s, 1 ms link, no faults;
//   rpc   10 hosts: 9 clients each make 10 request/response exchanges of 1 KiB per virtual second
//         (sim::sleep between) with one server, over 1% loss and 5 ms +- 1 ms of delay, for
//         --seconds (600) virtual seconds.
//
// Goals (issue 4): bulk faster than real time (> 1x), rpc at least 1000x. For scale, TigerBeetle's
// simulator reports ~700x real time and FoundationDB's ~10x.
//
//   sim-bench [--quick] [--bytes N] [--seconds S] [--seed N] [--repeat N] [--only bulk|rpc]
// --quick: 8 MiB and 30 virtual seconds (a smoke run). Sizes take K, M, G (powers of 1024).
#include <algorithm>
#include <anysock/sim.hpp>
#include <anysock/socket.hpp>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <iostream>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

using wall_clock = std::chrono::steady_clock;

struct options {
  uint64_t bytes = uint64_t{100} << 20;
  double seconds = 600;
  uint64_t seed = 1;
  int repeat = 1;
  bool bulk = true;
  bool rpc = true;
};

// What one run of a case measured.
struct measurement {
  double virtual_seconds = 0;
  double wall_seconds = 0;
  std::string detail;  // case-specific figures
  double speed() const { return wall_seconds > 0 ? virtual_seconds / wall_seconds : 0; }
};

std::string link_summary(const anysock::sim::stats& s) {
  return "packets " + std::to_string(s.delivered) + " delivered, " + std::to_string(s.lost) +
         " lost";
}

// ---- bulk ---------------------------------------------------------------------------------------

measurement run_bulk(const options& o, uint64_t seed) {
  namespace sim = anysock::sim;
  constexpr size_t kChunk = 256 * 1024;
  measurement m;
  const auto start = wall_clock::now();
  {
    sim::world w(seed);
    sim::host& server = w.add_host("server");
    sim::host& client = w.add_host("client");
    sim::link_config link;
    link.rate_bps = 1'000'000'000;
    link.delay = 0.001;
    w.set_default_link(link);
    uint64_t received = 0;
    double first = -1, last = -1;
    server.spawn([&] {
      anysock::socket l(AF_INET, SOCK_STREAM);
      l.bind({"", 5001});
      l.listen(1);
      anysock::socket c = l.accept().first;
      std::vector<std::byte> buf(kChunk);
      while (size_t n = c.recv_into(std::span<std::byte>(buf))) received += n;
      last = sim::now();
    });
    client.spawn([&] {
      anysock::socket c = anysock::create_connection({"server", 5001});
      std::string chunk(kChunk, '\0');
      for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<char>(i * 131 + (i >> 9));
      first = sim::now();
      for (uint64_t left = o.bytes; left > 0;) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(left, kChunk));
        c.sendall(std::string_view(chunk.data(), n));
        left -= n;
      }
      c.shutdown(SHUT_WR);
    });
    w.run();
    if (received != o.bytes) {
      throw std::runtime_error("bulk: received " + std::to_string(received) + " of " +
                               std::to_string(o.bytes) + " bytes");
    }
    m.virtual_seconds = w.now();
    const double transfer = last - first;
    char buf[160];
    std::snprintf(buf, sizeof buf, "%.1f MiB in %.3f virtual s = %.0f Mbit/s; ",
                  double(o.bytes) / (1 << 20), transfer, double(o.bytes) * 8 / transfer / 1e6);
    m.detail = buf + link_summary(w.stats());
  }
  m.wall_seconds = std::chrono::duration<double>(wall_clock::now() - start).count();
  return m;
}

// ---- rpc ----------------------------------------------------------------------------------------

// Up to n bytes (fewer at end of stream).
std::string recv_exact(anysock::socket& s, size_t n) {
  std::string out;
  while (out.size() < n) {
    std::string piece = s.recv(n - out.size());
    if (piece.empty()) break;
    out += piece;
  }
  return out;
}

measurement run_rpc(const options& o, uint64_t seed) {
  namespace sim = anysock::sim;
  constexpr int kClients = 9;
  constexpr int kPerSecond = 10;
  constexpr size_t kMessage = 1024;
  constexpr double kCallTimeout = 30;
  measurement m;
  const auto start = wall_clock::now();
  {
    sim::world w(seed);
    sim::host& server = w.add_host("server");
    std::vector<sim::host*> clients;
    for (int i = 0; i < kClients; ++i) clients.push_back(&w.add_host("client" + std::to_string(i)));
    sim::link_config link;
    link.loss = 0.01;
    link.delay = 0.005;
    link.jitter = 0.001;
    w.set_default_link(link);

    auto clients_left = std::make_shared<std::atomic<int>>(kClients);
    std::atomic<uint64_t> exchanges{0}, errors{0};
    server.spawn([&server, clients_left] {
      anysock::socket l(AF_INET, SOCK_STREAM);
      l.bind({"", 5002});
      l.listen(64);
      l.settimeout(1.0);
      while (clients_left->load() > 0) {
        try {
          auto c = std::make_shared<anysock::socket>(l.accept().first);
          server.spawn([c] {
            try {
              c->settimeout(2 * kCallTimeout);
              for (;;) {
                const std::string request = recv_exact(*c, kMessage);
                if (request.size() < kMessage) return;
                c->sendall(request);
              }
            } catch (const anysock::error&) {
            }
          });
        } catch (const anysock::timeout&) {
        }
      }
    });
    for (sim::host* h : clients) {
      h->spawn([&, clients_left] {
        const std::string request(kMessage, 'q');
        std::optional<anysock::socket> c;
        const int slots = static_cast<int>(o.seconds * kPerSecond);
        for (int i = 0; i < slots; ++i) {
          const double at = double(i) / kPerSecond;
          if (at > sim::now()) sim::sleep(at - sim::now());
          try {
            if (!c) {
              c.emplace(anysock::create_connection({"server", 5002}, kCallTimeout));
              c->setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
            }
            c->sendall(request);
            if (recv_exact(*c, kMessage).size() < kMessage) throw anysock::error(ECONNRESET);
            ++exchanges;
          } catch (const anysock::error&) {
            ++errors;
            c.reset();
          }
        }
        c.reset();
        --*clients_left;
      });
    }
    w.run();
    m.virtual_seconds = w.now();
    m.detail = std::to_string(exchanges.load()) + " exchanges (" + std::to_string(errors.load()) +
               " failed); " + link_summary(w.stats());
  }
  m.wall_seconds = std::chrono::duration<double>(wall_clock::now() - start).count();
  return m;
}

// ---- command line and table ---------------------------------------------------------------------

uint64_t parse_size(std::string_view text) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end == text.data())
    throw std::invalid_argument("bad size: " + std::string(text));
  const std::string_view unit(end, text.data() + text.size() - end);
  if (unit == "K") return v << 10;
  if (unit == "M") return v << 20;
  if (unit == "G") return v << 30;
  if (!unit.empty()) throw std::invalid_argument("bad size unit: " + std::string(text));
  return v;
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) throw std::invalid_argument(std::string(a) + " needs a value");
      return argv[++i];
    };
    if (a == "--quick") {
      o.bytes = uint64_t{8} << 20;
      o.seconds = 30;
    } else if (a == "--bytes") {
      o.bytes = parse_size(value());
    } else if (a == "--seconds") {
      o.seconds = std::stod(std::string(value()));
    } else if (a == "--seed") {
      o.seed = parse_size(value());
    } else if (a == "--repeat") {
      o.repeat = std::max(1, std::stoi(std::string(value())));
    } else if (a == "--only") {
      const std::string_view which = value();
      o.bulk = which == "bulk";
      o.rpc = which == "rpc";
      if (!o.bulk && !o.rpc) throw std::invalid_argument("--only bulk or --only rpc");
    } else {
      throw std::invalid_argument("unknown argument " + std::string(a) +
                                  "\nusage: sim-bench [--quick] [--bytes N] [--seconds S] "
                                  "[--seed N] [--repeat N] [--only bulk|rpc]");
    }
  }
  return o;
}

void print_row(const char* name, const measurement& m, const char* goal) {
  std::printf("%-6s %12.3f %10.3f %14.1fx  %-8s %s\n", name, m.virtual_seconds, m.wall_seconds,
              m.speed(), goal, m.detail.c_str());
}

// The run with the median speed of `runs` (which is not empty).
measurement median(std::vector<measurement> runs) {
  std::sort(runs.begin(), runs.end(),
            [](const measurement& a, const measurement& b) { return a.speed() < b.speed(); });
  return runs[runs.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const options o = parse(argc, argv);
    std::printf(
        "sim-bench: simulated seconds per wall second (median of %d run%s; real time = 1x)\n",
        o.repeat, o.repeat == 1 ? "" : "s");
    std::printf("%-6s %12s %10s %15s  %-8s %s\n", "case", "virtual s", "wall s", "sim/wall", "goal",
                "detail");
    std::vector<measurement> bulk, rpc;
    for (int r = 0; r < o.repeat; ++r) {
      if (o.bulk) bulk.push_back(run_bulk(o, o.seed + uint64_t(r)));
      if (o.rpc) rpc.push_back(run_rpc(o, o.seed + uint64_t(r)));
      if (o.repeat > 1) {
        std::printf("  run %d/%d:", r + 1, o.repeat);
        if (o.bulk) std::printf(" bulk %.1fx", bulk.back().speed());
        if (o.rpc) std::printf(" rpc %.1fx", rpc.back().speed());
        std::printf("\n");
      }
    }
    if (o.bulk) print_row("bulk", median(bulk), "> 1x");
    if (o.rpc) print_row("rpc", median(rpc), ">= 1000x");
    std::printf("anchors: TigerBeetle's simulator ~700x real time, FoundationDB's ~10x\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sim-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
