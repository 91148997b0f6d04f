// Queues a remote peer fills without the application's help stay bounded: a listener's accept
// queue (connections reset before accept() keep their place in the backlog).
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

}  // namespace anysock::testing
