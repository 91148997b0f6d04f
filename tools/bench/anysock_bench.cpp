// anysock-bench: what anysock's socket layer costs over raw POSIX calls, measured in one run.
//
// Two workloads over TCP on one host, each done once through raw socket()/connect()/send()/recv()
// and once through anysock sockets of the backend made from --spec (both ends on that backend):
//   round trips  a client thread sends a small request (64 B) and waits for the server thread to
//                echo it, one at a time (TCP_NODELAY, blocking sockets): latency per round trip;
//   bulk         a sender thread streams --bytes in --chunk writes to a receiver thread:
//   throughput.
// The raw and anysock runs alternate (raw first on even repeats, anysock first on odd ones), each
// on a fresh connection, and the table reports the median over --repeat runs plus the ratio
// anysock/raw of the times (1.00x = no overhead; lower is better).
#include <arpa/inet.h>
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
#include <iostream>
#include <memory>
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

// The same pair through anysock, both ends on backend `b`.
std::pair<anysock_conn, anysock_conn> anysock_pair(anysock::backend& b, const std::string& host) {
  const int family = family_of(host);
  anysock::socket listener(b, family, SOCK_STREAM);
  listener.bind({host, 0});
  listener.listen(1);
  anysock::socket client(b, family, SOCK_STREAM);
  client.connect(listener.getsockname());
  auto [server, peer] = listener.accept();
  client.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
  server.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
  return {anysock_conn(std::move(client)), anysock_conn(std::move(server))};
}

// ---- the workloads -----------------------------------------------------------------------------

// Runs `server_body` on a thread while the caller runs `client_body`; if either throws, aborts
// both connections so the other side cannot wait forever, then rethrows the first error.
template <class Conn, class ServerBody, class ClientBody>
void run_two_sides(Conn& client, Conn& server, ServerBody server_body, ClientBody client_body) {
  std::exception_ptr server_error, client_error;
  std::thread t([&] {
    try {
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
      client, server,
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

// One bulk run: seconds from the sender's first write to the receiver's last byte.
template <class Conn>
double measure_bulk(std::pair<Conn, Conn> pair, const options& opt) {
  auto& [receiver, sender] = pair;
  bench_clock::time_point start, end;
  uint64_t received = 0;
  run_two_sides(
      receiver, sender,
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
        while (size_t n = receiver.recv_some(buf.data(), buf.size())) received += n;
        end = bench_clock::now();
      });
  if (received != opt.bytes) {
    throw std::runtime_error("bulk: received " + std::to_string(received) + " of " +
                             std::to_string(opt.bytes) + " bytes");
  }
  return std::chrono::duration<double>(end - start).count();
}

// ---- command line and report -------------------------------------------------------------------

[[noreturn]] void usage(const char* prog, const std::string& problem = {}) {
  if (!problem.empty()) std::cerr << prog << ": " << problem << "\n";
  std::cerr << "usage: " << prog
            << " [--spec SPEC] [--host ADDR] [--bytes N] [--chunk N] [--message N]\n"
               "        [--rounds N] [--warmup N] [--repeat N]\n"
               "  --spec    backend of the anysock side (default kernel)\n"
               "  --host    numeric address both ends use (default 127.0.0.1)\n"
               "  --bytes   bulk transfer size (default 1G); sizes take K, M, G (powers of 1024)\n"
               "  --chunk   bulk write/read size (default 256K)\n"
               "  --message round-trip request/response size (default 64)\n"
               "  --rounds  timed round trips per run (default 20000), after --warmup (1000)\n"
               "  --repeat  runs of each measurement; the median is reported (default 5)\n";
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

options parse_options(int argc, char** argv) {
  options opt;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") usage(argv[0]);
    if (i + 1 >= argc) usage(argv[0], "missing value after " + std::string(arg));
    const char* value = argv[++i];
    if (arg == "--spec") {
      opt.spec = value;
    } else if (arg == "--host") {
      opt.host = value;
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
  return opt;
}

struct side_results {
  std::vector<double> rt_mean_us, rt_median_us, bulk_seconds;
};

void print_report(const options& opt, const side_results& raw, const side_results& any) {
  const double raw_mean = median(raw.rt_mean_us), any_mean = median(any.rt_mean_us);
  const double raw_med = median(raw.rt_median_us), any_med = median(any.rt_median_us);
  const double raw_s = median(raw.bulk_seconds), any_s = median(any.bulk_seconds);
  const double gb = static_cast<double>(opt.bytes) / 1e9;
  std::printf(
      "\nround trips: %zu B request/response, %zu timed (+%zu warm-up) per run, "
      "TCP_NODELAY, blocking; median of %d runs\n",
      opt.message, opt.rounds, opt.warmup, opt.repeat);
  std::printf("  %-14s %10s %10s %14s\n", "", "mean us", "median us", "round trips/s");
  std::printf("  %-14s %10.2f %10.2f %14.0f\n", "raw POSIX", raw_mean, raw_med, 1e6 / raw_mean);
  std::printf("  %-14s %10.2f %10.2f %14.0f\n", "anysock", any_mean, any_med, 1e6 / any_mean);
  std::printf("  %-14s %9.3fx %9.3fx   (time; goal <= 1.05x)\n", "anysock/raw", any_mean / raw_mean,
              any_med / raw_med);
  std::printf("\nbulk: %llu B in %zu B writes/reads; median of %d runs\n",
              static_cast<unsigned long long>(opt.bytes), opt.chunk, opt.repeat);
  std::printf("  %-14s %10s %10s %10s\n", "", "GB/s", "Gbit/s", "seconds");
  std::printf("  %-14s %10.3f %10.2f %10.3f\n", "raw POSIX", gb / raw_s, 8 * gb / raw_s, raw_s);
  std::printf("  %-14s %10.3f %10.2f %10.3f\n", "anysock", gb / any_s, 8 * gb / any_s, any_s);
  std::printf("  %-14s %9.3fx %21s   (time; goal <= 1.05x)\n", "anysock/raw", any_s / raw_s, "");
}

}  // namespace

int main(int argc, char** argv) {
  const options opt = parse_options(argc, argv);
  try {
    std::shared_ptr<anysock::backend> backend = anysock::make_backend(opt.spec);
    std::printf("anysock-bench: anysock side on \"%s\", host %s, %d runs of each measurement\n",
                backend->spec().c_str(), opt.host.c_str(), opt.repeat);
    side_results raw, any;
    auto round_trips = [&](bool anysock_side) {
      round_trip_result r = anysock_side
                                ? measure_round_trips(anysock_pair(*backend, opt.host), opt)
                                : measure_round_trips(raw_pair(opt.host), opt);
      side_results& into = anysock_side ? any : raw;
      into.rt_mean_us.push_back(r.mean_us);
      into.rt_median_us.push_back(r.median_us);
    };
    auto bulk = [&](bool anysock_side) {
      double s = anysock_side ? measure_bulk(anysock_pair(*backend, opt.host), opt)
                              : measure_bulk(raw_pair(opt.host), opt);
      (anysock_side ? any : raw).bulk_seconds.push_back(s);
    };
    for (int run = 0; run < opt.repeat; ++run) {
      const bool anysock_first = run % 2 == 1;
      round_trips(anysock_first);
      round_trips(!anysock_first);
      bulk(anysock_first);
      bulk(!anysock_first);
      std::printf(
          "  run %d/%d: round trip mean %.2f us raw, %.2f us anysock; bulk %.3f s raw, "
          "%.3f s anysock\n",
          run + 1, opt.repeat, raw.rt_mean_us.back(), any.rt_mean_us.back(),
          raw.bulk_seconds.back(), any.bulk_seconds.back());
      std::fflush(stdout);
    }
    print_report(opt, raw, any);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << argv[0] << ": " << e.what() << '\n';
    return 1;
  }
}
