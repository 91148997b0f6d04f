// Echo over the in-memory link — the echo server and client of Python's socket documentation
// (see echo_server.cpp and echo_client.cpp for the originals), run in one process on two lwIP
// hosts, "server" and "client", of the in-memory link ("lwip+sim"), which exists only inside this
// process:
//
//   server thread, on host "server":         client, on host "client":
//     s.bind(('', 50007))                      s = create_connection(('server', 50007))
//     s.listen(1)                              s.sendall(b'Hello, world')
//     conn, addr = s.accept()                  data = s.recv(1024)
//     while data := conn.recv(1024):
//         conn.sendall(data)
//
// The client finds the server by name through its own lwIP host. Prints what each side sent and
// received, then the link's counters (frames that crossed it). Exit status 0 only if the client got
// back exactly what it sent. Usage: echo_sim (no arguments).
#include <anysock/lwip.hpp>
#include <anysock/socket.hpp>
#include <future>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "example_support.hpp"

namespace {

constexpr uint16_t kPort = 50007;  // the same arbitrary non-privileged port as Python's

std::string describe(anysock::backend& host, const anysock::address& local) {
  return "(lwip+sim host " + host.gethostname() + ", " + local.host + ")";
}

// The echo server on `host`: serves one connection. `listening` is set once it listens (or holds
// the error that stopped it before).
void echo_server(anysock::backend& host, std::promise<void>& listening) {
  anysock::backend_scope scope(host);  // sockets of this thread live on `host`
  anysock::socket s(AF_INET, SOCK_STREAM);
  try {
    s.bind({"", kPort});  // '' = all of this host's interfaces
    s.listen(1);
  } catch (...) {
    listening.set_exception(std::current_exception());
    return;
  }
  listening.set_value();
  auto [conn, addr] = s.accept();
  std::cout << "server " << describe(host, conn.getsockname()) << ": accepted a connection from "
            << addr.host << ":" << addr.port << std::endl;
  std::string echoed;
  while (true) {
    std::string data = conn.recv(1024);
    if (data.empty()) break;
    conn.sendall(data);
    echoed += data;
  }
  std::cout << "server: received " << examples::repr(echoed) << " (" << echoed.size()
            << " bytes), sent it back" << std::endl;
}

void print_link_counters() {
  std::cout << "link counters:" << std::endl;
  for (const auto& l : anysock::lwip::read_counters().links) {
    std::cout << "  host " << l.host << " (" << l.link << "): " << l.frames_out << " frames / "
              << l.bytes_out << " bytes out, " << l.frames_in << " frames / " << l.bytes_in
              << " bytes in" << std::endl;
  }
}

}  // namespace

int main(int, char** argv) {
  return examples::run(argv[0], [&] {
    anysock::setdefaulttimeout(10.0);  // seconds: no step may hang the demo
    auto server_host = anysock::make_backend("lwip+sim:host=server");
    auto client_host = anysock::make_backend("lwip+sim:host=client");

    std::promise<void> listening;
    std::exception_ptr server_error;
    std::thread server([&] {
      try {
        echo_server(*server_host, listening);
      } catch (...) {
        server_error = std::current_exception();
      }
    });

    const std::string sent = "Hello, world";
    std::string data, client_side;
    try {
      listening.get_future().get();
      anysock::backend_scope scope(*client_host);  // sockets of this thread live on "client"
      anysock::socket s = anysock::create_connection({"server", kPort});
      client_side = describe(*client_host, s.getsockname());
      s.sendall(sent);
      data = s.recv(1024);
    } catch (...) {
      server.join();
      throw;
    }
    server.join();  // the server finishes once the client's socket is closed
    if (server_error) std::rethrow_exception(server_error);
    std::cout << "client " << client_side << ": sent " << examples::repr(sent) << " ("
              << sent.size() << " bytes), received " << examples::repr(data) << " (" << data.size()
              << " bytes)" << std::endl;
    print_link_counters();
    return data == sent ? 0 : 1;
  });
}
