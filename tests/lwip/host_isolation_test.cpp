// What stays on one host: loopback traffic (127.0.0.1, ::1 and the host's own addresses) never
// touches the link, and each host has its own ports, so hosts may listen on the same port of
// their own loopback and wildcard addresses while a second bind on one host is EADDRINUSE.
#include <set>

#include "lwip_support.hpp"

namespace anysock::testing {
namespace {

class HostIsolation : public LwipTest {
 protected:
  std::shared_ptr<backend> a_ =
      make_backend("lwip+sim:host=a,link=iso,ip=10.63.0.1/24,ip6='fd00:63::1/64'");
  std::shared_ptr<backend> b_ =
      make_backend("lwip+sim:host=b,link=iso,ip=10.63.0.2/24,ip6='fd00:63::2/64'");
};

int family_of(const std::string& host) {
  return host.find(':') == std::string::npos ? AF_INET : AF_INET6;
}

// A listener on `b` bound to (host, port), port 0 meaning any.
socket listen_on(backend& b, const std::string& host, uint16_t port, int family = 0) {
  socket l(b, family != 0 ? family : family_of(host), SOCK_STREAM);
  l.bind({host, port});
  l.listen(8);
  return l;
}

// A client on `client` connects to `server_host` where `l` listens; 64 KiB go each way.
void talk(backend& client, socket& l, const std::string& server_host) {
  socket c(client, family_of(server_host), SOCK_STREAM);
  c.settimeout(kGenerousWait);
  c.connect({server_host, l.getsockname().port});
  l.settimeout(kGenerousWait);
  auto [s, peer] = l.accept();
  s.settimeout(kGenerousWait);
  const std::string up = pattern(64 * 1024, 1), down = pattern(64 * 1024, 2);
  c.sendall(up);
  std::string got;
  while (got.size() < up.size()) got += s.recv(up.size() - got.size());
  EXPECT_EQ(got, up);
  s.sendall(down);
  got.clear();
  while (got.size() < down.size()) got += c.recv(down.size() - got.size());
  EXPECT_EQ(got, down);
}

// Which host answers a connection from `client` to `dial`: the listener among `listeners` that
// receives it accepts and sends its host's name.
std::string who_answers(backend& client, const address& dial, std::vector<socket*> listeners) {
  socket c(client, family_of(dial.host), SOCK_STREAM);
  c.settimeout(kGenerousWait);
  c.connect(dial);
  select_result r = select(listeners, {}, {}, kGenerousWait);
  if (r.read.size() != 1) return std::to_string(r.read.size()) + " listeners got the connection";
  auto [conn, peer] = r.read[0]->accept();
  conn.sendall(conn.get_backend().gethostname());
  return c.recv(64);
}

}  // namespace

TEST_F(HostIsolation, LoopbackAndOwnAddressTrafficNeverTouchesTheLink) {
  wait_until_links_are_quiet();  // a new host's MLD reports are link traffic of their own
  const lwip::counters before = lwip::read_counters();
  for (const char* host : {"127.0.0.1", "::1", "10.63.0.1", "fd00:63::1"}) {
    SCOPED_TRACE(host);
    socket l = listen_on(*a_, host, 0);
    ASSERT_NO_FATAL_FAILURE(talk(*a_, l, host));
  }
  const lwip::counters after = lwip::read_counters();
  EXPECT_GT(after.tcp_in, before.tcp_in + 40) << "the connections did run inside lwIP";
  EXPECT_EQ(link_of(after, "a").frames_out, link_of(before, "a").frames_out);
  EXPECT_EQ(link_of(after, "a").frames_in, link_of(before, "a").frames_in);
  EXPECT_EQ(link_of(after, "b").frames_in, link_of(before, "b").frames_in);
}

TEST_F(HostIsolation, TrafficToAnotherHostCrossesTheLink) {
  for (const char* host : {"10.63.0.1", "fd00:63::1"}) {
    SCOPED_TRACE(host);
    const lwip::counters before = lwip::read_counters();
    socket l = listen_on(*a_, host, 0);
    ASSERT_NO_FATAL_FAILURE(talk(*b_, l, host));
    const lwip::counters after = lwip::read_counters();
    EXPECT_GT(link_of(after, "a").frames_in, link_of(before, "a").frames_in);
    EXPECT_GT(link_of(after, "b").frames_out, link_of(before, "b").frames_out);
    EXPECT_GE(link_of(after, "b").bytes_out - link_of(before, "b").bytes_out, 64u * 1024);
    EXPECT_GE(link_of(after, "a").bytes_out - link_of(before, "a").bytes_out, 64u * 1024);
  }
}

TEST_F(HostIsolation, TwoHostsListenOnTheSamePortsAndEachClientReachesItsOwnServer) {
  socket a_loop = listen_on(*a_, "127.0.0.1", 0);
  const uint16_t p = a_loop.getsockname().port;
  socket b_loop = listen_on(*b_, "127.0.0.1", p);
  socket a_any = listen_on(*a_, "", 0, AF_INET);
  const uint16_t q = a_any.getsockname().port;
  socket b_any = listen_on(*b_, "", q, AF_INET);
  socket a_any6 = listen_on(*a_, "::", 0);
  const uint16_t r = a_any6.getsockname().port;
  socket b_any6 = listen_on(*b_, "::", r);
  std::vector<socket*> all = {&a_loop, &b_loop, &a_any, &b_any, &a_any6, &b_any6};

  struct peer_case {
    backend* client;
    std::string name, own4, own6;
  };
  for (const peer_case& pc : {peer_case{a_.get(), "a", "10.63.0.1", "fd00:63::1"},
                              peer_case{b_.get(), "b", "10.63.0.2", "fd00:63::2"}}) {
    SCOPED_TRACE("client on " + pc.name);
    EXPECT_EQ(who_answers(*pc.client, {"127.0.0.1", p}, all), pc.name);
    EXPECT_EQ(who_answers(*pc.client, {"127.0.0.1", q}, all), pc.name);
    EXPECT_EQ(who_answers(*pc.client, {pc.own4, q}, all), pc.name);
    EXPECT_EQ(who_answers(*pc.client, {"::1", r}, all), pc.name);
    EXPECT_EQ(who_answers(*pc.client, {pc.own6, r}, all), pc.name);
  }
  // The wildcard listeners also take connections from the other host.
  EXPECT_EQ(who_answers(*b_, {"10.63.0.1", q}, all), "a");
  EXPECT_EQ(who_answers(*a_, {"fd00:63::2", r}, all), "b");
}

TEST_F(HostIsolation, BindingAPortTwiceOnOneHostIsAddressInUse) {
  socket loop = listen_on(*a_, "127.0.0.1", 0);
  const uint16_t p = loop.getsockname().port;
  socket any = listen_on(*a_, "", 0, AF_INET);
  const uint16_t q = any.getsockname().port;
  auto bind_errno = [&](backend& b, int family, const std::string& host, uint16_t port) {
    socket s(b, family, SOCK_STREAM);
    return errno_of([&] { s.bind({host, port}); });
  };
  EXPECT_EQ(bind_errno(*a_, AF_INET, "127.0.0.1", p), EADDRINUSE);
  EXPECT_EQ(bind_errno(*a_, AF_INET, "", p), EADDRINUSE) << "the wildcard covers 127.0.0.1";
  EXPECT_EQ(bind_errno(*a_, AF_INET, "", q), EADDRINUSE);
  EXPECT_EQ(bind_errno(*a_, AF_INET, "10.63.0.1", q), EADDRINUSE);
  // The same ports are free on the other host.
  EXPECT_EQ(bind_errno(*b_, AF_INET, "127.0.0.1", p), 0);
  EXPECT_EQ(bind_errno(*b_, AF_INET, "", q), 0);
}

}  // namespace anysock::testing
