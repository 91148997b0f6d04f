// Deleting the interface under an lwIP host: every thread blocked in a call on it (recv, recvfrom,
// accept, select) wakes with ENETDOWN within 2 s (their own timeouts), every later call fails with
// ENETDOWN, and nothing crashes or hangs. On every driver, in the test's own namespace.
#include <gtest/gtest.h>
#include <poll.h>

#include <chrono>
#include <string>
#include <thread>

#include "anysock/socket.hpp"
#include "links_support.hpp"

namespace anysock::testing {
namespace {

// Longer than the host needs to go down: a blocked call that sees its timeout instead of
// ENETDOWN shows the deletion went unnoticed.
constexpr double kNoticeWithin = 2.0;

class InterfaceGone : public LinkTest, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override { open(GetParam()); }
};

// Runs `call` on a thread; the errno it raised (0 if none) and how long it took, once joined.
class blocked_call {
 public:
  template <class Call>
  explicit blocked_call(Call call)
      : thread_([this, call] {
          const auto start = std::chrono::steady_clock::now();
          errno_ = errno_of(call);
          seconds_ =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        }) {}
  ~blocked_call() {
    if (thread_.joinable()) thread_.join();
  }
  int error() {
    thread_.join();
    return errno_;
  }
  double seconds() const { return seconds_; }

 private:
  int errno_ = -1;
  double seconds_ = 0;
  std::thread thread_;
};

TEST_P(InterfaceGone, BlockedCallsRaiseEnetdownAndLaterCallsToo) {
  // A TCP connection to the kernel, a UDP socket and a listener, each with a thread blocked in it.
  socket kernel_listener(kernel_backend(), AF_INET, SOCK_STREAM);
  kernel_listener.bind({link_.kernel_ip4(), 5010});
  kernel_listener.listen(1);
  kernel_listener.settimeout(kGenerousWait);
  socket conn(*host_, AF_INET, SOCK_STREAM);
  conn.settimeout(kGenerousWait);
  conn.connect({link_.kernel_ip4(), 5010});
  auto [kernel_side, peer] = kernel_listener.accept();
  conn.sendall("before");
  kernel_side.settimeout(kGenerousWait);
  EXPECT_EQ(kernel_side.recv(100), "before");

  socket udp(*host_, AF_INET, SOCK_DGRAM);
  udp.bind({link_.lwip_ip4(), 5011});
  socket listener(*host_, AF_INET, SOCK_STREAM);
  listener.bind({"", 5012});
  listener.listen(1);
  for (socket* s : {&conn, &udp, &listener}) s->settimeout(kNoticeWithin);

  blocked_call recv_call([&] { conn.recv(100); });
  blocked_call recvfrom_call([&] { udp.recvfrom(100); });
  blocked_call accept_call([&] { listener.accept(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let them block (not required)
  ASSERT_EQ(shell("ip link del " + link_.user_iface), "");

  EXPECT_EQ(recv_call.error(), ENETDOWN) << "recv after " << recv_call.seconds() << " s";
  EXPECT_EQ(recvfrom_call.error(), ENETDOWN) << "recvfrom after " << recvfrom_call.seconds();
  EXPECT_EQ(accept_call.error(), ENETDOWN) << "accept after " << accept_call.seconds() << " s";

  // Every later call on the host says the same, at once.
  EXPECT_EQ(errno_of([&] { conn.send("after"); }), ENETDOWN);
  EXPECT_EQ(errno_of([&] { conn.recv(100); }), ENETDOWN);
  EXPECT_EQ(errno_of([&] { udp.sendto("x", {link_.kernel_ip4(), 9}); }), ENETDOWN);
  EXPECT_EQ(errno_of([&] { listener.accept(); }), ENETDOWN);
  EXPECT_EQ(errno_of([&] { socket(*host_, AF_INET, SOCK_STREAM); }), ENETDOWN);
  conn.close();
  udp.close();
  listener.close();
}

TEST_P(InterfaceGone, BlockedSelectRaisesEnetdown) {
  socket udp(*host_, AF_INET, SOCK_DGRAM);
  udp.bind({link_.lwip_ip4(), 5013});
  blocked_call select_call([&] {
    poller p;
    p.add(udp, POLLIN);
    p.poll(kNoticeWithin);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_EQ(shell("ip link del " + link_.user_iface), "");
  EXPECT_EQ(select_call.error(), ENETDOWN) << "after " << select_call.seconds() << " s";
}

INSTANTIATE_TEST_SUITE_P(Drivers, InterfaceGone, ::testing::ValuesIn(all_drivers()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace anysock::testing
