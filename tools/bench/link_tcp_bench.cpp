// link-tcp-bench: TCP between an lwIP host on each link driver and the Linux kernel, beside the
// kernel talking to itself over a veth pair between two network namespaces, in one run (needs
// root; the program makes its own namespaces, which vanish with it).
//
// Contestants (each a pair of TCP endpoints on two threads of this process):
// - `kernel veth`: a kernel socket in this namespace and one in a second namespace (a thread that
//   unshared its network namespace), across a veth pair with `tx off tso off gso off` on both ends
//   (a kernel<->kernel test inside one namespace would go through `lo`).
// - `lwip+DRIVER`: an anysock socket on an lwIP host (make_backend("lwip+DRIVER:...")) on the user
//   end of a veth pair (a TAP for tap), and a kernel socket on the kernel's end, offloads off as
//   above.
// Workloads, each on a new connection: bulk "out" (the anysock/first-namespace side sends
// --bytes in 256 KiB writes, the peer reads), bulk "in" (the other way), and --rounds 64-byte
// round trips (TCP_NODELAY; the anysock side asks, the peer echoes). Each figure is the median of
// --repeat runs; contestants take turns within a run.
//
// For the lwIP contestants the table also says where the time goes, from the engine's counters
// over the bulk runs: frames per driver flush (a flush is one system call on af_packet/af_xdp; tap
// and pcap send one frame per call anyway), frames per receive burst, and engine-thread wake-ups
// per 1000 frames; and the process's CPU time (user + system, both ends included) per GB moved.
//
// Usage: link-tcp-bench [--bytes N] [--rounds N] [--repeat N] [--drivers "tap;af_packet;..."]
//                       [--extra ",key=value"] [--no-kernel] [--workloads out,in,rtt] [--cc NAME]
// Sizes take K, M, G. A driver may carry spec keys of its own after a colon
// ("af_packet:block_size=16384"); --extra keys go to every lwIP host.
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <anysock/lwip.hpp>
#include <anysock/socket.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

struct settings {
  uint64_t bytes = 256ull << 20;
  int rounds = 20000;
  int warmup = 1000;
  int repeat = 3;
  std::vector<std::string> drivers{"tap", "pcap", "af_packet", "af_xdp"};
  std::string extra;
  bool kernel = true;  // run the kernel veth contestant
  std::string cc;      // congestion control of the kernel's sockets ("": the system's)
  std::string workloads = "out,in,rtt";
};

uint64_t parse_size(const std::string& text) {
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  switch (*end) {
    case 'K':
    case 'k':
      v *= 1024;
      break;
    case 'M':
    case 'm':
      v *= 1024 * 1024;
      break;
    case 'G':
    case 'g':
      v *= 1024.0 * 1024 * 1024;
      break;
    default:
      break;
  }
  return static_cast<uint64_t>(v);
}

settings parse(int argc, char** argv) {
  settings s;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "link-tcp-bench: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--bytes") {
      s.bytes = parse_size(value());
    } else if (a == "--rounds") {
      s.rounds = std::atoi(value().c_str());
    } else if (a == "--repeat") {
      s.repeat = std::max(1, std::atoi(value().c_str()));
    } else if (a == "--extra") {
      s.extra = value();
    } else if (a == "--cc") {
      s.cc = value();
    } else if (a == "--no-kernel") {
      s.kernel = false;
    } else if (a == "--workloads") {
      s.workloads = value();
    } else if (a == "--drivers") {
      s.drivers.clear();
      std::string list = value();
      size_t start = 0;
      while (start <= list.size()) {
        size_t end = list.find(';', start);
        if (end == std::string::npos) end = list.size();
        if (end > start) s.drivers.push_back(list.substr(start, end - start));
        start = end + 1;
      }
    } else {
      std::fprintf(stderr,
                   "usage: link-tcp-bench [--bytes N] [--rounds N] [--repeat N] "
                   "[--drivers \"tap;pcap;af_packet;af_xdp\"] [--extra \",key=value\"] "
                   "[--no-kernel] [--workloads out,in,rtt] [--cc cubic|bbr|reno]\n");
      std::exit(2);
    }
  }
  return s;
}

void sh(const std::string& command) {
  std::string full = "PATH=/usr/sbin:/sbin:/usr/bin:/bin; " + command;
  if (std::system(full.c_str()) != 0) {
    std::fprintf(stderr, "link-tcp-bench: `%s` failed\n", command.c_str());
    std::exit(1);
  }
}

// ---- the second namespace: a thread that unshared its network namespace and runs jobs there ----

class peer_namespace {
 public:
  peer_namespace() {
    thread_ = std::thread([this] {
      if (::unshare(CLONE_NEWNET) != 0) {
        std::perror("link-tcp-bench: unshare(CLONE_NEWNET)");
        std::exit(1);
      }
      {
        std::lock_guard lk(mu_);
        tid_ = static_cast<pid_t>(::syscall(SYS_gettid));
      }
      cv_.notify_all();
      std::unique_lock lk(mu_);
      while (true) {
        cv_.wait(lk, [&] { return stop_ || busy_; });
        if (stop_) return;
        lk.unlock();
        job_();
        lk.lock();
        busy_ = false;
        cv_.notify_all();
      }
    });
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return tid_ != 0; });
  }
  ~peer_namespace() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  pid_t tid() const { return tid_; }
  /// Runs `job` on the namespace's thread (asynchronously); wait() waits for it.
  void start(std::function<void()> job) {
    std::lock_guard lk(mu_);
    job_ = std::move(job);
    busy_ = true;
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return !busy_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::function<void()> job_;
  bool busy_ = false;  // job_ is to run or running
  bool stop_ = false;
  pid_t tid_ = 0;
  std::thread thread_;
};

// ---- contestants -----------------------------------------------------------------------------

struct contestant {
  std::string name;
  std::string driver;                      // "" for kernel veth
  std::string local_ip, peer_ip;           // the anysock side's address, the kernel peer's
  std::shared_ptr<anysock::backend> host;  // the lwIP host (null for kernel veth)
  peer_namespace* peer_ns = nullptr;       // where the peer runs (null: this namespace)
};

// Runs `job` where the contestant's peer lives (a thread here, or the second namespace's thread).
class peer_job {
 public:
  peer_job(contestant& c, std::function<void()> job) : c_(c) {
    if (c_.peer_ns != nullptr) {
      c_.peer_ns->start(std::move(job));
    } else {
      thread_ = std::thread(std::move(job));
    }
  }
  ~peer_job() { join(); }
  void join() {
    if (c_.peer_ns != nullptr) {
      c_.peer_ns->wait();
    } else if (thread_.joinable()) {
      thread_.join();
    }
  }

 private:
  contestant& c_;
  std::thread thread_;
};

std::string g_cc;  // --cc

// A kernel TCP socket, with --cc's congestion control if given.
anysock::socket kernel_socket() {
  anysock::socket s(anysock::kernel_backend(), AF_INET, SOCK_STREAM);
  if (!g_cc.empty()) s.setsockopt(IPPROTO_TCP, TCP_CONGESTION, g_cc);
  return s;
}

anysock::socket local_socket(contestant& c) {
  return c.host ? anysock::socket(*c.host, AF_INET, SOCK_STREAM) : kernel_socket();
}

// A connected pair: the local (anysock/first-namespace) socket and the peer's, accepted by the
// peer.
struct connection {
  anysock::socket local;
  std::optional<anysock::socket> peer;
};

std::atomic<uint16_t> next_port{20000};

connection connect_pair(contestant& c) {
  const uint16_t port = next_port++;
  std::mutex mu;
  std::condition_variable cv;
  bool listening = false;
  connection conn{local_socket(c), std::nullopt};
  peer_job job(c, [&] {
    anysock::socket l = kernel_socket();
    l.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
    l.bind({c.peer_ip, port});
    l.listen(1);
    {
      std::lock_guard lk(mu);
      listening = true;
    }
    cv.notify_all();
    l.settimeout(10.0);
    conn.peer.emplace(l.accept().first);
  });
  {
    std::unique_lock lk(mu);
    cv.wait(lk, [&] { return listening; });
  }
  conn.local.settimeout(10.0);
  conn.local.connect({c.peer_ip, port});
  job.join();
  conn.local.settimeout(std::nullopt);
  conn.peer->settimeout(std::nullopt);
  return conn;
}

double seconds_since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

// Sends `bytes` from `from` to `to` (a receiver job on `to`'s side); returns seconds.
double bulk(contestant& c, connection& conn, bool out, uint64_t bytes) {
  const size_t chunk = 256 << 10;
  std::string data(chunk, 'x');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  anysock::socket& sender = out ? conn.local : *conn.peer;
  anysock::socket& receiver = out ? *conn.peer : conn.local;
  std::atomic<uint64_t> received{0};
  auto receive = [&] {
    std::vector<char> buf(chunk);
    uint64_t n = 0;
    while (true) {
      size_t got = receiver.recv_into(buf.data(), buf.size());
      if (got == 0) break;
      n += got;
    }
    received = n;
  };
  auto send = [&] {
    for (uint64_t sent = 0; sent < bytes; sent += chunk) {
      sender.sendall(std::string_view(data).substr(0, std::min<uint64_t>(chunk, bytes - sent)));
    }
    sender.shutdown(SHUT_WR);
  };
  const auto start = clock_type::now();
  if (out) {
    peer_job job(c, receive);
    send();
    job.join();
  } else {
    peer_job job(c, send);
    receive();
    job.join();
  }
  const double t = seconds_since(start);
  if (received != bytes) {
    std::fprintf(stderr, "link-tcp-bench: %s: received %llu of %llu bytes\n", c.name.c_str(),
                 static_cast<unsigned long long>(received.load()),
                 static_cast<unsigned long long>(bytes));
    std::exit(1);
  }
  return t;
}

// 64-byte round trips; returns the median in microseconds.
double round_trips(contestant& c, connection& conn, int warmup, int rounds) {
  conn.local.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
  conn.peer->setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
  const std::string message(64, 'r');
  peer_job job(c, [&] {
    char buf[64];
    for (int i = 0; i < warmup + rounds; ++i) {
      size_t got = 0;
      while (got < sizeof buf) got += conn.peer->recv_into(buf + got, sizeof buf - got);
      conn.peer->sendall(std::string_view(buf, sizeof buf));
    }
  });
  std::vector<double> us;
  us.reserve(static_cast<size_t>(rounds));
  char buf[64];
  for (int i = 0; i < warmup + rounds; ++i) {
    const auto start = clock_type::now();
    conn.local.sendall(message);
    size_t got = 0;
    while (got < sizeof buf) got += conn.local.recv_into(buf + got, sizeof buf - got);
    if (i >= warmup) us.push_back(seconds_since(start) * 1e6);
  }
  job.join();
  std::nth_element(us.begin(), us.begin() + us.size() / 2, us.end());
  return us[us.size() / 2];
}

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

struct sample {
  double out_gbps = 0, in_gbps = 0, rtt_us = 0;
  double cpu_per_gb = 0;
  anysock::lwip::link_counters delta;  // over the bulk runs
};

anysock::lwip::link_counters counters_of(const contestant& c) {
  if (!c.host) return {};
  for (const auto& l : anysock::lwip::read_counters().links) {
    if (l.host == c.host->gethostname()) return l;
  }
  return {};
}

anysock::lwip::link_counters minus(const anysock::lwip::link_counters& a,
                                   const anysock::lwip::link_counters& b) {
  anysock::lwip::link_counters d = a;
  d.frames_in -= b.frames_in;
  d.frames_out -= b.frames_out;
  d.bytes_in -= b.bytes_in;
  d.bytes_out -= b.bytes_out;
  d.rx_bursts -= b.rx_bursts;
  d.tx_flushes -= b.tx_flushes;
  d.wakeups -= b.wakeups;
  return d;
}

sample measure(contestant& c, const settings& s) {
  sample r;
  const auto before = counters_of(c);
  const double cpu0 = cpu_seconds();
  auto wanted = [&](const char* w) { return s.workloads.find(w) != std::string::npos; };
  int bulks = 0;
  if (wanted("out")) {
    connection conn = connect_pair(c);
    r.out_gbps = static_cast<double>(s.bytes) * 8 / bulk(c, conn, true, s.bytes) / 1e9;
    ++bulks;
  }
  if (wanted("in")) {
    connection conn = connect_pair(c);
    r.in_gbps = static_cast<double>(s.bytes) * 8 / bulk(c, conn, false, s.bytes) / 1e9;
    ++bulks;
  }
  if (bulks > 0) {
    r.cpu_per_gb = (cpu_seconds() - cpu0) / (bulks * static_cast<double>(s.bytes) / 1e9);
  }
  r.delta = minus(counters_of(c), before);
  if (wanted("rtt")) {
    connection conn = connect_pair(c);
    r.rtt_us = round_trips(c, conn, s.warmup, s.rounds);
  }
  return r;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void enter_namespace() {
  if (::unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) {
    std::perror("link-tcp-bench: unshare(CLONE_NEWNET | CLONE_NEWNS) (needs root)");
    std::exit(1);
  }
  ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr);
  ::mount("sysfs", "/sys", "sysfs", 0, nullptr);
  sh("ip link set lo up");
  // Every run starts from scratch: the kernel would otherwise remember a peer's ssthresh and RTT
  // from the previous connection to it (measured: the "in" run after an "out" run went at half
  // speed, for the kernel's peers and lwIP's alike).
  sh("sysctl -qw net.ipv4.tcp_no_metrics_save=1");
}

// The kernel's side (10.77.N.1) and the user's side of driver N's link, offloads off.
void make_link(const std::string& driver, int n) {
  const std::string k = driver == "tap" ? "as_tap" + std::to_string(n) : "as_k" + std::to_string(n);
  if (driver == "tap") {
    sh("ip tuntap add dev " + k + " mode tap");
  } else {
    sh("ip link add as_u" + std::to_string(n) + " type veth peer name " + k);
    sh("ip link set as_u" + std::to_string(n) + " up");
  }
  sh("ethtool -K " + k + " tx off tso off gso off >/dev/null 2>&1 || true");
  sh("ip addr add 10.77." + std::to_string(n) + ".1/24 dev " + k + " && ip link set " + k + " up");
}

}  // namespace

int main(int argc, char** argv) {
  const settings s = parse(argc, argv);
  g_cc = s.cc;
  enter_namespace();
  peer_namespace other;
  // kernel <-> kernel across namespaces.
  sh("ip link add as_ka type veth peer name as_kb");
  sh("ip link set as_kb netns " + std::to_string(other.tid()));
  const std::string in_other = "nsenter --net=/proc/" + std::to_string(other.tid()) + "/ns/net ";
  sh("ethtool -K as_ka tx off tso off gso off >/dev/null");
  sh(in_other + "ethtool -K as_kb tx off tso off gso off >/dev/null");
  sh("ip addr add 10.77.9.1/24 dev as_ka && ip link set as_ka up");
  sh(in_other + "ip addr add 10.77.9.2/24 dev as_kb");
  sh(in_other + "ip link set as_kb up && " + in_other + "ip link set lo up");
  sh(in_other + "sysctl -qw net.ipv4.tcp_no_metrics_save=1");

  std::vector<contestant> contestants;
  if (s.kernel) {
    contestants.push_back({"kernel veth", "", "10.77.9.1", "10.77.9.2", nullptr, &other});
  }
  int n = 1;
  for (const std::string& entry : s.drivers) {
    // "driver" or "driver:key=value,...": keys for this contestant's spec only.
    const std::string d = entry.substr(0, entry.find(':'));
    const std::string keys =
        entry.find(':') == std::string::npos ? "" : "," + entry.substr(entry.find(':') + 1);
    ++n;
    make_link(d, n);
    const std::string user = d == "tap" ? "as_tap" + std::to_string(n) : "as_u" + std::to_string(n);
    contestant c{"lwip+" + entry,
                 d,
                 "10.77." + std::to_string(n) + ".2",
                 "10.77." + std::to_string(n) + ".1",
                 nullptr,
                 nullptr};
    c.host = anysock::make_backend("lwip+" + d + ":iface=" + user + ",ip=" + c.local_ip + "/24" +
                                   keys + s.extra);
    contestants.push_back(c);
  }
  sh("sleep 0.5");  // settle (ARP, MLD reports, link watchers)

  std::map<std::string, std::vector<sample>> results;
  for (int run = 0; run < s.repeat; ++run) {
    for (size_t k = 0; k < contestants.size(); ++k) {
      contestant& c = contestants[(k + static_cast<size_t>(run)) % contestants.size()];
      results[c.name].push_back(measure(c, s));
      std::fprintf(stderr, ".");
    }
  }
  std::fprintf(stderr, "\n");

  std::printf(
      "link-tcp-bench: %llu MiB per bulk run, %d round trips, median of %d runs; "
      "kernel congestion control: %s\n\n",
      static_cast<unsigned long long>(s.bytes >> 20), s.rounds, s.repeat,
      s.cc.empty() ? "the system's" : s.cc.c_str());
  std::printf(
      "| contestant | out, Gbit/s | in, Gbit/s | 64 B round trip, us | CPU s/GB | "
      "frames/flush | frames/rx burst | wake-ups/1000 frames |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  double kernel_out = 0, kernel_in = 0;
  for (const contestant& c : contestants) {
    const auto& v = results[c.name];
    std::vector<double> out, in, rtt, cpu;
    for (const sample& x : v) {
      out.push_back(x.out_gbps);
      in.push_back(x.in_gbps);
      rtt.push_back(x.rtt_us);
      cpu.push_back(x.cpu_per_gb);
    }
    if (!c.host) {
      kernel_out = median(out);
      kernel_in = median(in);
      std::printf("| %s | %.2f | %.2f | %.1f | %.2f | | | |\n", c.name.c_str(), median(out),
                  median(in), median(rtt), median(cpu));
      continue;
    }
    const auto& d = v[v.size() / 2].delta;  // one run's counters
    const double frames = static_cast<double>(d.frames_in + d.frames_out);
    auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
    std::printf("| %s | %.2f (%.2fx) | %.2f (%.2fx) | %.1f | %.2f | %.1f | %.1f | %.1f |\n",
                c.name.c_str(), median(out), ratio(kernel_out, median(out)), median(in),
                ratio(kernel_in, median(in)), median(rtt), median(cpu),
                ratio(static_cast<double>(d.frames_out), static_cast<double>(d.tx_flushes)),
                ratio(static_cast<double>(d.frames_in), static_cast<double>(d.rx_bursts)),
                ratio(static_cast<double>(d.wakeups) * 1000, frames));
  }
  std::printf(
      "\n(x): how many times slower than kernel veth. out: the anysock side sends; in: it "
      "receives.\n");
  for (contestant& c : contestants) c.host.reset();
  return 0;
}
