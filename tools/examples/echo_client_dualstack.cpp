// Echo client program — the IPv4/IPv6 client of the "Example" section of Python's socket
// documentation, line by line on anysock. It tries every address the name resolves to and talks to
// the first one that accepts:
//
//   HOST = 'daring.cwi.nl'    # The remote host
//   PORT = 50007              # The same port as used by the server
//   s = None
//   for res in socket.getaddrinfo(HOST, PORT, socket.AF_UNSPEC, socket.SOCK_STREAM):
//       af, socktype, proto, canonname, sa = res
//       try:
//           s = socket.socket(af, socktype, proto)
//       except OSError as msg:
//           s = None
//           continue
//       try:
//           s.connect(sa)
//       except OSError as msg:
//           s.close()
//           s = None
//           continue
//       break
//   if s is None:
//       print('could not open socket')
//       sys.exit(1)
//   with s:
//       s.sendall(b'Hello, world')
//       data = s.recv(1024)
//   print('Received', repr(data))
//
// Usage: echo_client_dualstack [HOST [PORT]]. HOST defaults to "localhost" (not Python's remote
// host). Prints "Received 'Hello, world'". Sockets live on the default backend (ANYSOCK_BACKEND).
#include <anysock/socket.hpp>
#include <iostream>
#include <optional>
#include <string>

#include "example_support.hpp"

int main(int argc, char** argv) {
  // HOST is the remote host; PORT the same port as used by the server.
  const auto [host, port] = examples::parse_host_port(argc, argv, "localhost");
  return examples::run(argv[0], [&] {
    std::optional<anysock::socket> s;
    for (const anysock::addr_info& res : anysock::getaddrinfo(host, port, AF_UNSPEC, SOCK_STREAM)) {
      try {
        s.emplace(res.family, res.type, res.proto);
      } catch (const anysock::error&) {
        s.reset();
        continue;
      }
      try {
        s->connect(res.addr);
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
    s->sendall("Hello, world");  // with s:
    std::string data = s->recv(1024);
    s->close();  // (the end of the with block)
    std::cout << "Received " << examples::repr(data) << std::endl;
    return 0;
  });
}
