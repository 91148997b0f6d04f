// Proves an installed anysock works: a socketpair echoes a message. Exit 0 on success.
#include <anysock/socket.hpp>
#include <cstdio>

int main() {
  auto [a, b] = anysock::socketpair();
  a.sendall("installed");
  std::string got = b.recv(64);
  std::printf("consumer received '%s'\n", got.c_str());
  return got == "installed" ? 0 : 1;
}
