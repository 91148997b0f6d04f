// Run-to-completion mode (engine=poll): no engine thread; one application thread drives lwIP by
// calling anysock::lwip::poll() between non-blocking socket calls. Built as its own executable so
// that no thread-mode engine has run in the process before.
#include <chrono>
#include <optional>
#include <thread>

#include "lwip_support.hpp"

namespace anysock::testing {
namespace {

class PollMode : public LwipTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(lwip::read_counters().links.empty()) << "an lwIP engine already runs";
    a_ = make_backend("lwip+sim:host=a,link=rtc,ip=10.69.0.1/24,engine=poll");
    b_ = make_backend("lwip+sim:host=b,link=rtc,ip=10.69.0.2/24,engine=poll");
  }

  std::shared_ptr<backend> a_, b_;
};

using clock = std::chrono::steady_clock;

// Bytes a non-blocking send took (0 when the send buffer is full).
size_t try_send(socket& s, std::string_view data) {
  try {
    return s.send(data);
  } catch (const error& e) {
    if (e.code().value() != EAGAIN) throw;
    return 0;
  }
}

// What a non-blocking recv returned: nullopt when nothing is there yet, "" at end of stream.
std::optional<std::string> try_recv(socket& s, size_t n) {
  try {
    return s.recv(n);
  } catch (const error& e) {
    if (e.code().value() != EAGAIN) throw;
    return std::nullopt;
  }
}

}  // namespace

TEST_F(PollMode, OneThreadPollingCompletesAConnectionAndALargeExchangeBetweenTwoHosts) {
  socket l(*a_, AF_INET, SOCK_STREAM);
  l.setblocking(false);
  l.bind({"10.69.0.1", 0});
  l.listen(1);
  socket c(*b_, AF_INET, SOCK_STREAM);
  c.setblocking(false);
  ASSERT_EQ(c.connect_ex({"10.69.0.1", l.getsockname().port}), EINPROGRESS);

  // 12 MiB each way: more than a send buffer plus a receive window (2 + 2 MiB), so the sender
  // cannot finish before the receiver has read: both sides must take turns across polls.
  const std::string request = pattern(12 << 20, 11), reply = pattern(12 << 20, 12);
  std::optional<socket> s;
  bool connected = false;
  size_t request_sent = 0, reply_sent = 0;
  std::string request_got, reply_got;
  bool client_saw_eof = false;
  int polls = 0;
  const auto give_up = clock::now() + std::chrono::seconds(30);
  while (!client_saw_eof && clock::now() < give_up) {
    lwip::poll();
    ++polls;
    if (!connected) {
      if (!select({}, {&c}, {}, 0.0).write.empty()) {
        ASSERT_EQ(c.getsockopt(SOL_SOCKET, SO_ERROR), 0);
        connected = true;
      }
    }
    if (!s) {
      try {
        s.emplace(l.accept().first);
        s->setblocking(false);
      } catch (const error& e) {
        ASSERT_EQ(e.code().value(), EAGAIN);
      }
    }
    if (!connected || !s) continue;
    if (request_sent < request.size()) {
      request_sent += try_send(c, std::string_view(request).substr(request_sent));
    }
    while (auto part = try_recv(*s, 1 << 20)) {
      ASSERT_FALSE(part->empty()) << "the client never closes before the reply";
      request_got += *part;
    }
    if (request_got.size() == request.size() && reply_sent < reply.size()) {
      reply_sent += try_send(*s, std::string_view(reply).substr(reply_sent));
      if (reply_sent == reply.size()) s->shutdown(SHUT_WR);
    }
    while (auto part = try_recv(c, 1 << 20)) {
      if (part->empty()) {
        client_saw_eof = true;
        break;
      }
      reply_got += *part;
    }
  }
  ASSERT_TRUE(client_saw_eof) << "the exchange did not finish: " << request_got.size()
                              << " request bytes and " << reply_got.size() << " reply bytes";
  EXPECT_TRUE(request_got == request) << "the request arrived altered";
  EXPECT_TRUE(reply_got == reply) << "the reply arrived altered";
  EXPECT_GT(polls, 1);
}

TEST_F(PollMode, LwipTimersRunOnlyWhenTheProgramPolls) {
  socket l(*a_, AF_INET, SOCK_STREAM);
  l.bind({"10.69.0.1", 0});
  l.listen(1);
  socket c(*b_, AF_INET, SOCK_STREAM);
  c.settimeout(kGenerousWait);
  c.connect({"10.69.0.1", l.getsockname().port});
  l.settimeout(kGenerousWait);
  socket s = l.accept().first;
  // One small segment: a holds its acknowledgement back for its delayed-ACK timer.
  c.sendall("x");
  const uint64_t before = link_of(lwip::read_counters(), "a").frames_out;
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // an engine thread would ACK now
  EXPECT_EQ(link_of(lwip::read_counters(), "a").frames_out, before)
      << "something ran lwIP's timers without a poll()";
  const auto give_up = clock::now() + std::chrono::seconds(5);
  while (link_of(lwip::read_counters(), "a").frames_out == before && clock::now() < give_up) {
    lwip::poll();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GT(link_of(lwip::read_counters(), "a").frames_out, before) << "poll() ran the timers";
  s.settimeout(kGenerousWait);
  EXPECT_EQ(s.recv(4), "x");
}

}  // namespace anysock::testing
