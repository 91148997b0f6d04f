// Echo client program — the IPv4 client of the "Example" section of Python's socket
// documentation, line by line on anysock:
//
//   HOST = 'daring.cwi.nl'    # The remote host
//   PORT = 50007              # The same port as used by the server
//   with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
//       s.connect((HOST, PORT))
//       s.sendall(b'Hello, world')
//       data = s.recv(1024)
//   print('Received', repr(data))
//
// Usage: echo_client [HOST [PORT]]. HOST defaults to "localhost" (not Python's remote host).
// Prints "Received 'Hello, world'". The socket lives on the default backend (ANYSOCK_BACKEND).
#include <anysock/socket.hpp>
#include <iostream>
#include <string>

#include "example_support.hpp"

int main(int argc, char** argv) {
  // HOST is the remote host; PORT the same port as used by the server.
  const auto [host, port] = examples::parse_host_port(argc, argv, "localhost");
  return examples::run(argv[0], [&] {
    std::string data;
    {
      anysock::socket s(AF_INET, SOCK_STREAM);  // closed at the end of the block, like `with`
      s.connect({host, port});
      s.sendall("Hello, world");
      data = s.recv(1024);
    }
    std::cout << "Received " << examples::repr(data) << std::endl;
    return 0;
  });
}
