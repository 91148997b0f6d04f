// lwIP memory exhaustion surfaces as errors (ENOBUFS / ENOMEM), never as a crash or a hang, and
// everything is released once the sockets are closed.
#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <vector>

#include "anysock/lwip.hpp"
#include "anysock/socket.hpp"

namespace anysock {
namespace {

bool is_memory_error(int e) { return e == ENOBUFS || e == ENOMEM; }

uint64_t heap_in_use() {
  for (const auto& p : lwip::read_counters().pools) {
    if (p.name == "heap") return p.used;
  }
  return 0;
}

class MemoryLimit : public ::testing::Test {
 protected:
  void SetUp() override {
    a_ = make_backend("lwip+sim:host=mem-a,link=memory");
    b_ = make_backend("lwip+sim:host=mem-b,link=memory");
  }
  void TearDown() override {
    lwip::set_memory_limit(0);
    EXPECT_EQ(lwip::leak_report(), "");
  }
  std::shared_ptr<backend> a_, b_;
};

TEST_F(MemoryLimit, OpeningSocketsPastTheLimitRaisesEnobufsAndClosingThemReleasesEverything) {
  socket server(*a_, AF_INET, SOCK_STREAM);
  server.bind({"", 0});
  server.listen(200);
  const uint16_t port = server.getsockname().port;

  lwip::set_memory_limit(heap_in_use() + 32 * 1024);
  std::vector<socket> clients;
  int failure = 0;
  for (int i = 0; i < 2000 && failure == 0; ++i) {
    try {
      socket c(*b_, AF_INET, SOCK_STREAM);
      c.settimeout(0.0);
      int r = c.connect_ex({"mem-a", port});
      if (r != EINPROGRESS) failure = r;
      clients.push_back(std::move(c));
    } catch (const error& e) {
      failure = e.code().value();
    }
  }
  EXPECT_TRUE(is_memory_error(failure)) << "errno " << failure;
  EXPECT_GT(lwip::read_counters().memory_failures, 0u);

  lwip::set_memory_limit(0);
  clients.clear();
  server.close();
  EXPECT_EQ(lwip::leak_report(), "");

  // The stack works normally again.
  socket again(*a_, AF_INET, SOCK_STREAM);
  again.bind({"", 0});
  again.listen();
  socket c(*b_, AF_INET, SOCK_STREAM);
  c.connect({"mem-a", again.getsockname().port});
  auto [s, peer] = again.accept();
  c.sendall("still fine");
  EXPECT_EQ(s.recv(64), "still fine");
}

TEST_F(MemoryLimit, AUdpDatagramThatCannotBeAllocatedRaisesEnobufs) {
  socket rx(*a_, AF_INET, SOCK_DGRAM);
  rx.bind({"", 0});
  socket tx(*b_, AF_INET, SOCK_DGRAM);
  tx.bind({"", 0});
  lwip::set_memory_limit(heap_in_use() + 1024);
  const std::string big(60000, 'x');
  int failure = 0;
  try {
    tx.sendto(big, {"mem-a", rx.getsockname().port});
  } catch (const error& e) {
    failure = e.code().value();
  }
  EXPECT_TRUE(is_memory_error(failure)) << "errno " << failure;
  lwip::set_memory_limit(0);
  tx.sendto("small", {"mem-a", rx.getsockname().port});
  EXPECT_EQ(rx.recvfrom(64).first, "small");
}

TEST_F(MemoryLimit, ASendWhenNothingCanBeAllocatedRaisesEnobufsInsteadOfWaitingForever) {
  socket server(*a_, AF_INET, SOCK_STREAM);
  server.bind({"", 0});
  server.listen();
  socket c(*b_, AF_INET, SOCK_STREAM);
  c.connect({"mem-a", server.getsockname().port});
  auto [s, peer] = server.accept();
  lwip::set_memory_limit(heap_in_use() + 256);
  int failure = 0;
  try {
    c.sendall(std::string(100000, 'y'));
  } catch (const error& e) {
    failure = e.code().value();
  }
  EXPECT_TRUE(is_memory_error(failure)) << "errno " << failure;
  lwip::set_memory_limit(0);
}

}  // namespace
}  // namespace anysock
