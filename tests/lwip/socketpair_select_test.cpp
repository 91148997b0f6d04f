// socketpair() on an lwIP host (a TCP pair over its loopback), and select/poller over kernel and
// lwIP sockets at once: whichever kind becomes ready wakes the wait and is the only one reported.
#include <chrono>
#include <optional>
#include <thread>

#include "lwip_support.hpp"

namespace anysock::testing {
namespace {

class LwipSocketpair : public LwipTest {
 protected:
  std::shared_ptr<backend> a_ = make_backend("lwip+sim:host=a,link=pair");
};

class MixedSelect : public LwipTest {
 protected:
  void SetUp() override {
    {
      backend_scope scope(kernel_backend());
      auto [r, w] = socketpair();
      k_reader_.emplace(std::move(r));
      k_writer_.emplace(std::move(w));
    }
    socket l(*a_, AF_INET, SOCK_STREAM);
    l.bind({"10.65.0.1", 0});
    l.listen(1);
    l.settimeout(kGenerousWait);
    lw_writer_.emplace(*b_, AF_INET, SOCK_STREAM);
    lw_writer_->settimeout(kGenerousWait);
    lw_writer_->connect({"10.65.0.1", l.getsockname().port});
    lw_reader_.emplace(l.accept().first);
    lw_reader_->settimeout(kGenerousWait);
    k_reader_->settimeout(kGenerousWait);
  }

  void TearDown() override {
    lw_reader_.reset();
    lw_writer_.reset();
    LwipTest::TearDown();
  }

  // Writes `data` to `s` from another thread after a short pause, so the wait is already asleep.
  // A failed write shows as nothing becoming ready.
  static std::jthread write_later(socket& s, std::string data) {
    return std::jthread([&s, data] {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      try {
        s.sendall(data);
      } catch (const std::exception&) {
      }
    });
  }

  std::shared_ptr<backend> a_ = make_backend("lwip+sim:host=a,link=mixed,ip=10.65.0.1/24");
  std::shared_ptr<backend> b_ = make_backend("lwip+sim:host=b,link=mixed,ip=10.65.0.2/24");
  std::optional<socket> k_reader_, k_writer_;    // kernel socketpair
  std::optional<socket> lw_reader_, lw_writer_;  // lwIP connection from b to a
};

}  // namespace

TEST_F(LwipSocketpair, SocketpairInAHostsScopeIsAConnectedTcpPairOverItsLoopback) {
  backend_scope scope(*a_);
  auto [x, y] = socketpair();
  EXPECT_EQ(&x.get_backend(), a_.get());
  EXPECT_EQ(&y.get_backend(), a_.get());
  EXPECT_EQ(x.family(), AF_INET);
  EXPECT_EQ(x.type(), SOCK_STREAM);
  EXPECT_EQ(x.getsockname().host, "127.0.0.1");
  EXPECT_EQ(x.getpeername(), y.getsockname());
  EXPECT_EQ(y.getpeername(), x.getsockname());
  x.settimeout(kGenerousWait);
  y.settimeout(kGenerousWait);
  const std::string there = pattern(300000, 3), back = pattern(200000, 4);
  std::jthread sender([&] { x.sendall(there); });
  std::string got;
  while (got.size() < there.size()) got += y.recv(65536);
  sender.join();
  EXPECT_EQ(got, there);
  y.sendall(back);
  got.clear();
  while (got.size() < back.size()) got += x.recv(65536);
  EXPECT_EQ(got, back);
  x.close();
  EXPECT_EQ(y.recv(16), "");
}

TEST_F(LwipSocketpair, AnIPv6SocketpairRunsOverTheHostsIPv6Loopback) {
  backend_scope scope(*a_);
  auto [x, y] = socketpair(AF_INET6);
  EXPECT_EQ(x.getsockname().host, "::1");
  EXPECT_EQ(x.getpeername(), y.getsockname());
  y.sendall("six");
  x.settimeout(kGenerousWait);
  EXPECT_EQ(x.recv(16), "six");
}

TEST_F(MixedSelect, NothingReadyTimesOutEmpty) {
  select_result r = select({&*k_reader_, &*lw_reader_}, {}, {}, 0.2);
  EXPECT_TRUE(r.read.empty());
  EXPECT_TRUE(r.write.empty());
  EXPECT_TRUE(r.except.empty());
}

TEST_F(MixedSelect, AKernelSocketBecomingReadableWakesSelectAndIsTheOnlyOneReported) {
  std::jthread writer = write_later(*k_writer_, "kernel");
  select_result r = select({&*k_reader_, &*lw_reader_}, {}, {}, kGenerousWait);
  ASSERT_EQ(r.read.size(), 1u);
  EXPECT_EQ(r.read[0], &*k_reader_);
  writer.join();
  EXPECT_EQ(k_reader_->recv(16), "kernel");
}

TEST_F(MixedSelect, AnLwipSocketBecomingReadableWakesSelectAndIsTheOnlyOneReported) {
  std::jthread writer = write_later(*lw_writer_, "lwip");
  select_result r = select({&*k_reader_, &*lw_reader_}, {}, {}, kGenerousWait);
  ASSERT_EQ(r.read.size(), 1u);
  EXPECT_EQ(r.read[0], &*lw_reader_);
  writer.join();
  EXPECT_EQ(lw_reader_->recv(16), "lwip");
}

TEST_F(MixedSelect, APollerOverBothKindsReportsWhicheverBecomesReady) {
  poller p;
  p.add(*k_reader_, POLLIN);
  p.add(*lw_reader_, POLLIN);
  EXPECT_TRUE(p.poll(0.2).empty());
  {
    std::jthread writer = write_later(*lw_writer_, "lwip");
    auto events = p.poll(kGenerousWait);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].first, &*lw_reader_);
    EXPECT_TRUE(events[0].second & POLLIN);
  }
  EXPECT_EQ(lw_reader_->recv(16), "lwip");
  {
    std::jthread writer = write_later(*k_writer_, "kernel");
    auto events = p.poll(kGenerousWait);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].first, &*k_reader_);
    EXPECT_TRUE(events[0].second & POLLIN);
  }
  EXPECT_EQ(k_reader_->recv(16), "kernel");
  EXPECT_TRUE(p.poll(0.0).empty());
}

TEST_F(MixedSelect, SelectReportsBothWhenBothAreReady) {
  k_writer_->sendall("k");
  lw_writer_->sendall("l");
  select_result r = select({&*lw_reader_, &*k_reader_}, {}, {}, kGenerousWait);
  ASSERT_EQ(r.read.size(), 2u);
  EXPECT_EQ(r.read[0], &*lw_reader_);
  EXPECT_EQ(r.read[1], &*k_reader_);
}

}  // namespace anysock::testing
