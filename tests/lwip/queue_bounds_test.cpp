// Queues a remote peer fills without the application's help stay bounded: a listener's accept
// queue (connections reset before accept() keep their place in the backlog) and an unread UDP
// socket's receive queue (every datagram, even an empty one, is charged against SO_RCVBUF, and
// what does not fit is dropped and counted).
#include <sys/socket.h>

#include <string>
#include <string_view>

#include "lwip_support.hpp"

namespace anysock::testing {
namespace {

class QueueBounds : public LwipTest {
 protected:
  std::shared_ptr<backend> server_ = make_backend("lwip+sim:host=qa,link=queues,ip=10.71.0.1/24");
  std::shared_ptr<backend> client_ = make_backend("lwip+sim:host=qb,link=queues,ip=10.71.0.2/24");
};

// SO_LINGER {1, 0}: close() resets the connection.
void reset_on_close(socket& s) {
  const linger l{1, 0};
  s.setsockopt(SOL_SOCKET, SO_LINGER,
               std::string_view(reinterpret_cast<const char*>(&l), sizeof l));
}

}  // namespace

TEST_F(QueueBounds, FiftyConnectionsResetBeforeAcceptNeverQueueMoreThanTheBacklogAdmits) {
  socket l(*server_, AF_INET, SOCK_STREAM);
  l.bind({"10.71.0.1", 0});
  l.listen(1);  // Linux admits backlog + 1 = 2
  const address to{"10.71.0.1", l.getsockname().port};
  int admitted = 0;
  for (int i = 0; i < 50; ++i) {
    socket c(*client_, AF_INET, SOCK_STREAM);
    reset_on_close(c);
    c.settimeout(i < 2 ? kGenerousWait : 0.05);
    try {
      c.connect(to);
      ++admitted;
    } catch (const anysock::timeout&) {
    }
  }
  EXPECT_EQ(admitted, 2);

  l.setblocking(false);
  int accepted = 0;
  while (errno_of([&] { l.accept(); }) == 0) ++accepted;
  EXPECT_EQ(accepted, admitted);
}

TEST_F(QueueBounds, TwentyThousandEmptyDatagramsToAnUnreadSocketQueueAsManyAsTheKernelKeeps) {
  socket rx(*server_, AF_INET, SOCK_DGRAM);
  rx.bind({"10.71.0.1", 0});
  socket tx(*client_, AF_INET, SOCK_DGRAM);
  const address to{"10.71.0.1", rx.getsockname().port};
  tx.sendto("", to);  // the first datagram allocates what every later one reuses
  rx.settimeout(kGenerousWait);
  ASSERT_EQ(rx.recv(16), "");
  const lwip::counters before = lwip::read_counters();

  constexpr int kSent = 20000;
  for (int i = 0; i < kSent; ++i) tx.sendto("", to);
  const lwip::counters full = lwip::read_counters();
  // The kernel keeps 256 with the default SO_RCVBUF of 212,992 bytes (832 bytes charged for each).
  EXPECT_EQ(full.udp_drops - before.udp_drops, uint64_t{kSent - 256});
  const int64_t held = pool_used(full, "heap") - pool_used(before, "heap");
  EXPECT_LE(held, 212992) << "lwIP memory held by the queue exceeds SO_RCVBUF";

  rx.setblocking(false);
  int kept = 0;
  while (errno_of([&] { rx.recv(16); }) == 0) ++kept;
  EXPECT_EQ(kept, 256);
  EXPECT_EQ(pool_used(lwip::read_counters(), "heap"), pool_used(before, "heap"));

  // Room again: the socket takes new datagrams.
  tx.sendto("again", to);
  rx.settimeout(kGenerousWait);
  EXPECT_EQ(rx.recv(16), "again");
}

TEST_F(QueueBounds, ASmallReceiveBufferKeepsAsManySmallDatagramsAsTheKernelDoes) {
  socket rx(*server_, AF_INET, SOCK_DGRAM);
  rx.bind({"10.71.0.1", 0});
  rx.setsockopt(SOL_SOCKET, SO_RCVBUF, 4096);  // doubled to 8,192, as Linux does
  socket tx(*client_, AF_INET, SOCK_DGRAM);
  const address to{"10.71.0.1", rx.getsockname().port};
  for (int i = 0; i < 100; ++i) tx.sendto("tiny", to);
  rx.setblocking(false);
  int kept = 0;
  while (errno_of([&] { rx.recv(16); }) == 0) ++kept;
  EXPECT_EQ(kept, 9);  // the kernel: 9 datagrams of up to ~100 bytes
}

}  // namespace anysock::testing
