// Echo server program — the IPv4/IPv6 server of the "Example" section of Python's socket
// documentation, line by line on anysock. It listens on the first address getaddrinfo gives that
// it can bind (so on one family only, as the Python example says):
//
//   HOST = None               # Symbolic name meaning all available interfaces
//   PORT = 50007              # Arbitrary non-privileged port
//   s = None
//   for res in socket.getaddrinfo(HOST, PORT, socket.AF_UNSPEC,
//                                 socket.SOCK_STREAM, 0, socket.AI_PASSIVE):
//       af, socktype, proto, canonname, sa = res
//       try:
//           s = socket.socket(af, socktype, proto)
//       except OSError as msg:
//           s = None
//           continue
//       try:
//           s.bind(sa)
//           s.listen(1)
//       except OSError as msg:
//           s.close()
//           s = None
//           continue
//       break
//   if s is None:
//       print('could not open socket')
//       sys.exit(1)
//   conn, addr = s.accept()
//   with conn:
//       print('Connected by', addr)
//       while True:
//           data = conn.recv(1024)
//           if not data: break
//           conn.send(data)
//
// Usage: echo_server_dualstack [HOST [PORT]]; an empty HOST means None. Serves one connection,
// then exits. Sockets live on the default backend (ANYSOCK_BACKEND).
#include <anysock/socket.hpp>
#include <iostream>
#include <optional>
#include <string>

#include "example_support.hpp"

int main(int argc, char** argv) {
  const auto [host_arg, port] = examples::parse_host_port(argc, argv, "");
  // HOST None is the symbolic name meaning all available interfaces.
  const std::optional<std::string> host =
      host_arg.empty() ? std::nullopt : std::optional<std::string>(host_arg);
  return examples::run(argv[0], [&] {
    std::optional<anysock::socket> s;
    for (const anysock::addr_info& res :
         anysock::getaddrinfo(host, port, AF_UNSPEC, SOCK_STREAM, 0, AI_PASSIVE)) {
      try {
        s.emplace(res.family, res.type, res.proto);
      } catch (const anysock::error&) {
        s.reset();
        continue;
      }
      try {
        s->bind(res.addr);
        s->listen(1);
      } catch (const anysock::error&) {
        s->close();
        s.reset();
        continue;
      }
      break;
    }
    if (!s) {
      std::cout << "could not open socket" << std::endl;
      return 1;
    }
    auto [conn, addr] = s->accept();
    std::cout << "Connected by " << examples::repr(addr) << std::endl;
    while (true) {
      std::string data = conn.recv(1024);
      if (data.empty()) break;
      conn.send(data);
    }
    return 0;
  });
}
