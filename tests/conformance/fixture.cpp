#include "fixture.hpp"

namespace anysock::testing {

void Conformance::SetUp() {
  saved_default_timeout_ = getdefaulttimeout();
  server_ = env().make_server();
  client_ = env().make_client();
}

void Conformance::TearDown() {
  setdefaulttimeout(saved_default_timeout_);
  if (env().after_each) env().after_each();
}

std::string Conformance::server_host(int family) const {
  return family == AF_INET6 ? env().server_host6 : env().server_host4;
}

std::string Conformance::dial_host(int family) const {
  return family == AF_INET6 ? env().dial_host6 : env().dial_host4;
}

bool Conformance::family_available(int family) const {
  if (family == AF_UNIX) return env().has_unix;
  if (family == AF_INET6) return env().has_ipv6;
  return true;
}

socket Conformance::listener(int family, int backlog) {
  socket s(*server_, family, SOCK_STREAM);
  s.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
  s.bind({server_host(family), 0});
  s.listen(backlog);
  return s;
}

address Conformance::dial_address(int family, const socket& server_socket) const {
  return {dial_host(family), server_socket.getsockname().port};
}

std::pair<socket, socket> Conformance::tcp_pair(int family) {
  socket l = listener(family);
  socket c(*client_, family, SOCK_STREAM);
  c.connect(dial_address(family, l));
  auto accepted = l.accept();
  return {std::move(c), std::move(accepted.first)};
}

std::pair<socket, socket> Conformance::udp_pair(int family) {
  socket srv(*server_, family, SOCK_DGRAM);
  srv.bind({server_host(family), 0});
  socket cli(*client_, family, SOCK_DGRAM);
  cli.bind({family == AF_INET6 ? "::" : "", 0});
  return {std::move(cli), std::move(srv)};
}

address Conformance::closed_udp_address(int family) {
  socket probe(*server_, family, SOCK_DGRAM);
  probe.bind({server_host(family), 0});
  return dial_address(family, probe);
}

}  // namespace anysock::testing
