// A first case to prove the suite runs; real cases live in the other *_test.cpp files.
#include "fixture.hpp"

namespace anysock::testing {

TEST_P(Conformance, EchoOverTcpRoundTrips) {
  auto [c, s] = tcp_pair();
  c.sendall("ping");
  EXPECT_EQ(s.recv(16), "ping");
}

}  // namespace anysock::testing
