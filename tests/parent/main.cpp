// Proves anysock built inside a parent project works, its lwIP included: a TCP pair on an lwIP host
// of the in-memory link echoes a message. Exit 0 on success.
#include <anysock/backend.hpp>
#include <anysock/socket.hpp>
#include <cstdio>
#include <string>

int main() {
  auto host = anysock::make_backend("lwip+sim");
  anysock::backend_scope scope(*host);
  auto [a, b] = anysock::socketpair(AF_INET, SOCK_STREAM);
  a.sendall("parent project");
  std::string got = b.recv(64);
  std::printf("parent received '%s' over lwip+sim\n", got.c_str());
  return got == "parent project" ? 0 : 1;
}
