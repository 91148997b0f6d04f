// AF_UNIX sockets: stream and datagram sockets on filesystem paths, Linux abstract names, path
// length limits, and socketpair().
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "fixture.hpp"

namespace anysock::testing {
namespace {

constexpr size_t kSunPathSize = sizeof(sockaddr_un{}.sun_path);

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
class temp_dir {
 public:
  temp_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "anysock-unix-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

#ifdef __linux__
// A name in Linux's abstract namespace (leading NUL), unique to this process and call.
std::string abstract_name() {
  static std::atomic<int> counter{0};
  return std::string(1, '\0') + "anysock-test-" + std::to_string(::getpid()) + "-" +
         std::to_string(counter++);
}
#endif

// Sends `text` from `from` and expects `to` to receive exactly it.
void expect_carries(socket& from, socket& to, const std::string& text) {
  from.sendall(text);
  EXPECT_EQ(to.recv(100), text);
}

}  // namespace

TEST_P(Conformance, UnixStreamOverAPathConnectsEchoesAndNamesBothEnds) {
  SKIP_UNLESS_FAMILY(AF_UNIX);
  temp_dir dir;
  const std::string path = dir.file("stream.sock");
  socket srv(server(), AF_UNIX, SOCK_STREAM);
  srv.bind({path});
  srv.listen();
  EXPECT_EQ(srv.getsockname().host, path);
  EXPECT_TRUE(std::filesystem::is_socket(path));

  socket cli(client(), AF_UNIX, SOCK_STREAM);
  cli.settimeout(kGenerousWait);
  cli.connect({path});
  srv.settimeout(kGenerousWait);
  auto [conn, peer] = srv.accept();
  conn.settimeout(kGenerousWait);

  EXPECT_EQ(peer.host, "");  // the client never bound a name
  EXPECT_EQ(cli.getsockname().host, "");
  EXPECT_EQ(cli.getpeername().host, path);
  EXPECT_EQ(conn.getsockname().host, path);
  EXPECT_EQ(conn.family(), AF_UNIX);
  expect_carries(cli, conn, "to server");
  expect_carries(conn, cli, "to client");

  cli.close();
  EXPECT_EQ(conn.recv(100), "");
}

TEST_P(Conformance, UnixDatagramsOverPathsCarryTheSendersPath) {
  SKIP_UNLESS_FAMILY(AF_UNIX);
  temp_dir dir;
  const std::string srv_path = dir.file("server.sock");
  const std::string cli_path = dir.file("client.sock");
  socket srv(server(), AF_UNIX, SOCK_DGRAM);
  srv.bind({srv_path});
  srv.settimeout(kGenerousWait);
  socket cli(client(), AF_UNIX, SOCK_DGRAM);
  cli.bind({cli_path});
  cli.settimeout(kGenerousWait);

  EXPECT_EQ(cli.sendto("first", {srv_path}), 5u);
  cli.sendto("second", {srv_path});
  auto [data, from] = srv.recvfrom(3);  // truncates "first"; the rest is discarded
  EXPECT_EQ(data, "fir");
  EXPECT_EQ(from.host, cli_path);
  EXPECT_EQ(srv.recv(100), "second");

  srv.sendto("reply", from);
  auto [reply, reply_from] = cli.recvfrom(100);
  EXPECT_EQ(reply, "reply");
  EXPECT_EQ(reply_from.host, srv_path);
}

TEST_P(Conformance, UnixDatagramFromAnUnboundSenderHasAnEmptyAddress) {
  SKIP_UNLESS_FAMILY(AF_UNIX);
  temp_dir dir;
  const std::string path = dir.file("server.sock");
  socket srv(server(), AF_UNIX, SOCK_DGRAM);
  srv.bind({path});
  srv.settimeout(kGenerousWait);
  socket cli(client(), AF_UNIX, SOCK_DGRAM);

  cli.sendto("anonymous", {path});
  auto [data, from] = srv.recvfrom(100);
  EXPECT_EQ(data, "anonymous");
  EXPECT_EQ(from.host, "");
}

TEST_P(Conformance, ConnectedUnixDatagramSocketsUseSendAndRecv) {
  SKIP_UNLESS_FAMILY(AF_UNIX);
  temp_dir dir;
  const std::string path = dir.file("server.sock");
  socket srv(server(), AF_UNIX, SOCK_DGRAM);
  srv.bind({path});
  srv.settimeout(kGenerousWait);
  socket cli(client(), AF_UNIX, SOCK_DGRAM);
  cli.connect({path});
  EXPECT_EQ(cli.getpeername().host, path);
  EXPECT_EQ(cli.send("via connect"), 11u);
  EXPECT_EQ(srv.recv(100), "via connect");
}

#ifdef __linux__
TEST_P(Conformance, UnixAbstractNamesKeepTheirLeadingNul) {
  SKIP_UNLESS_FAMILY(AF_UNIX);
  const std::string name = abstract_name();
  socket srv(server(), AF_UNIX, SOCK_STREAM);
  srv.bind({name});
  srv.listen();
  EXPECT_EQ(srv.getsockname().host, name);

  socket cli(client(), AF_UNIX, SOCK_STREAM);
  cli.settimeout(kGenerousWait);
  cli.connect({name});
  EXPECT_EQ(cli.getpeername().host, name);
  srv.settimeout(kGenerousWait);
  auto [conn, peer] = srv.accept();
  conn.settimeout(kGenerousWait);
  expect_carries(cli, conn, "abstract");
  expect_carries(conn, cli, "namespace");
}

TEST_P(Conformance, UnixAbstractDatagramNamesAreReportedToTheReceiver) {
  SKIP_UNLESS_FAMILY(AF_UNIX);
  const std::string srv_name = abstract_name();
  const std::string cli_name = abstract_name();
  socket srv(server(), AF_UNIX, SOCK_DGRAM);
  srv.bind({srv_name});
  srv.settimeout(kGenerousWait);
  socket cli(client(), AF_UNIX, SOCK_DGRAM);
  cli.bind({cli_name});

  cli.sendto("hi", {srv_name});
  auto [data, from] = srv.recvfrom(100);
  EXPECT_EQ(data, "hi");
  EXPECT_EQ(from.host, cli_name);
}
#endif

TEST_P(Conformance, UnixPathLongerThanSunPathRaisesAnError) {
  SKIP_UNLESS_FAMILY(AF_UNIX);
  // A filesystem path needs room for its terminating NUL; an abstract name does not.
  const std::string too_long_path = "/tmp/" + std::string(kSunPathSize, 'a');
  const std::string exactly_full_path(kSunPathSize, 'b');
  const std::string too_long_abstract = std::string(1, '\0') + std::string(kSunPathSize, 'c');

  socket s(client(), AF_UNIX, SOCK_STREAM);
  EXPECT_THROW(s.bind({too_long_path}), anysock::error);
  EXPECT_THROW(s.bind({exactly_full_path}), anysock::error);
  EXPECT_THROW(s.connect({too_long_path}), anysock::error);
  EXPECT_THROW(s.bind({too_long_abstract}), anysock::error);
  socket d(client(), AF_UNIX, SOCK_DGRAM);
  EXPECT_THROW(d.sendto("x", {too_long_path}), anysock::error);
}

TEST_P(Conformance, SocketpairDefaultIsAConnectedUnixStreamPair) {
  SKIP_UNLESS_FAMILY(AF_UNIX);
  backend_scope scope(client());
  auto [a, b] = socketpair();
  EXPECT_EQ(a.family(), AF_UNIX);
  EXPECT_EQ(a.type(), SOCK_STREAM);
  EXPECT_EQ(b.family(), AF_UNIX);
  EXPECT_EQ(&a.get_backend(), &client());
  EXPECT_EQ(&b.get_backend(), &client());
  a.settimeout(kGenerousWait);
  b.settimeout(kGenerousWait);
  EXPECT_NE(a.fileno(), b.fileno());

  expect_carries(a, b, "a to b");
  expect_carries(b, a, "b to a");
  a.close();
  EXPECT_EQ(b.recv(100), "");
}

TEST_P(Conformance, SocketpairOfUnixDatagramsKeepsMessageBoundaries) {
  SKIP_UNLESS_FAMILY(AF_UNIX);
  backend_scope scope(client());
  auto [a, b] = socketpair(AF_UNIX, SOCK_DGRAM);
  EXPECT_EQ(a.type(), SOCK_DGRAM);
  EXPECT_EQ(b.type(), SOCK_DGRAM);
  b.settimeout(kGenerousWait);
  a.settimeout(kGenerousWait);

  a.send("one");
  a.send("two");
  EXPECT_EQ(b.recv(100), "one");
  EXPECT_EQ(b.recv(100), "two");
  b.send("");
  EXPECT_EQ(a.recv(100), "");  // an empty datagram, not end of stream
  b.send("three");
  EXPECT_EQ(a.recv(100), "three");
}

TEST_P(Conformance, SocketpairWithSockNonblockMakesBothEndsNonBlocking) {
  SKIP_UNLESS_FAMILY(AF_UNIX);
  backend_scope scope(client());
  auto [a, b] = socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK);
  EXPECT_EQ(a.type(), SOCK_STREAM);
  EXPECT_EQ(a.gettimeout(), 0.0);
  EXPECT_EQ(b.gettimeout(), 0.0);
  try {
    a.recv(10);
    ADD_FAILURE() << "recv on an empty non-blocking socket returned";
  } catch (const error& e) {
    EXPECT_EQ(e.code().value(), EAGAIN);
  }
}

TEST_P(Conformance, SocketpairOverInetIsTheOsOrCpythonsEmulation) {
  backend_scope scope(client());
  if (client().has_family(AF_UNIX)) {
    // A real socketpair(): Linux has none for AF_INET.
    EXPECT_EQ(errno_of([] { socketpair(AF_INET, SOCK_STREAM); }), EOPNOTSUPP);
    EXPECT_EQ(errno_of([] { socketpair(AF_INET, SOCK_DGRAM); }), EOPNOTSUPP);
    return;
  }
  // CPython's emulation (a TCP pair over the loopback) refuses any other type or protocol.
  EXPECT_THROW(socketpair(AF_INET, SOCK_DGRAM), std::invalid_argument);
  EXPECT_THROW(socketpair(AF_INET, SOCK_STREAM, IPPROTO_TCP), std::invalid_argument);
  EXPECT_THROW(socketpair(AF_UNIX, SOCK_DGRAM), std::invalid_argument);
  auto [a, b] = socketpair(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);  // flags aside
  EXPECT_EQ(a.type(), SOCK_STREAM);
  EXPECT_EQ(a.gettimeout(), 0.0);
  a.sendall("x");
  b.settimeout(kGenerousWait);
  EXPECT_EQ(b.recv(10), "x");
}

}  // namespace anysock::testing
