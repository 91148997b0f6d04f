// Run-to-completion mode (engine=poll) on real links: no engine thread. A thread blocked in a
// socket call receives from the link itself, and a program that only makes non-blocking calls
// moves data by calling anysock::lwip::poll() between them. On every driver.
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include "anysock/lwip.hpp"
#include "anysock/socket.hpp"
#include "links_support.hpp"

namespace anysock::testing {
namespace {

using clock = std::chrono::steady_clock;

class PollModeLink : public LinkTest, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override { open(GetParam(), ",engine=poll"); }
};

// Nothing drives lwIP unless a thread is inside one of its calls: the lwIP side blocks in every
// step until the kernel confirms it has everything.
TEST_P(PollModeLink, BlockingCallsReceiveFromTheLinkThemselves) {
  const std::string a = pattern(4 << 20, 31), b = pattern(4 << 20, 32);
  socket listener(kernel_backend(), AF_INET, SOCK_STREAM);
  listener.bind({link_.kernel_ip4(), 5020});
  listener.listen(1);
  listener.settimeout(kGenerousWait);
  std::string kernel_got;
  std::thread kernel([&] {
    try {
      auto [s, peer] = listener.accept();
      s.settimeout(kGenerousWait);
      s.sendall(a);
      while (kernel_got.size() < b.size()) {
        std::string piece = s.recv(1 << 16);
        if (piece.empty()) break;
        kernel_got += piece;
      }
      s.sendall("done");
    } catch (const std::exception& e) {
      ADD_FAILURE() << "kernel side: " << e.what();
    }
  });
  socket client(*host_, AF_INET, SOCK_STREAM);
  client.settimeout(kGenerousWait);
  client.connect({link_.kernel_ip4(), 5020});
  std::string got;
  while (got.size() < a.size()) {
    std::string piece = client.recv(1 << 16);
    if (piece.empty()) break;
    got += piece;
  }
  client.sendall(b);
  EXPECT_EQ(client.recv(16), "done");
  kernel.join();
  EXPECT_TRUE(got == a) << got.size() << " bytes of " << a.size() << " arrived intact?";
  EXPECT_TRUE(kernel_got == b) << kernel_got.size() << " bytes of " << b.size();
}

TEST_P(PollModeLink, NonBlockingCallsMoveDataBetweenCallsOfLwipPoll) {
  socket listener(*host_, AF_INET, SOCK_STREAM);
  listener.setblocking(false);
  listener.bind({"", 5021});
  listener.listen(1);
  socket kernel_client(kernel_backend(), AF_INET, SOCK_STREAM);
  kernel_client.setblocking(false);
  ASSERT_EQ(kernel_client.connect_ex({link_.lwip_ip4(), 5021}), EINPROGRESS);

  const std::string message = pattern(256 << 10, 21);
  std::optional<socket> conn;
  std::string got;
  size_t sent = 0;
  const auto give_up = clock::now() + std::chrono::seconds(30);
  while (got.size() < message.size() && clock::now() < give_up) {
    lwip::poll();
    if (!conn) {
      try {
        conn.emplace(listener.accept().first);
        conn->setblocking(false);
      } catch (const error& e) {
        ASSERT_EQ(e.code().value(), EAGAIN) << e.what();
      }
    }
    if (sent < message.size()) {
      try {
        sent += kernel_client.send(std::string_view(message).substr(sent, 65536));
      } catch (const error& e) {
        ASSERT_TRUE(e.code().value() == EAGAIN || e.code().value() == ENOTCONN) << e.what();
      }
    }
    if (conn) {
      try {
        got += conn->recv(65536);
      } catch (const error& e) {
        ASSERT_EQ(e.code().value(), EAGAIN) << e.what();
      }
    }
  }
  EXPECT_EQ(got.size(), message.size());
  EXPECT_TRUE(got == message);
}

INSTANTIATE_TEST_SUITE_P(Drivers, PollModeLink, ::testing::ValuesIn(all_drivers()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace anysock::testing
