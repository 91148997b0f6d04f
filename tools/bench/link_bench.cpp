// link-bench: raw-frame rates of each link driver against the Linux kernel, in a private network
// namespace the program makes for itself (needs root). For every driver:
// - tx: the driver sends bursts of frames out of as_u0 (veth; as_tap0 for tap) as fast as it can;
//   "delivered" counts what the kernel's side received (its rx_packets counter).
// - rx: a generator thread sends out of the kernel's side (an AF_PACKET TX ring) as fast as it can;
//   the driver receives; "received" is what reached the driver's sink.
// The baseline in the same run is a plain AF_PACKET socket with one send()/recv() per frame.
// Usage: link-bench [--seconds S] [--size BYTES] [--burst N] [--drivers "tap;pcap;..."]
// (a driver may carry options after a colon, ';'-separated from the next: --drivers
// "af_xdp:xdp_mode=skb;af_packet")
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "link.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
namespace drivers = anysock::drivers;

struct settings {
  double seconds = 2.0;
  size_t size = 60;
  size_t burst = 64;
  std::vector<std::string> kinds{"tap", "pcap", "af_packet", "af_xdp"};
};

void run(const std::string& command) {
  std::string full = "PATH=/usr/sbin:/sbin:/usr/bin:/bin; " + command;
  if (std::system(full.c_str()) != 0) {
    std::fprintf(stderr, "link-bench: `%s` failed\n", command.c_str());
    std::exit(1);
  }
}

uint64_t counter(const std::string& iface, const char* name) {
  std::ifstream f("/sys/class/net/" + iface + "/statistics/" + name);
  uint64_t v = 0;
  f >> v;
  return v;
}

std::vector<uint8_t> test_frame(size_t size) {
  std::vector<uint8_t> f(size, 0x5a);
  std::memset(f.data(), 0xff, 6);  // broadcast
  const uint8_t src[6] = {0x02, 0x77, 0, 0, 0, 0x02};
  std::memcpy(f.data() + 6, src, 6);
  f[12] = 0x88;  // local experimental ethertype: the kernel counts and drops it
  f[13] = 0xb5;
  return f;
}

// Moves to a private network and mount namespace, with its own /sys, and builds the veth pair.
void enter_namespace() {
  if (::unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) {
    std::perror("link-bench: unshare(CLONE_NEWNET | CLONE_NEWNS) (needs root)");
    std::exit(1);
  }
  ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr);
  ::mount("sysfs", "/sys", "sysfs", 0, nullptr);
  std::ofstream("/proc/sys/net/ipv6/conf/all/disable_ipv6") << "1";
  std::ofstream("/proc/sys/net/ipv6/conf/default/disable_ipv6") << "1";
  run("ip link add as_u0 type veth peer name as_k0");
  run("ethtool -K as_k0 tx off tso off gso off >/dev/null; ethtool -K as_u0 tx off tso off gso off "
      ">/dev/null");
  run("ip link set as_u0 up && ip link set as_k0 up");
}

struct tx_result {
  double offered_pps;    // frames the driver accepted
  double delivered_pps;  // frames the kernel's side counted
};

// Sends bursts through `send_burst` (returns frames accepted) for the configured time.
tx_result measure_tx(const settings& s, const std::string& kernel_iface,
                     const std::function<size_t()>& send_burst) {
  uint64_t before = counter(kernel_iface, "rx_packets");
  uint64_t accepted = 0;
  auto start = clock_type::now();
  auto end = start + std::chrono::duration_cast<clock_type::duration>(
                         std::chrono::duration<double>(s.seconds));
  while (clock_type::now() < end) accepted += send_burst();
  double elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let the kernel drain its queues
  uint64_t after = counter(kernel_iface, "rx_packets");
  return {static_cast<double>(accepted) / elapsed, static_cast<double>(after - before) / elapsed};
}

size_t send_link_burst(drivers::link& l, const std::vector<drivers::tx_frame>& frames) {
  drivers::burst b = l.transmit(frames);
  int err = l.flush();
  if ((b.error != 0 && b.error != EAGAIN) || (err != 0 && err != EAGAIN)) {
    std::fprintf(stderr, "link-bench: %s: %s\n", l.description().c_str(),
                 std::strerror(b.error != 0 ? b.error : err));
    std::exit(1);
  }
  if (b.error == EAGAIN || err == EAGAIN) {
    pollfd p{l.fd(), POLLIN | POLLOUT, 0};
    ::poll(&p, 1, 1);
  }
  return b.frames;
}

struct rx_result {
  double received_pps;
  double generated_pps;
};

// A generator thread floods `kernel_iface` through an AF_PACKET TX ring while `receive_some`
// (returns frames received, waits briefly when none) runs for the configured time.
rx_result measure_rx(const settings& s, const std::string& kernel_iface,
                     const std::function<size_t()>& receive_some) {
  auto generator = drivers::open_link("af_packet", {{"iface", kernel_iface}, {"promisc", "0"}});
  std::vector<uint8_t> bytes = test_frame(s.size);
  std::vector<drivers::tx_frame> frames(s.burst, drivers::tx_frame(drivers::frame(bytes)));
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> generated{0};
  std::thread gen([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      generated.fetch_add(send_link_burst(*generator, frames), std::memory_order_relaxed);
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // reach a steady state first
  uint64_t received = 0;
  uint64_t gen_before = generated.load();
  auto start = clock_type::now();
  auto end = start + std::chrono::duration_cast<clock_type::duration>(
                         std::chrono::duration<double>(s.seconds));
  while (clock_type::now() < end) received += receive_some();
  double elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
  uint64_t gen_after = generated.load();
  stop = true;
  gen.join();
  return {static_cast<double>(received) / elapsed,
          static_cast<double>(gen_after - gen_before) / elapsed};
}

size_t receive_link(drivers::link& l) {
  size_t n = 0;
  drivers::burst b = l.receive(256, [&](drivers::frame f) { n += f.size() != 0; });
  if (b.error != 0) {
    std::fprintf(stderr, "link-bench: %s: %s\n", l.description().c_str(), std::strerror(b.error));
    std::exit(1);
  }
  if (b.frames == 0) {
    pollfd p{l.fd(), POLLIN, 0};
    ::poll(&p, 1, 5);
  }
  return n;
}

void print_row(const std::string& name, const tx_result& tx, const rx_result& rx, size_t size) {
  auto gbit = [&](double pps) { return pps * static_cast<double>(size) * 8 / 1e9; };
  std::printf("| %-44s | %10.0f | %10.0f | %7.2f | %10.0f | %10.0f | %7.2f |\n", name.c_str(),
              tx.offered_pps, tx.delivered_pps, gbit(tx.delivered_pps), rx.received_pps,
              rx.generated_pps, gbit(rx.received_pps));
  std::fflush(stdout);
}

// The baseline: one system call per frame on a plain AF_PACKET socket bound to as_u0.
void baseline(const settings& s) {
  int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
  int ignore = 1;
  ::setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &ignore, sizeof ignore);
  sockaddr_ll addr{};
  addr.sll_family = AF_PACKET;
  addr.sll_protocol = htons(ETH_P_ALL);
  addr.sll_ifindex = static_cast<int>(::if_nametoindex("as_u0"));
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  std::vector<uint8_t> bytes = test_frame(s.size);
  tx_result tx = measure_tx(s, "as_k0", [&] {
    size_t n = 0;
    for (size_t i = 0; i < s.burst; ++i) n += ::send(fd, bytes.data(), bytes.size(), 0) > 0;
    return n;
  });
  std::vector<uint8_t> buf(65536);
  rx_result rx = measure_rx(s, "as_k0", [&] {
    size_t n = 0;
    while (n < 256 && ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT) > 0) ++n;
    if (n == 0) {
      pollfd p{fd, POLLIN, 0};
      ::poll(&p, 1, 5);
    }
    return n;
  });
  ::close(fd);
  print_row("baseline: AF_PACKET send()/recv()", tx, rx, s.size);
}

// `spec` is a driver kind, optionally with options: "af_xdp:xdp_mode=skb,frames=8192".
void bench_driver(const settings& s, const std::string& spec) {
  std::string kind = spec.substr(0, spec.find(':'));
  bool tap = kind == "tap";
  std::string user_iface = tap ? "as_tap0" : "as_u0";
  std::string kernel_iface = tap ? "as_tap0" : "as_k0";
  drivers::link_options options{{"iface", user_iface}};
  if (spec.find(':') != std::string::npos) {
    std::stringstream list(spec.substr(spec.find(':') + 1));
    for (std::string kv; std::getline(list, kv, ',');) {
      options.emplace_back(kv.substr(0, kv.find('=')), kv.substr(kv.find('=') + 1));
    }
  }
  auto l = drivers::open_link(kind, options);
  if (tap) run("ip link set as_tap0 up");
  std::vector<uint8_t> bytes = test_frame(s.size);
  std::vector<drivers::tx_frame> frames(s.burst, drivers::tx_frame(drivers::frame(bytes)));
  tx_result tx = measure_tx(s, kernel_iface, [&] { return send_link_burst(*l, frames); });
  rx_result rx = measure_rx(s, kernel_iface, [&] { return receive_link(*l); });
  std::string name = l->description();
  if (options.size() > 1) name += spec.substr(spec.find(':'));
  print_row(name, tx, rx, s.size);
}

settings parse(int argc, char** argv) {
  settings s;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (a == "--seconds" && v != nullptr) {
      s.seconds = std::atof(v);
    } else if (a == "--size" && v != nullptr) {
      s.size = std::max<size_t>(60, std::strtoul(v, nullptr, 10));
    } else if (a == "--burst" && v != nullptr) {
      s.burst = std::max<size_t>(1, std::strtoul(v, nullptr, 10));
    } else if (a == "--drivers" && v != nullptr) {
      s.kinds.clear();
      std::stringstream list(v);
      for (std::string k; std::getline(list, k, ';');) s.kinds.push_back(k);
    } else {
      std::fprintf(stderr,
                   "usage: link-bench [--seconds S] [--size BYTES] [--burst N] "
                   "[--drivers 'tap;pcap;af_packet;af_xdp:xdp_mode=skb']\n");
      std::exit(2);
    }
    ++i;
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  settings s = parse(argc, argv);
  enter_namespace();
  std::printf("link-bench: %zu-byte frames, bursts of %zu, %.1f s per measurement\n\n", s.size,
              s.burst, s.seconds);
  std::printf("| %-44s | %10s | %10s | %7s | %10s | %10s | %7s |\n", "driver", "tx pps",
              "delivered", "Gbit/s", "rx pps", "offered", "Gbit/s");
  std::printf("|%s|------------|------------|---------|------------|------------|---------|\n",
              std::string(46, '-').c_str());
  baseline(s);
  for (const std::string& kind : s.kinds) {
    try {
      bench_driver(s, kind);
    } catch (const std::exception& e) {
      std::printf("| %-44s | %s\n", kind.c_str(), e.what());
    }
  }
  return 0;
}
