// anysock-bench: anysock over the kernel and over lwIP's in-memory link, against raw POSIX calls,
// all measured in one run.
//
// Two workloads over TCP between two threads of one process, each done by three contestants:
//   raw POSIX       socket()/connect()/send()/recv() over --host (127.0.0.1): the baseline;
//   anysock kernel  anysock sockets of the backend made from --spec (kernel), over --host;
//   anysock lwIP    anysock sockets on two lwIP hosts of one in-memory link: the server's end
//                   on --lwip-server, the client's on --lwip-client.
// The two anysock contestants run the same code; only the backends differ.
//   round trips  a client thread sends a small request (64 B) and waits for the server thread to
//                echo it, one at a time (TCP_NODELAY, blocking sockets): latency per round trip;
//   bulk         a sender thread streams --bytes in --chunk writes to a receiver thread, then
//                shuts down: throughput to the last byte, and how late the end of stream follows.
// The contestants take turns (run i starts with contestant i mod 3, in the order above), each run
// on a fresh connection, and the table reports the median over --repeat runs plus the ratios of
// each contestant to the kernel backend and to raw POSIX.
#include <arpa/inet.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <anysock/socket.hpp>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace {

using bench_clock = std::chrono::steady_clock;

struct options {
  std::string spec = "kernel";
  std::string host = "127.0.0.1";
  bool lwip = true;               // whether the lwIP contestant runs
  std::string lwip_server;        // spec of its server host; "" = bench-server with --mtu
  std::string lwip_client;        // spec of its client host; "" = bench-client with --mtu
  unsigned mtu = 65535;           // bytes; the kernel loopback's 65536 is the nearest lwIP allows
  std::optional<double> timeout;  // seconds on every anysock socket; nullopt = blocking
  std::string pin = "none";       // --pin: none, same or split
  int client_cpu = -1;            // CPU of the client (and bulk receiver) thread; -1 = any
  int server_cpu = -1;            // CPU of the server (and bulk sender) thread; -1 = any
  uint64_t bytes = uint64_t{1} << 30;
  size_t chunk = 256 * 1024;
  size_t message = 64;
  size_t rounds = 20000;
  size_t warmup = 1000;
  int repeat = 5;
};

[[noreturn]] void fail_errno(const char* what) {
  throw std::system_error(errno, std::generic_category(), what);
}

// ---- the two ways to talk TCP: raw file descriptors and anysock sockets -------------------------

// A connected raw POSIX socket.
class raw_conn {
 public:
  explicit raw_conn(int fd) : fd_(fd) {}
  raw_conn(raw_conn&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  raw_conn& operator=(raw_conn&&) = delete;
  ~raw_conn() {
    if (fd_ >= 0) ::close(fd_);
  }

  void send_all(const char* data, size_t len) {
    while (len > 0) {
      ssize_t n = ::send(fd_, data, len, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        fail_errno("send");
      }
      data += n;
      len -= static_cast<size_t>(n);
    }
  }
  size_t recv_some(char* buf, size_t len) {
    while (true) {
      ssize_t n = ::recv(fd_, buf, len, 0);
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) fail_errno("recv");
    }
  }
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
  void abort() { ::shutdown(fd_, SHUT_RDWR); }

 private:
  int fd_;
};

// A connected anysock socket (on whatever backend it was made).
class anysock_conn {
 public:
  explicit anysock_conn(anysock::socket s) : s_(std::move(s)) {}

  void send_all(const char* data, size_t len) { s_.sendall(std::string_view(data, len)); }
  size_t recv_some(char* buf, size_t len) { return s_.recv_into(buf, len); }
  void shutdown_write() { s_.shutdown(SHUT_WR); }
  void abort() {
    try {
      s_.shutdown(SHUT_RDWR);
    } catch (const anysock::error&) {
    }
  }

 private:
  anysock::socket s_;
};

int family_of(const std::string& host) {
  return host.find(':') != std::string::npos ? AF_INET6 : AF_INET;
}

void set_nodelay_raw(int fd) {
  int one = 1;
  if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) fail_errno("TCP_NODELAY");
}

// A connected pair {client, server} of raw sockets over `host` (numeric), TCP_NODELAY on both.
std::pair<raw_conn, raw_conn> raw_pair(const std::string& host) {
  const int family = family_of(host);
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    if (::inet_pton(AF_INET, host.c_str(), &sin->sin_addr) != 1) {
      throw std::invalid_argument("--host must be a numeric address: " + host);
    }
    len = sizeof *sin;
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    if (::inet_pton(AF_INET6, host.c_str(), &sin6->sin6_addr) != 1) {
      throw std::invalid_argument("--host must be a numeric address: " + host);
    }
    len = sizeof *sin6;
  }
  int lfd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0) fail_errno("socket");
  raw_conn listener_guard(lfd);
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&ss), len) != 0) fail_errno("bind");
  if (::listen(lfd, 1) != 0) fail_errno("listen");
  if (::getsockname(lfd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) fail_errno("getsockname");
  int cfd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (cfd < 0) fail_errno("socket");
  raw_conn client(cfd);
  if (::connect(cfd, reinterpret_cast<sockaddr*>(&ss), len) != 0) fail_errno("connect");
  int sfd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
  if (sfd < 0) fail_errno("accept");
  raw_conn server(sfd);
  set_nodelay_raw(cfd);
  set_nodelay_raw(sfd);
  return {std::move(client), std::move(server)};
}

// Where an anysock pair lives: the listener (and so the server's end) on `server`, bound to
// `host`; the client on `client`, dialing `host` at the listener's port.
struct anysock_route {
  std::shared_ptr<anysock::backend> server, client;
  std::string host;  // numeric
};

// A connected pair {client, server} of anysock sockets along `route`, TCP_NODELAY on both, and
// `timeout` (seconds, nullopt = blocking) set on both.
std::pair<anysock_conn, anysock_conn> anysock_pair(const anysock_route& route,
                                                   std::optional<double> timeout) {
  const int family = family_of(route.host);
  anysock::socket listener(*route.server, family, SOCK_STREAM);
  listener.bind({route.host, 0});
  listener.listen(1);
  anysock::socket client(*route.client, family, SOCK_STREAM);
  client.connect(listener.getsockname());
  auto [server, peer] = listener.accept();
  client.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
  server.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
  client.settimeout(timeout);
  server.settimeout(timeout);
  return {anysock_conn(std::move(client)), anysock_conn(std::move(server))};
}

// ---- the workloads -----------------------------------------------------------------------------

// Binds the calling thread to `cpu` (-1: leaves it alone). Throws std::system_error.
void pin_this_thread(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (int e = pthread_setaffinity_np(pthread_self(), sizeof set, &set); e != 0) {
    throw std::system_error(e, std::generic_category(), "pin to CPU " + std::to_string(cpu));
  }
}

// Runs `server_body` on a thread (bound to `server_cpu` unless -1) while the caller runs
// `client_body`; if either throws, aborts both connections so the other side cannot wait
// forever, then rethrows the first error.
template <class Conn, class ServerBody, class ClientBody>
void run_two_sides(Conn& client, Conn& server, int server_cpu, ServerBody server_body,
                   ClientBody client_body) {
  std::exception_ptr server_error, client_error;
  std::thread t([&] {
    try {
      pin_this_thread(server_cpu);
      server_body();
    } catch (...) {
      server_error = std::current_exception();
      server.abort();
      client.abort();
    }
  });
  try {
    client_body();
  } catch (...) {
    client_error = std::current_exception();
    client.abort();
    server.abort();
  }
  t.join();
  if (client_error) std::rethrow_exception(client_error);
  if (server_error) std::rethrow_exception(server_error);
}

template <class Conn>
bool recv_exact(Conn& c, char* buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    size_t n = c.recv_some(buf + got, len - got);
    if (n == 0) return false;
    got += n;
  }
  return true;
}

struct round_trip_result {
  double mean_us = 0;
  double median_us = 0;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n == 0 ? 0 : (n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2);
}

// One request/response run: the server echoes each message; the client times each round trip.
template <class Conn>
round_trip_result measure_round_trips(std::pair<Conn, Conn> pair, const options& opt) {
  auto& [client, server] = pair;
  std::vector<double> samples;
  samples.reserve(opt.rounds);
  run_two_sides(
      client, server, opt.server_cpu,
      [&] {
        std::vector<char> buf(opt.message);
        while (recv_exact(server, buf.data(), buf.size())) server.send_all(buf.data(), buf.size());
      },
      [&] {
        std::vector<char> request(opt.message, 'q'), reply(opt.message);
        for (size_t i = 0; i < opt.warmup + opt.rounds; ++i) {
          auto t0 = bench_clock::now();
          client.send_all(request.data(), request.size());
          if (!recv_exact(client, reply.data(), reply.size())) {
            throw std::runtime_error("round trip: server closed early");
          }
          auto t1 = bench_clock::now();
          if (i >= opt.warmup) {
            samples.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
          }
        }
        client.shutdown_write();  // the server's recv sees the end and it stops
      });
  round_trip_result r;
  for (double s : samples) r.mean_us += s;
  r.mean_us /= static_cast<double>(samples.size());
  r.median_us = median(std::move(samples));
  return r;
}

struct bulk_result {
  double seconds = 0;  // from the sender's first write to the receiver's last byte
  double eof_lag = 0;  // seconds from the last byte to the receiver seeing the end of stream
};

// One bulk run on a fresh connection; the sender shuts down its side after the last write.
template <class Conn>
bulk_result measure_bulk(std::pair<Conn, Conn> pair, const options& opt) {
  auto& [receiver, sender] = pair;
  bench_clock::time_point start, last_byte, end;
  uint64_t received = 0;
  run_two_sides(
      receiver, sender, opt.server_cpu,
      [&] {
        std::vector<char> buf(opt.chunk, 'b');
        start = bench_clock::now();
        for (uint64_t left = opt.bytes; left > 0;) {
          size_t n = static_cast<size_t>(std::min<uint64_t>(left, buf.size()));
          sender.send_all(buf.data(), n);
          left -= n;
        }
        sender.shutdown_write();
      },
      [&] {
        std::vector<char> buf(opt.chunk);
        while (size_t n = receiver.recv_some(buf.data(), buf.size())) {
          received += n;
          if (received == opt.bytes) last_byte = bench_clock::now();
        }
        end = bench_clock::now();
      });
  if (received != opt.bytes) {
    throw std::runtime_error("bulk: received " + std::to_string(received) + " of " +
                             std::to_string(opt.bytes) + " bytes");
  }
  return {std::chrono::duration<double>(last_byte - start).count(),
          std::chrono::duration<double>(end - last_byte).count()};
}

// ---- command line ------------------------------------------------------------------------------

[[noreturn]] void usage(const char* prog, const std::string& problem = {}) {
  if (!problem.empty()) std::cerr << prog << ": " << problem << "\n";
  std::cerr
      << "usage: " << prog
      << " [--spec SPEC] [--host ADDR] [--lwip-server SPEC] [--lwip-client SPEC]\n"
         "        [--mtu N] [--no-lwip] [--timeout SECONDS] [--pin none|same|split]\n"
         "        [--bytes N] [--chunk N] [--message N] [--rounds N] [--warmup N] [--repeat N]\n"
         "  --spec        backend of the 'anysock kernel' contestant (default kernel)\n"
         "  --host        numeric address raw POSIX and that contestant use (default 127.0.0.1)\n"
         "  --lwip-server lwIP host of the server's end (default "
         "lwip+sim:host=bench-server,mtu=N)\n"
         "  --lwip-client lwIP host of the client's end (default "
         "lwip+sim:host=bench-client,mtu=N)\n"
         "  --mtu         link MTU of the default lwIP hosts, 1280..65535 (default 65535)\n"
         "  --no-lwip     leave the lwIP contestant out\n"
         "  --timeout     settimeout(SECONDS) on every anysock socket (default: blocking)\n"
         "  --pin         where the two application threads run: none (the scheduler decides,\n"
         "                default), same (both on one CPU) or split (two different CPUs)\n"
         "  --bytes       bulk transfer size (default 1G); sizes take K, M, G (powers of 1024)\n"
         "  --chunk       bulk write/read size (default 256K)\n"
         "  --message     round-trip request/response size (default 64)\n"
         "  --rounds      timed round trips per run (default 20000), after --warmup (1000)\n"
         "  --repeat      runs of each measurement; the median is reported (default 5)\n";
  std::exit(2);
}

uint64_t parse_size(const char* prog, std::string_view text) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  std::string_view suffix(end, static_cast<size_t>(text.data() + text.size() - end));
  int shift = suffix.empty()                   ? 0
              : suffix == "K" || suffix == "k" ? 10
              : suffix == "M" || suffix == "m" ? 20
              : suffix == "G" || suffix == "g" ? 30
                                               : -1;
  if (ec != std::errc() || shift < 0 || value > (UINT64_MAX >> shift)) {
    usage(prog, "bad size '" + std::string(text) + "'");
  }
  return value << shift;
}

double parse_seconds(const char* prog, std::string_view text) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || !(value > 0)) {
    usage(prog, "bad --timeout '" + std::string(text) + "' (seconds > 0)");
  }
  return value;
}

// Sets opt.client_cpu / opt.server_cpu from opt.pin: the first one or two CPUs this process may
// run on.
void choose_cpus(const char* prog, options& opt) {
  if (opt.pin == "none") return;
  if (opt.pin != "same" && opt.pin != "split") usage(prog, "--pin takes none, same or split");
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) fail_errno("sched_getaffinity");
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  if (opt.pin == "split" && cpus.size() < 2) usage(prog, "--pin split needs two CPUs");
  opt.client_cpu = cpus.at(0);
  opt.server_cpu = opt.pin == "split" ? cpus.at(1) : cpus.at(0);
}

options parse_options(int argc, char** argv) {
  options opt;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") usage(argv[0]);
    if (arg == "--no-lwip") {
      opt.lwip = false;
      continue;
    }
    if (i + 1 >= argc) usage(argv[0], "missing value after " + std::string(arg));
    const char* value = argv[++i];
    if (arg == "--spec") {
      opt.spec = value;
    } else if (arg == "--host") {
      opt.host = value;
    } else if (arg == "--lwip-server") {
      opt.lwip_server = value;
    } else if (arg == "--lwip-client") {
      opt.lwip_client = value;
    } else if (arg == "--mtu") {
      opt.mtu = static_cast<unsigned>(parse_size(argv[0], value));
    } else if (arg == "--timeout") {
      opt.timeout = parse_seconds(argv[0], value);
    } else if (arg == "--pin") {
      opt.pin = value;
    } else if (arg == "--bytes") {
      opt.bytes = parse_size(argv[0], value);
    } else if (arg == "--chunk") {
      opt.chunk = parse_size(argv[0], value);
    } else if (arg == "--message") {
      opt.message = parse_size(argv[0], value);
    } else if (arg == "--rounds") {
      opt.rounds = parse_size(argv[0], value);
    } else if (arg == "--warmup") {
      opt.warmup = parse_size(argv[0], value);
    } else if (arg == "--repeat") {
      opt.repeat = static_cast<int>(parse_size(argv[0], value));
    } else {
      usage(argv[0], "unknown option " + std::string(arg));
    }
  }
  if (opt.bytes == 0 || opt.chunk == 0 || opt.message == 0 || opt.rounds == 0 || opt.repeat < 1) {
    usage(argv[0], "sizes, --rounds and --repeat must be positive");
  }
  choose_cpus(argv[0], opt);
  const std::string mtu = ",mtu=" + std::to_string(opt.mtu);
  if (opt.lwip_server.empty()) opt.lwip_server = "lwip+sim:host=bench-server" + mtu;
  if (opt.lwip_client.empty()) opt.lwip_client = "lwip+sim:host=bench-client" + mtu;
  return opt;
}

// ---- contestants and report --------------------------------------------------------------------

// One way of doing the workloads, and what its runs measured.
struct contestant {
  contestant(std::string n, std::function<round_trip_result()> rt, std::function<bulk_result()> b)
      : name(std::move(n)), round_trips(std::move(rt)), bulk(std::move(b)) {}

  std::string name;
  std::function<round_trip_result()> round_trips;  // one run on a fresh connection
  std::function<bulk_result()> bulk;               // one run on a fresh connection
  std::vector<double> rt_mean_us, rt_median_us, bulk_seconds, eof_lags;

  double mean_us() const { return median(rt_mean_us); }
  double median_us() const { return median(rt_median_us); }
  double seconds() const { return median(bulk_seconds); }
  double eof_lag() const { return median(eof_lags); }
};

// Runs `body`; an error leaves naming the contestant and the workload.
template <class Body>
auto labelled(const contestant& c, const char* workload, Body body) {
  try {
    return body();
  } catch (const std::exception& e) {
    throw std::runtime_error(c.name + ", " + workload + ": " + e.what());
  }
}

// The contestants in table order: raw POSIX, the --spec backend over --host, and (unless
// --no-lwip) two lwIP hosts of one link. Prints where each runs.
std::vector<contestant> make_contestants(const options& opt) {
  auto backend = anysock::make_backend(opt.spec);
  anysock_route kernel{backend, backend, opt.host};
  std::vector<contestant> all;
  all.push_back({"raw POSIX", [&opt] { return measure_round_trips(raw_pair(opt.host), opt); },
                 [&opt] { return measure_bulk(raw_pair(opt.host), opt); }});
  all.push_back(
      {"anysock " + opt.spec,
       [&opt, kernel] { return measure_round_trips(anysock_pair(kernel, opt.timeout), opt); },
       [&opt, kernel] { return measure_bulk(anysock_pair(kernel, opt.timeout), opt); }});
  std::printf("  %-16s over %s\n", "raw POSIX", opt.host.c_str());
  std::printf("  %-16s \"%s\" over %s\n", all.back().name.c_str(), backend->spec().c_str(),
              opt.host.c_str());
  if (opt.lwip) {
    auto server = anysock::make_backend(opt.lwip_server);
    auto client = anysock::make_backend(opt.lwip_client);
    // The address the client host finds for the server host's name: on the link, not loopback.
    auto found =
        client->getaddrinfo(server->gethostname().c_str(), nullptr, AF_INET, SOCK_STREAM, 0, 0);
    anysock_route lwip{server, client, found.at(0).addr.host};
    all.push_back(
        {"anysock lwIP",
         [&opt, lwip] { return measure_round_trips(anysock_pair(lwip, opt.timeout), opt); },
         [&opt, lwip] { return measure_bulk(anysock_pair(lwip, opt.timeout), opt); }});
    std::printf("  %-16s server \"%s\" at %s, client \"%s\"\n", "anysock lwIP",
                opt.lwip_server.c_str(), lwip.host.c_str(), opt.lwip_client.c_str());
  }
  return all;
}

// One line per run, values in contestant order.
void print_run(int run, const options& opt, const std::vector<contestant>& all) {
  std::printf("  run %d/%d: round trip median us", run + 1, opt.repeat);
  for (const contestant& c : all) std::printf(" %.2f", c.rt_median_us.back());
  std::printf(" | bulk s");
  for (const contestant& c : all) std::printf(" %.3f", c.bulk_seconds.back());
  std::printf(" | end-of-stream lag ms");
  for (const contestant& c : all) std::printf(" %.1f", c.eof_lags.back() * 1e3);
  std::printf("\n");
  std::fflush(stdout);
}

void print_report(const options& opt, const std::vector<contestant>& all) {
  const contestant &raw = all[0], &kernel = all[1];
  const double gb = static_cast<double>(opt.bytes) / 1e9;
  const std::string waits =
      opt.timeout ? "anysock timeout " + std::to_string(*opt.timeout) + " s" : "blocking";
  std::printf(
      "\nround trips: %zu B request/response, %zu timed (+%zu warm-up) per run, TCP_NODELAY, %s;"
      " median of %d runs\n",
      opt.message, opt.rounds, opt.warmup, waits.c_str(), opt.repeat);
  std::printf("  %-16s %10s %10s %10s  %-15s  %-15s\n", "", "mean us", "median us", "trips/s",
              "time vs kernel", "time vs raw");
  for (const contestant& c : all) {
    std::printf("  %-16s %10.2f %10.2f %10.0f  %6.3fx %6.3fx  %6.3fx %6.3fx\n", c.name.c_str(),
                c.mean_us(), c.median_us(), 1e6 / c.mean_us(), c.mean_us() / kernel.mean_us(),
                c.median_us() / kernel.median_us(), c.mean_us() / raw.mean_us(),
                c.median_us() / raw.median_us());
  }
  std::printf("  (ratios of the mean, then of the median; lower is faster)\n");
  std::printf("\nbulk: %llu B in %zu B writes/reads, first write to last byte; median of %d runs\n",
              static_cast<unsigned long long>(opt.bytes), opt.chunk, opt.repeat);
  std::printf("  %-16s %10s %10s %10s  %-15s  %-15s  %s\n", "", "GB/s", "Gbit/s", "seconds",
              "rate vs kernel", "rate vs raw", "end-of-stream lag ms (median, max)");
  for (const contestant& c : all) {
    const double sec = c.seconds();
    const double lag_max = *std::max_element(c.eof_lags.begin(), c.eof_lags.end());
    std::printf("  %-16s %10.3f %10.2f %10.4f  %6.3fx %7s  %6.3fx %7s  %.2f, %.2f\n",
                c.name.c_str(), gb / sec, 8 * gb / sec, sec, kernel.seconds() / sec, "",
                raw.seconds() / sec, "", c.eof_lag() * 1e3, lag_max * 1e3);
  }
  std::printf("  (ratios of bytes per second; higher is faster)\n");
  std::printf("\ngoals:\n  %s vs raw POSIX, time <= 1.05x: round trip %.3fx (median), bulk %.3fx\n",
              kernel.name.c_str(), kernel.median_us() / raw.median_us(),
              kernel.seconds() / raw.seconds());
  if (all.size() > 2) {
    const contestant& lwip = all[2];
    std::printf("  %s vs %s: round trip <= 0.5x: %.3fx (median); bulk rate >= 3x: %.3fx\n",
                lwip.name.c_str(), kernel.name.c_str(), lwip.median_us() / kernel.median_us(),
                kernel.seconds() / lwip.seconds());
  }
}

}  // namespace

int main(int argc, char** argv) {
  const options opt = parse_options(argc, argv);
  try {
    std::printf("anysock-bench: %d runs of each measurement, contestants:\n", opt.repeat);
    std::vector<contestant> all = make_contestants(opt);
    // After make_contestants: the lwIP engine's thread, started there, keeps its own placement.
    pin_this_thread(opt.client_cpu);
    if (opt.client_cpu >= 0) {
      std::printf("  application threads: client/receiver on CPU %d, server/sender on CPU %d\n",
                  opt.client_cpu, opt.server_cpu);
    } else {
      std::printf("  application threads: placed by the scheduler (--pin none)\n");
    }
    std::printf("run lines give each contestant's figure in this order\n");
    const size_t n = all.size();
    for (int run = 0; run < opt.repeat; ++run) {
      for (size_t k = 0; k < n; ++k) {  // run i starts with contestant i mod n
        contestant& c = all[(static_cast<size_t>(run) + k) % n];
        round_trip_result r = labelled(c, "round trips", c.round_trips);
        c.rt_mean_us.push_back(r.mean_us);
        c.rt_median_us.push_back(r.median_us);
      }
      for (size_t k = 0; k < n; ++k) {
        contestant& c = all[(static_cast<size_t>(run) + k) % n];
        bulk_result b = labelled(c, "bulk", c.bulk);
        c.bulk_seconds.push_back(b.seconds);
        c.eof_lags.push_back(b.eof_lag);
      }
      print_run(run, opt, all);
    }
    print_report(opt, all);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << argv[0] << ": " << e.what() << '\n';
    return 1;
  }
}
