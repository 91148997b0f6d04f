// Echo server program — the IPv4 server of the "Example" section of Python's socket
// documentation, line by line on anysock:
//
//   HOST = ''                 # Symbolic name meaning all available interfaces
//   PORT = 50007              # Arbitrary non-privileged port
//   with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
//       s.bind((HOST, PORT))
//       s.listen(1)
//       conn, addr = s.accept()
//       with conn:
//           print('Connected by', addr)
//           while True:
//               data = conn.recv(1024)
//               if not data: break
//               conn.sendall(data)
//
// Usage: echo_server [HOST [PORT]]. Serves one connection, then exits. The socket lives on the
// default backend (ANYSOCK_BACKEND).
#include <anysock/socket.hpp>
#include <iostream>
#include <string>

#include "example_support.hpp"

int main(int argc, char** argv) {
  // HOST '' is the symbolic name meaning all available interfaces; PORT an arbitrary
  // non-privileged port.
  const auto [host, port] = examples::parse_host_port(argc, argv, "");
  return examples::run(argv[0], [&] {
    anysock::socket s(AF_INET, SOCK_STREAM);  // closed at the end of the scope, like `with`
    s.bind({host, port});
    s.listen(1);
    auto [conn, addr] = s.accept();
    std::cout << "Connected by " << examples::repr(addr) << std::endl;
    while (true) {
      std::string data = conn.recv(1024);
      if (data.empty()) break;
      conn.sendall(data);
    }
    return 0;
  });
}
