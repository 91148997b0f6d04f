// An unchanged program on ANYSOCK_BACKEND=lwip+sim (CTest sets the variable for this executable):
// its default-backend sockets live on a ready lwIP host and talk over that host's loopback.
#include <gtest/gtest.h>

#include <string>

#include "anysock/lwip.hpp"
#include "anysock/socket.hpp"

namespace anysock {
namespace {

TEST(LwipFromTheEnvironment, TheDefaultBackendIsAReadyLwipHost) {
  EXPECT_EQ(default_backend().spec().rfind("lwip+sim:", 0), 0u) << default_backend().spec();
  EXPECT_FALSE(gethostname().empty());
  EXPECT_FALSE(lwip::read_counters().links.empty()) << "no lwIP engine runs";
}

TEST(LwipFromTheEnvironment, PlainSocketCodeTalksOverTheHostsLoopback) {
  socket server(AF_INET, SOCK_STREAM);
  server.bind({"127.0.0.1", 0});
  server.listen();
  socket client = create_connection({"localhost", server.getsockname().port}, 5.0);
  auto [conn, peer] = server.accept();
  client.sendall("over lwIP");
  EXPECT_EQ(conn.recv(64), "over lwIP");
  conn.sendall("and back");
  EXPECT_EQ(client.recv(64), "and back");
  EXPECT_EQ(peer.host, "127.0.0.1");
}

TEST(LwipFromTheEnvironment, SocketpairIsAConnectedTcpPairBecauseLwipHasNoUnixSockets) {
  auto [a, b] = socketpair();
  EXPECT_EQ(a.family(), AF_INET);
  EXPECT_EQ(a.type(), SOCK_STREAM);
  a.sendall("ping");
  EXPECT_EQ(b.recv(16), "ping");
}

}  // namespace
}  // namespace anysock
