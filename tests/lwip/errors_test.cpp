// Errors between lwIP hosts: a connection to a port nobody listens on is refused, and a recv with
// a timeout on a silent connection raises anysock::timeout and leaves the connection usable.
#include "lwip_support.hpp"

namespace anysock::testing {
namespace {

class Errors : public LwipTest {
 protected:
  std::shared_ptr<backend> a_ =
      make_backend("lwip+sim:host=a,link=errors,ip=10.68.0.1/24,ip6='fd00:68::1/64'");
  std::shared_ptr<backend> b_ =
      make_backend("lwip+sim:host=b,link=errors,ip=10.68.0.2/24,ip6='fd00:68::2/64'");

  // A port on `host` of a that nothing is bound to (it was bound, then closed).
  uint16_t closed_port(int family, const std::string& host) {
    socket s(*a_, family, SOCK_STREAM);
    s.bind({host, 0});
    return s.getsockname().port;
  }
};

}  // namespace

TEST_F(Errors, ConnectingToAPortNobodyListensOnIsConnectionRefused) {
  for (const auto& [family, host] :
       {std::pair<int, std::string>{AF_INET, "10.68.0.1"}, {AF_INET6, "fd00:68::1"}}) {
    SCOPED_TRACE(host);
    const uint16_t port = closed_port(family, host);
    socket c(*b_, family, SOCK_STREAM);
    c.settimeout(kGenerousWait);
    EXPECT_EQ(errno_of([&] { c.connect({host, port}); }), ECONNREFUSED);
    socket d(*b_, family, SOCK_STREAM);
    d.settimeout(kGenerousWait);
    EXPECT_EQ(d.connect_ex({host, port}), ECONNREFUSED);
  }
}

TEST_F(Errors, ANonBlockingConnectToAPortNobodyListensOnReportsRefusalThroughSoError) {
  const uint16_t port = closed_port(AF_INET, "10.68.0.1");
  socket c(*b_, AF_INET, SOCK_STREAM);
  c.setblocking(false);
  EXPECT_EQ(c.connect_ex({"10.68.0.1", port}), EINPROGRESS);
  select_result r = select({}, {&c}, {}, kGenerousWait);
  ASSERT_EQ(r.write.size(), 1u);
  EXPECT_EQ(c.getsockopt(SOL_SOCKET, SO_ERROR), ECONNREFUSED);
}

TEST_F(Errors, RecvWithATimeoutOnASilentConnectionRaisesTimeoutAndTheConnectionStillWorks) {
  socket l(*a_, AF_INET, SOCK_STREAM);
  l.bind({"10.68.0.1", 0});
  l.listen(1);
  l.settimeout(kGenerousWait);
  socket c(*b_, AF_INET, SOCK_STREAM);
  c.settimeout(kGenerousWait);
  c.connect({"10.68.0.1", l.getsockname().port});
  socket s = l.accept().first;
  s.settimeout(0.2);
  EXPECT_THROW(s.recv(16), anysock::timeout);
  s.setblocking(false);
  EXPECT_EQ(errno_of([&] { s.recv(16); }), EAGAIN);
  c.sendall("late");
  s.settimeout(kGenerousWait);
  EXPECT_EQ(s.recv(16), "late");
}

TEST_F(Errors, AcceptWithATimeoutAndNoClientRaisesTimeout) {
  socket l(*a_, AF_INET, SOCK_STREAM);
  l.bind({"10.68.0.1", 0});
  l.listen(1);
  l.settimeout(0.2);
  EXPECT_THROW(l.accept(), anysock::timeout);
}

}  // namespace anysock::testing
