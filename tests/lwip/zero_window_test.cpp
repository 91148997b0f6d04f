// Full receive windows: when neither application reads, both peers' receive windows close, and
// the connection must stay idle until one of them reads (as with kernel sockets), not keep the
// engine busy. The scenario runs in a child process, so a stack that never returns fails the test
// after a time limit instead of hanging the test run.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <thread>

#include "lwip_support.hpp"

namespace anysock::testing {
namespace {

class ZeroWindow : public LwipTest {};

// Runs `body` in a child process; "" when it returned 0 within `limit` seconds, else what went
// wrong (its exit code, or that it was still running and was killed).
std::string run_in_child(const std::function<int()>& body, double limit) {
  const pid_t pid = fork();
  if (pid < 0) return "fork failed";
  if (pid == 0) {
    int code = 100;
    try {
      code = body();
    } catch (...) {
      code = 101;
    }
    _exit(code);
  }
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::duration<double>(limit);
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) != pid) {
    if (std::chrono::steady_clock::now() > give_up) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return "still running after " + std::to_string(limit) + " s (killed)";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  return "killed by signal " + std::to_string(WTERMSIG(status));
}

// a and b, connected with TCP_NODELAY, each send 1 KiB pieces without blocking until their send
// buffer is full, while nobody reads (so each fills the other's receive window, exactly: the
// windows are multiples of 1 KiB), then each reads what the other sent. Returns 0 on success,
// else the step that failed.
int fill_both_windows_then_read() {
  auto a = make_backend("lwip+sim:host=a,link=zw,ip=10.72.0.1/24");
  auto b = make_backend("lwip+sim:host=b,link=zw,ip=10.72.0.2/24");
  socket l(*a, AF_INET, SOCK_STREAM);
  l.bind({"10.72.0.1", 0});
  l.listen(1);
  l.settimeout(kGenerousWait);
  socket on_b(*b, AF_INET, SOCK_STREAM);
  on_b.settimeout(kGenerousWait);
  on_b.connect({"10.72.0.1", l.getsockname().port});
  socket on_a = l.accept().first;
  socket* ends[2] = {&on_a, &on_b};
  size_t sent[2] = {0, 0};
  const std::string piece(1024, 'w');
  for (int i = 0; i < 2; ++i) {
    ends[i]->setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
    ends[i]->setblocking(false);
    while (sent[i] < (size_t{64} << 20)) {  // a bound, far above any window plus send buffer
      try {
        sent[i] += ends[i]->send(piece);
      } catch (const error& e) {
        if (e.code().value() != EAGAIN) return 10 + i;
        break;
      }
    }
  }
  for (int i = 0; i < 2; ++i) {
    ends[i]->settimeout(kGenerousWait);
    size_t got = 0;
    while (got < sent[1 - i]) {
      const std::string part = ends[i]->recv(1 << 20);
      if (part.empty()) return 20 + i;
      got += part.size();
    }
  }
  return 0;
}

}  // namespace

TEST_F(ZeroWindow, BothPeersFillingEachOthersReceiveWindowLeavesTheEngineFreeToFinish) {
  ASSERT_TRUE(lwip::read_counters().links.empty()) << "fork needs a process with no engine";
  EXPECT_EQ(run_in_child(fill_both_windows_then_read, 10.0), "");
}

}  // namespace anysock::testing
