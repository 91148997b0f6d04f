#include "links_support.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "anysock/lwip.hpp"
#include "sha256.hpp"

extern char** environ;

namespace anysock::testing {

std::string test_link::spec(const std::string& extra) const {
  return "lwip+" + driver + ":iface=" + user_iface + ",ip=" + lwip_ip4() +
         "/24,gw=" + kernel_ip4() + ",ip6=" + lwip_ip6() + "/64" + extra;
}

test_link link_for(const std::string& driver) {
  test_link l;
  l.driver = driver;
  if (driver == "tap") {
    l.n = 1;
    l.kernel_iface = l.user_iface = "as_tap0";
    return l;
  }
  l.n = driver == "pcap" ? 2 : driver == "af_packet" ? 3 : 4;
  l.kernel_iface = "as_k" + std::to_string(l.n);
  l.user_iface = "as_u" + std::to_string(l.n);
  return l;
}

std::vector<std::string> all_drivers() { return {"tap", "pcap", "af_packet", "af_xdp"}; }

std::string create_kernel_side(const test_link& l) {
  const std::string k = l.kernel_iface;
  std::string failed;
  if (l.driver == "tap") {
    failed = shell("ip tuntap add dev " + k + " mode tap");
  } else {
    failed = shell("ip link add " + l.user_iface + " type veth peer name " + k);
    // The user side carries no kernel address at all (the lwIP host owns the link).
    if (failed.empty()) {
      failed = shell("sysctl -qw net.ipv6.conf." + l.user_iface + ".disable_ipv6=1");
    }
    if (failed.empty()) failed = shell("ip link set " + l.user_iface + " up");
  }
  if (!failed.empty()) return failed;
  // Without this the kernel hands the link frames larger than the MTU with partial checksums.
  failed = shell("ethtool -K " + k + " tx off tso off gso off >/dev/null");
  if (!failed.empty() && l.driver != "tap") return failed;
  return shell("ip addr add " + l.kernel_ip4() + "/24 dev " + k + " && ip addr add " +
               l.kernel_ip6() + "/64 dev " + k + " nodad && ip link set " + k + " up");
}

void prepare_links_namespace() {
  (void)shell("ip link set lo up");
  (void)shell("sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0");
}

void LinkTest::open(const std::string& driver, const std::string& extra_keys) {
  if (!in_private_namespace()) GTEST_SKIP() << namespace_unavailable_reason();
  link_ = link_for(driver);
  ASSERT_EQ(create_kernel_side(link_), "");
  host_ = make_backend(link_.spec(extra_keys));
}

void LinkTest::TearDown() {
  if (host_) {
    EXPECT_EQ(lwip::leak_report(), "") << "lwIP memory still in use";
  }
  host_.reset();
  // ctest runs each test in a namespace of its own; a whole binary run shares one.
  if (!link_.kernel_iface.empty())
    (void)shell("ip link del " + link_.kernel_iface + " 2>/dev/null");
}

// ---- child processes -------------------------------------------------------------------------

child::child(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  // Everything the child needs is built before fork (it may only call async-signal-safe code).
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_strings(env);
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  const char* path_env = "PATH=/usr/sbin:/sbin:/usr/bin:/bin";
  bool has_path = false;
  for (char* e : envp) has_path = has_path || (e != nullptr && std::strncmp(e, "PATH=", 5) == 0);
  if (!has_path) envp.insert(envp.end() - 1, const_cast<char*>(path_env));

  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return;
  pid_ = ::fork();
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::dup2(pipefd[1], 1);
    ::dup2(pipefd[1], 2);
    ::execvpe(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  ::close(pipefd[1]);
  out_ = pipefd[0];
  ::fcntl(out_, F_SETFL, O_NONBLOCK);
}

child::~child() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    if (wait(2.0) == -1) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  if (out_ >= 0) ::close(out_);
}

bool child::read_some(int timeout_ms) {
  pollfd p{out_, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return false;
  char buf[4096];
  ssize_t n = ::read(out_, buf, sizeof buf);
  if (n <= 0) return false;
  output_.append(buf, static_cast<size_t>(n));
  return true;
}

std::optional<std::string> child::wait_for_line(const std::string& text, double seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (true) {
    while (true) {
      size_t nl = output_.find('\n', scanned_);
      if (nl == std::string::npos) break;
      std::string line = output_.substr(scanned_, nl - scanned_);
      scanned_ = nl + 1;
      if (line.find(text) != std::string::npos) return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || out_ < 0) return std::nullopt;
    read_some(static_cast<int>(left.count()));
  }
}

int child::wait(double seconds) {
  if (pid_ <= 0) return -1;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (true) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      while (read_some(0)) {
      }
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (std::chrono::steady_clock::now() > deadline) return -1;
    if (!read_some(20)) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::pair<int, std::string> run(const std::string& command) {
  std::string full = "PATH=/usr/sbin:/sbin:/usr/bin:/bin; " + command;
  FILE* p = ::popen(full.c_str(), "r");
  if (p == nullptr) return {-1, ""};
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string sha256_hex(const std::string& data) {
  examples::sha256 h;
  h.update(data.data(), data.size());
  return h.hex();
}

}  // namespace anysock::testing
