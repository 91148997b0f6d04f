// Run by ctest with ANYSOCK_BACKEND set to a malformed spec (see tests/CMakeLists.txt): the first
// use of the process default must fail with a std::invalid_argument naming the bad part, never
// fall back to a guess. Sockets on an explicit backend still work.
#include <gtest/gtest.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "anysock/socket.hpp"

namespace anysock {
namespace {

constexpr const char* kBadSpec = "kernel:bogus";  // "bogus" is not key=value

// The what() of the std::invalid_argument `op` throws ("" if it returns).
template <class Op>
std::string invalid_argument_of(Op&& op) {
  try {
    op();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(BadBackendEnvironment, FirstSocketCreationThrowsInvalidArgumentNamingTheBadPart) {
  const char* env = std::getenv("ANYSOCK_BACKEND");
  ASSERT_NE(env, nullptr) << "run through ctest, which sets ANYSOCK_BACKEND=" << kBadSpec;
  ASSERT_STREQ(env, kBadSpec);

  std::string message = invalid_argument_of([] { socket s(AF_INET, SOCK_STREAM); });
  EXPECT_NE(message.find("'bogus'"), std::string::npos) << message;
  // Still an error on the next attempt: a bad spec is never replaced by a guess.
  message = invalid_argument_of([] { socket s(AF_INET, SOCK_DGRAM); });
  EXPECT_NE(message.find("'bogus'"), std::string::npos) << message;
  EXPECT_NE(invalid_argument_of([] { default_backend(); }), "");
}

TEST(BadBackendEnvironment, SocketsOnAnExplicitBackendStillWork) {
  socket s(kernel_backend(), AF_INET, SOCK_STREAM);
  EXPECT_GE(s.fileno(), 0);
  backend_scope scope(kernel_backend());
  socket scoped(AF_INET, SOCK_STREAM);
  EXPECT_EQ(&scoped.get_backend(), &kernel_backend());
}

}  // namespace
}  // namespace anysock
