// tshark (Wireshark's reader, an independent implementation) reads the simulator's captures: it
// counts exactly the packets the world says its links delivered, finds none malformed, and on
// links without corruption none with a bad IPv4, TCP, UDP or ICMP checksum. With corruption on it
// does find bad checksums, and no more than the world corrupted: the check really checks.
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <sstream>

#include "sim_support.hpp"

namespace anysock::sim_testing {
namespace {

// The full path of `program` found through PATH, or "".
std::string find_in_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct command_output {
  int status = -1;  // exit status
  std::string out;  // standard output
  std::string err;  // standard error
};

command_output run_command(const std::string& command, const temp_dir& dir) {
  const std::string err_file = dir.file("stderr.txt");
  command_output r;
  FILE* p = ::popen((command + " 2>" + quote(err_file)).c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = read_file(err_file);
  return r;
}

size_t lines(const std::string& text) {
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

class SimTshark : public ::testing::Test {
 protected:
  void SetUp() override {
    tshark_ = find_in_path("tshark");
    ASSERT_NE(tshark_, "") << "tshark is not on PATH: it is a required package of the test suite "
                              "(Debian: apt-get install tshark; tools/lib/setup.sh lists it)";
  }

  // Frame numbers of the packets of `pcap` matching display filter `filter` ("" = every packet),
  // one per line, with checksum validation on.
  std::string frames(const std::string& pcap, const std::string& filter) {
    std::string cmd = quote(tshark_) + " -n -r " + quote(pcap) +
                      " -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE"
                      " -o udp.check_checksum:TRUE -T fields -e frame.number";
    if (!filter.empty()) cmd += " -Y " + quote(filter);
    const command_output r = run_command(cmd, dir_);
    EXPECT_EQ(r.status, 0) << cmd << "\n" << r.err;
    return r.out;
  }

  // A world of three hosts with TCP streams over IPv4 and IPv6 and UDP datagrams (some larger
  // than the MTU, so fragmented), under loss, reordering and jitter, plus `corrupt`.
  sim::stats captured_world(const std::string& pcap, double corrupt, uint64_t seed) {
    sim::world w(seed);
    w.capture(pcap);
    sim::host& h1 = w.add_host("h1");
    sim::host& h2 = w.add_host("h2");
    sim::host& h3 = w.add_host("h3");
    sim::link_config c;
    c.loss = 0.02;
    c.delay = 0.003;
    c.jitter = 0.001;
    c.reorder = 0.05;
    c.corrupt = corrupt;
    w.set_default_link(c);
    sim::link_config dup = c;
    dup.duplicate = corrupt > 0 ? 0 : 0.05;  // a corrupted copy would count twice
    w.set_link(h2, h3, dup);
    for (const std::string& to : {h1.ip(), h1.ip6()}) {
      h3.spawn([to] {
        socket u(to.find(':') == std::string::npos ? AF_INET : AF_INET6, SOCK_DGRAM);
        for (size_t size : {1, 100, 1000, 1400, 3000, 9000})
          u.sendto(std::string(size, 'u'), {to, 9});
      });
    }
    run_traffic(w, {{.id = 1,
                     .kind = stream_kind::upload,
                     .client = "h2",
                     .server = "h1",
                     .dial = h1.ip(),
                     .bytes = 50'000,
                     .deadline = 60},
                    {.id = 2,
                     .kind = stream_kind::download,
                     .client = "h3",
                     .server = "h1",
                     .dial = h1.ip6(),
                     .bytes = 50'000,
                     .deadline = 60},
                    {.id = 3,
                     .kind = stream_kind::exchanges,
                     .client = "h3",
                     .server = "h2",
                     .dial = "h2",
                     .exchanges = 5,
                     .deadline = 60}});
    return w.stats();
  }

  std::string tshark_;
  temp_dir dir_;
};

}  // namespace

TEST_F(SimTshark, CountsTheWorldsPacketsAndFindsNoBadChecksumWithoutCorruption) {
  const std::string pcap = dir_.file("clean.pcap");
  const sim::stats s = captured_world(pcap, 0, 71);
  ASSERT_GT(s.delivered, 0u);
  EXPECT_EQ(s.corrupted, 0u);
  EXPECT_EQ(lines(frames(pcap, "")), s.delivered);
  EXPECT_GT(lines(frames(pcap, "ip")), 0u);
  EXPECT_GT(lines(frames(pcap, "ipv6")), 0u);
  EXPECT_GT(lines(frames(pcap, "tcp")), 0u);
  EXPECT_GT(lines(frames(pcap, "udp")), 0u);
  EXPECT_EQ(frames(pcap, "_ws.malformed || _ws.expert.severity == error"), "");
  EXPECT_EQ(frames(pcap,
                   "ip.checksum.status == 0 || tcp.checksum.status == 0 || "
                   "udp.checksum.status == 0 || icmp.checksum.status == 0 || "
                   "icmpv6.checksum.status == 0"),
            "")
      << "status 0 is \"Bad\"";
}

TEST_F(SimTshark, FindsBadChecksumsOnlyWhereTheWorldCorruptedPackets) {
  const std::string pcap = dir_.file("corrupt.pcap");
  const sim::stats s = captured_world(pcap, 0.2, 72);
  ASSERT_GT(s.corrupted, 0u);
  EXPECT_EQ(lines(frames(pcap, "")), s.delivered);
  const size_t bad = lines(frames(pcap,
                                  "ip.checksum.status == 0 || tcp.checksum.status == 0 || "
                                  "udp.checksum.status == 0 || icmpv6.checksum.status == 0"));
  std::cout << "[ info     ] " << s.delivered << " packets delivered, " << s.corrupted
            << " corrupted, " << bad << " with a bad checksum according to tshark\n";
  EXPECT_GT(bad, 0u);
  EXPECT_LE(bad, s.corrupted);
}

}  // namespace anysock::sim_testing
