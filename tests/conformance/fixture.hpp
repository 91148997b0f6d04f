// The conformance suite's fixture: every test body runs once per environment (a server backend, a
// client backend and the addresses the client dials). The kernel backend is the reference; other
// backends join by adding an environment in environments.cpp, never by copying a test.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <utility>

#include "../support/support.hpp"
#include "anysock/socket.hpp"

namespace anysock::testing {

struct conformance_env {
  std::string name;  // shows in test names: "kernel", "lwip_two_hosts", ...
  std::function<std::shared_ptr<backend>()> make_server;
  std::function<std::shared_ptr<backend>()> make_client;  // may return the server's backend
  std::string server_host4 = "127.0.0.1";                 // the server binds here
  std::string dial_host4 = "127.0.0.1";                   // the client dials here
  std::string server_host6 = "::1";
  std::string dial_host6 = "::1";
  std::string server_name = "localhost";  // a name the client resolves to the server (IPv4)
  bool has_unix = true;                   // AF_UNIX sockets exist on both backends
  bool has_ipv6 = true;
  // Runs after each test once its sockets are closed (e.g. "every lwIP pool is back to its start").
  std::function<void()> after_each;
};

/// gtest prints an environment by its name (not as bytes).
inline void PrintTo(const conformance_env& e, std::ostream* os) { *os << e.name; }

class Conformance : public ::testing::TestWithParam<conformance_env> {
 protected:
  void SetUp() override;
  void TearDown() override;

  backend& server() { return *server_; }
  backend& client() { return *client_; }
  const conformance_env& env() const { return GetParam(); }

  /// The host the server binds and the one the client dials, for AF_INET or AF_INET6.
  std::string server_host(int family) const;
  std::string dial_host(int family) const;
  /// Skips the test (with a message) if `family` is not available in this environment.
  bool family_available(int family) const;

  /// A TCP socket on the server backend, bound to an ephemeral port and listening.
  socket listener(int family = AF_INET, int backlog = 16);
  /// Where the client reaches `server_socket` (dial host + its port).
  address dial_address(int family, const socket& server_socket) const;
  /// {client side, server side} of a fresh TCP connection.
  std::pair<socket, socket> tcp_pair(int family = AF_INET);
  /// {client, server} UDP sockets, both bound; the server's address is reachable from the client.
  std::pair<socket, socket> udp_pair(int family = AF_INET);
  /// Where the client reaches a UDP port of the server's host that nothing listens on (a port
  /// just bound and closed again): a datagram sent there is answered by ICMP port unreachable.
  address closed_udp_address(int family = AF_INET);

 private:
  std::shared_ptr<backend> server_;
  std::shared_ptr<backend> client_;
  std::optional<double> saved_default_timeout_;
};

/// Skips the current test when `family` isn't available (use: SKIP_UNLESS_FAMILY(AF_UNIX);).
#define SKIP_UNLESS_FAMILY(family)                                                                \
  do {                                                                                            \
    if (!family_available(family)) GTEST_SKIP() << #family " is not available in " << env().name; \
  } while (0)

}  // namespace anysock::testing
