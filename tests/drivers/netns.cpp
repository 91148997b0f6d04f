#include "netns.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

extern char** environ;

namespace anysock::testing {
namespace {

constexpr const char* kMarker = "ANYSOCK_DRIVER_TESTS_NETNS";

// Writes "text<number>\n" to stderr with async-signal-safe calls only (we are a forked child).
void say(const char* text, int number) {
  char digits[16];
  int n = 0;
  unsigned v = static_cast<unsigned>(number);
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0 && n < 15);
  [[maybe_unused]] ssize_t w = ::write(2, text, std::strlen(text));
  while (n > 0) w = ::write(2, &digits[--n], 1);
  w = ::write(2, "\n", 1);
}

std::vector<char*> environment_with(std::vector<std::string>& storage, const std::string& extra) {
  std::vector<char*> env;
  for (char** e = environ; *e != nullptr; ++e) env.push_back(*e);
  storage.push_back(extra);
  env.push_back(storage.back().data());
  env.push_back(nullptr);
  return env;
}

void write_file(const char* path, const char* text) {
  std::ofstream f(path);
  f << text;
}

}  // namespace

bool in_private_namespace() {
  const char* v = std::getenv(kMarker);
  return v != nullptr && std::strcmp(v, "1") == 0;
}

std::string namespace_unavailable_reason() {
  return "needs root and network namespaces (unshare(CLONE_NEWNET | CLONE_NEWNS) failed; the "
         "reason is on stderr): run as root, e.g. in CI";
}

int run_tests_in_namespace(int argc, char** argv) {
  bool listing = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--gtest_list_tests", 18) == 0) listing = true;
  }
  if (listing || std::getenv(kMarker) != nullptr) return -1;  // run the tests in this process

  std::vector<std::string> storage;
  storage.reserve(2);
  std::vector<char*> inside = environment_with(storage, std::string(kMarker) + "=1");
  std::vector<char*> outside = environment_with(storage, std::string(kMarker) + "=unavailable");
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    char** env = inside.data();
    if (::unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) {
      say("driver tests: unshare(CLONE_NEWNET | CLONE_NEWNS) failed, errno ", errno);
      env = outside.data();
    } else {
      // Keep our mounts to ourselves, and give this namespace its own /sys (its interfaces).
      ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr);
      if (::mount("sysfs", "/sys", "sysfs", 0, nullptr) != 0) {
        say("driver tests: mounting sysfs failed, errno ", errno);
      }
    }
    ::execve("/proc/self/exe", argv, env);
    say("driver tests: re-executing failed, errno ", errno);
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  std::fprintf(stderr, "driver tests: the test process died of signal %d\n", WTERMSIG(status));
  return 128 + WTERMSIG(status);
}

std::string shell(const std::string& command) {
  std::string full = "PATH=/usr/sbin:/sbin:/usr/bin:/bin; { " + command + " ; } 2>&1";
  FILE* p = ::popen(full.c_str(), "r");
  if (p == nullptr) return command + ": popen failed";
  std::string output;
  char buf[256];
  while (std::fgets(buf, sizeof buf, p) != nullptr) output += buf;
  int status = ::pclose(p);
  if (status == 0) return "";
  return "`" + command + "` failed (status " + std::to_string(status) + "): " + output;
}

std::array<uint8_t, 6> sysfs_mac(const std::string& iface) {
  std::ifstream f("/sys/class/net/" + iface + "/address");
  std::string text;
  std::getline(f, text);
  std::array<uint8_t, 6> mac{};
  unsigned b[6] = {};
  if (std::sscanf(text.c_str(), "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) ==
      6) {
    for (int i = 0; i < 6; ++i) mac[i] = static_cast<uint8_t>(b[i]);
  }
  return mac;
}

kernel_socket::kernel_socket(const std::string& iface, uint16_t ethertype)
    : fd_(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ethertype))),
      ifindex_(static_cast<int>(::if_nametoindex(iface.c_str()))) {
  int size = 16 << 20;
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
  sockaddr_ll addr{};
  addr.sll_family = AF_PACKET;
  addr.sll_protocol = htons(ethertype);
  addr.sll_ifindex = ifindex_;
  ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
}

kernel_socket::~kernel_socket() {
  if (fd_ >= 0) ::close(fd_);
}

bool kernel_socket::send(const std::vector<uint8_t>& frame) {
  return ::send(fd_, frame.data(), frame.size(), 0) == static_cast<ssize_t>(frame.size());
}

std::vector<std::vector<uint8_t>> kernel_socket::receive(size_t count, double seconds) {
  std::vector<std::vector<uint8_t>> frames;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  std::vector<uint8_t> buf(70000);
  while (frames.size() < count) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    ssize_t n = ::recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n > 0) frames.emplace_back(buf.begin(), buf.begin() + n);
  }
  return frames;
}

void prepare_namespace() {
  // IPv6 router solicitations and MLD reports would be background noise on every link.
  write_file("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
  write_file("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
  (void)shell("ip link set lo up");
}

}  // namespace anysock::testing
