// A socket's life: creation flags, the default timeout, moves, close and destruction, every
// operation on a closed socket, bind errors, and which backend a socket lives on.
#include <array>
#include <cerrno>
#include <chrono>
#include <functional>
#include <future>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "fixture.hpp"

namespace anysock::testing {
namespace {

// Expects `peer` to see end of stream (its partner was closed).
void expect_end_of_stream(socket& peer) {
  peer.settimeout(kGenerousWait);
  EXPECT_EQ(peer.recv(100), "");
}

}  // namespace

TEST_P(Conformance, CloseIsIdempotentAndLeavesFilenoMinusOne) {
  socket s(client(), AF_INET, SOCK_STREAM);
  EXPECT_GE(s.fileno(), 0);
  s.close();
  EXPECT_EQ(s.fileno(), -1);
  EXPECT_NO_THROW(s.close());
  EXPECT_EQ(s.fileno(), -1);
}

TEST_P(Conformance, EveryOperationOnAClosedSocketRaisesEbadf) {
  socket s(client(), AF_INET, SOCK_STREAM);
  s.close();
  const address somewhere{dial_host(AF_INET), 9};
  std::array<char, 8> buf{};
  const std::vector<std::pair<const char*, std::function<void()>>> operations = {
      {"bind",
       [&] {
         s.bind({server_host(AF_INET), 0});
       }},
      {"connect", [&] { s.connect(somewhere); }},
      {"connect_ex", [&] { s.connect_ex(somewhere); }},
      {"listen", [&] { s.listen(); }},
      {"accept", [&] { s.accept(); }},
      {"recv", [&] { s.recv(10); }},
      {"recv_into", [&] { s.recv_into(buf.data(), buf.size()); }},
      {"recv_into(span)", [&] { s.recv_into(std::as_writable_bytes(std::span(buf))); }},
      {"recvfrom", [&] { s.recvfrom(10); }},
      {"recvfrom_into", [&] { s.recvfrom_into(buf.data(), buf.size()); }},
      {"send", [&] { s.send("x"); }},
      {"sendall", [&] { s.sendall("x"); }},
      {"sendto", [&] { s.sendto("x", somewhere); }},
      {"sendto(flags)", [&] { s.sendto("x", 0, somewhere); }},
      {"getsockname", [&] { s.getsockname(); }},
      {"getpeername", [&] { s.getpeername(); }},
      {"getsockopt", [&] { s.getsockopt(SOL_SOCKET, SO_TYPE); }},
      {"getsockopt(buflen)", [&] { s.getsockopt(SOL_SOCKET, SO_TYPE, 4); }},
      {"setsockopt", [&] { s.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1); }},
      {"setsockopt(bytes)",
       [&] { s.setsockopt(SOL_SOCKET, SO_REUSEADDR, std::string_view("\1\0\0\0", 4)); }},
      {"settimeout", [&] { s.settimeout(1.0); }},
      {"setblocking", [&] { s.setblocking(false); }},
      {"gettimeout", [&] { s.gettimeout(); }},
      {"shutdown", [&] { s.shutdown(SHUT_RDWR); }},
      {"makefile", [&] { s.makefile("rw"); }},
      {"get_backend", [&] { s.get_backend(); }},
  };
  for (const auto& [name, op] : operations) {
    EXPECT_EQ(errno_of(op), EBADF) << name;
  }
}

TEST_P(Conformance, ClosedSocketStillReportsFamilyTypeAndProto) {
  socket s(client(), AF_INET, SOCK_DGRAM, IPPROTO_UDP);
  s.close();
  EXPECT_EQ(s.family(), AF_INET);
  EXPECT_EQ(s.type(), SOCK_DGRAM);
  EXPECT_EQ(s.proto(), IPPROTO_UDP);
}

TEST_P(Conformance, SockNonblockInTheTypeMakesANonBlockingSocket) {
  socket s(server(), AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
  EXPECT_EQ(s.gettimeout(), 0.0);
  EXPECT_EQ(s.type(), SOCK_STREAM);
  s.bind({server_host(AF_INET), 0});
  s.listen();
  EXPECT_EQ(errno_of([&] { s.accept(); }), EAGAIN);

  socket flags(client(), AF_INET, SOCK_DGRAM | SOCK_CLOEXEC);
  EXPECT_EQ(flags.type(), SOCK_DGRAM);
  EXPECT_EQ(flags.gettimeout(), std::nullopt);
}

TEST_P(Conformance, NewAndAcceptedSocketsTakeTheDefaultTimeout) {
  setdefaulttimeout(2.5);  // the fixture restores the previous default
  socket l = listener();
  EXPECT_EQ(l.gettimeout(), 2.5);
  socket c(client(), AF_INET, SOCK_STREAM);
  EXPECT_EQ(c.gettimeout(), 2.5);
  c.connect(dial_address(AF_INET, l));
  setdefaulttimeout(std::nullopt);
  auto [accepted, peer] = l.accept();
  EXPECT_EQ(accepted.gettimeout(), std::nullopt);  // the default when accept() ran
  EXPECT_EQ(c.gettimeout(), 2.5);                  // existing sockets keep theirs
}

TEST_P(Conformance, MovingASocketTransfersIt) {
  auto [c, s] = tcp_pair();
  const int fd = c.fileno();
  socket moved(std::move(c));
  EXPECT_EQ(c.fileno(), -1);  // NOLINT(bugprone-use-after-move): the moved-from state is defined
  EXPECT_EQ(moved.fileno(), fd);
  EXPECT_EQ(moved.family(), AF_INET);
  EXPECT_EQ(moved.type(), SOCK_STREAM);
  EXPECT_EQ(errno_of([&] { c.send("x"); }), EBADF);

  moved.sendall("still connected");
  s.settimeout(kGenerousWait);
  EXPECT_EQ(s.recv(100), "still connected");
}

TEST_P(Conformance, MoveAssignmentClosesTheTargetsOldSocket) {
  auto [old_client, old_server] = tcp_pair();
  auto [new_client, new_server] = tcp_pair();
  const int fd = new_client.fileno();

  old_client = std::move(new_client);
  EXPECT_EQ(old_client.fileno(), fd);
  EXPECT_EQ(new_client.fileno(), -1);  // NOLINT(bugprone-use-after-move)
  expect_end_of_stream(old_server);

  old_client.sendall("via new");
  new_server.settimeout(kGenerousWait);
  EXPECT_EQ(new_server.recv(100), "via new");
}

TEST_P(Conformance, DestroyingASocketClosesIt) {
  auto [c, s] = tcp_pair();
  { socket doomed = std::move(c); }
  expect_end_of_stream(s);
}

TEST_P(Conformance, ClosingOneEndMakesThePeerSeeEndOfStream) {
  auto [c, s] = tcp_pair();
  c.sendall("last words");
  c.close();
  s.settimeout(kGenerousWait);
  EXPECT_EQ(s.recv(100), "last words");
  EXPECT_EQ(s.recv(100), "");
}

TEST_P(Conformance, BindingTwiceRaisesEinval) {
  socket s(server(), AF_INET, SOCK_STREAM);
  s.bind({server_host(AF_INET), 0});
  EXPECT_EQ(errno_of([&] { s.bind({server_host(AF_INET), 0}); }), EINVAL);
  socket u(server(), AF_INET, SOCK_DGRAM);
  u.bind({server_host(AF_INET), 0});
  EXPECT_EQ(errno_of([&] { u.bind({server_host(AF_INET), 0}); }), EINVAL);
}

TEST_P(Conformance, BindingToAPortInUseRaisesEaddrinuse) {
  socket l = listener();
  socket s(server(), AF_INET, SOCK_STREAM);
  EXPECT_EQ(errno_of([&] { s.bind({server_host(AF_INET), l.getsockname().port}); }), EADDRINUSE);

  socket u1(server(), AF_INET, SOCK_DGRAM);
  u1.bind({server_host(AF_INET), 0});
  socket u2(server(), AF_INET, SOCK_DGRAM);
  EXPECT_EQ(errno_of([&] { u2.bind({server_host(AF_INET), u1.getsockname().port}); }), EADDRINUSE);
}

TEST_P(Conformance, BindingToANonLocalAddressRaisesEaddrnotavail) {
  // 192.0.2.1 is TEST-NET-1 (RFC 5737): never a local address. Binding sends nothing.
  socket s(server(), AF_INET, SOCK_STREAM);
  EXPECT_EQ(errno_of([&] { s.bind({"192.0.2.1", 0}); }), EADDRNOTAVAIL);
  socket u(server(), AF_INET, SOCK_DGRAM);
  EXPECT_EQ(errno_of([&] { u.bind({"192.0.2.1", 0}); }), EADDRNOTAVAIL);
}

TEST_P(Conformance, BindToPortZeroPicksAnEphemeralPort) {
  socket s(server(), AF_INET, SOCK_STREAM);
  s.bind({server_host(AF_INET), 0});
  address bound = s.getsockname();
  EXPECT_EQ(bound.host, server_host(AF_INET));
  EXPECT_NE(bound.port, 0);
}

TEST_P(Conformance, GetBackendIsTheBackendTheSocketWasMadeOn) {
  socket explicit_client(client(), AF_INET, SOCK_STREAM);
  EXPECT_EQ(&explicit_client.get_backend(), &client());
  {
    backend_scope scope(server());
    socket scoped(AF_INET, SOCK_DGRAM);
    EXPECT_EQ(&scoped.get_backend(), &server());
  }
  auto [c, s] = tcp_pair();
  EXPECT_EQ(&c.get_backend(), &client());
  EXPECT_EQ(&s.get_backend(), &server());  // accepted sockets live on the listener's backend
}

}  // namespace anysock::testing

namespace anysock::testing {

TEST_P(Conformance, ClosingASocketWhileAnotherThreadIsBlockedInItIsSafe) {
  auto [c, s] = tcp_pair();
  s.settimeout(0.5);
  auto reader = std::async(std::launch::async, [&s]() -> std::string {
    try {
      return "data: " + s.recv(16);
    } catch (const timeout&) {
      return "timeout";
    } catch (const error& e) {
      return "error " + std::to_string(e.code().value());
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  s.close();  // most likely while recv waits; if recv has not started yet, it sees EBADF
  EXPECT_EQ(s.fileno(), -1);
  const std::string outcome = reader.get();
  EXPECT_TRUE(outcome == "timeout" || outcome == "error " + std::to_string(EBADF)) << outcome;
}

TEST_P(Conformance, AHostNameWithANulCharacterIsRefusedWhereverANameEnters) {
  // C strings would cut "127.0.0.1\0.allowed.example.com" short and reach 127.0.0.1.
  using namespace std::string_literals;
  const std::string sneaky = "127.0.0.1\0.allowed.example.com"s;
  const std::string local = "localhost\0.example.com"s;
  socket l = listener();
  const int port = l.getsockname().port;
  socket c(client(), AF_INET, SOCK_STREAM);
  EXPECT_THROW(c.connect({sneaky, port}), std::invalid_argument);
  EXPECT_THROW(c.connect_ex({sneaky, port}), std::invalid_argument);
  EXPECT_THROW(c.bind({sneaky, 0}), std::invalid_argument);
  socket u(client(), AF_INET, SOCK_DGRAM);
  EXPECT_THROW(u.sendto("x", {sneaky, port}), std::invalid_argument);
  backend_scope scope(client());
  EXPECT_THROW(getaddrinfo(local, std::nullopt), std::invalid_argument);
  EXPECT_THROW(getaddrinfo(std::string("localhost"),
                           "8\0"s
                           "0"),
               std::invalid_argument);
  EXPECT_THROW(gethostbyname(local), std::invalid_argument);
  EXPECT_THROW(gethostbyname_ex(local), std::invalid_argument);
  EXPECT_THROW(gethostbyaddr(sneaky), std::invalid_argument);
  EXPECT_THROW(getfqdn(local), std::invalid_argument);
  EXPECT_THROW(getnameinfo({sneaky, 80}, 0), std::invalid_argument);
  EXPECT_THROW(create_connection({sneaky, port}, kGenerousWait), std::invalid_argument);
  EXPECT_THROW(getservbyname("ht\0tp"s), std::invalid_argument);
  // The socket is untouched: it still connects to the real address.
  EXPECT_EQ(errno_of([&] { c.connect(dial_address(AF_INET, l)); }), 0);
}

TEST_P(Conformance, APortOutsideZeroTo65535IsRefusedNotTruncated) {
  socket l = listener();
  socket c(client(), AF_INET, SOCK_STREAM);
  // 70000 would become 4464 if narrowed.
  EXPECT_THROW(c.bind({"", 70000}), std::invalid_argument);
  EXPECT_THROW(c.bind({"", -1}), std::invalid_argument);
  EXPECT_THROW(c.connect({dial_host(AF_INET), 65536 + l.getsockname().port}),
               std::invalid_argument);
  socket u(client(), AF_INET, SOCK_DGRAM);
  EXPECT_THROW(u.sendto("x", {dial_host(AF_INET), 70000}), std::invalid_argument);
  backend_scope scope(client());
  EXPECT_THROW(create_connection({dial_host(AF_INET), 70000}, kGenerousWait),
               std::invalid_argument);
  EXPECT_THROW(getnameinfo({"127.0.0.1", 70000}, NI_NUMERICHOST), std::invalid_argument);
  EXPECT_EQ(errno_of([&] { c.bind({"", 0}); }), 0);  // unchanged by the refusals
  if (family_available(AF_INET6)) {
    socket six(client(), AF_INET6, SOCK_STREAM);
    EXPECT_THROW(six.bind({"::1", 0, 1u << 20, 0}), std::invalid_argument);  // flowinfo
  }
}

}  // namespace anysock::testing
