// The exception family (error, herror, gaierror, timeout) and the process-wide default timeout.
#include "anysock/error.hpp"

#include <gtest/gtest.h>
#include <netdb.h>

#include <cerrno>
#include <cmath>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>

#include "anysock/socket.hpp"

namespace anysock {
namespace {

// Restores the default timeout a test changes.
class default_timeout_guard {
 public:
  default_timeout_guard() : saved_(getdefaulttimeout()) {}
  ~default_timeout_guard() { setdefaulttimeout(saved_); }
  default_timeout_guard(const default_timeout_guard&) = delete;
  default_timeout_guard& operator=(const default_timeout_guard&) = delete;

 private:
  std::optional<double> saved_;
};

TEST(Error, CarriesTheErrnoAndPythonsMessage) {
  const error e(ECONNREFUSED);
  EXPECT_EQ(e.code().value(), ECONNREFUSED);
  EXPECT_EQ(e.code().category(), std::generic_category());
  EXPECT_EQ(e.code(), std::errc::connection_refused);
  EXPECT_STREQ(e.what(),
               ("[Errno " + std::to_string(ECONNREFUSED) + "] Connection refused").c_str());
}

TEST(Error, AppendsContextInParentheses) {
  const error e(EADDRINUSE, "bind to 127.0.0.1:80");
  EXPECT_EQ(e.code().value(), EADDRINUSE);
  EXPECT_STREQ(e.what(), ("[Errno " + std::to_string(EADDRINUSE) +
                          "] Address already in use (bind to 127.0.0.1:80)")
                             .c_str());
}

TEST(Herror, CarriesTheResolverCodeAndItsText) {
  const herror e(HOST_NOT_FOUND);
  EXPECT_EQ(e.code().value(), HOST_NOT_FOUND);
  EXPECT_EQ(&e.code().category(), &herror_category());
  EXPECT_EQ(std::string(e.what()),
            "[Errno " + std::to_string(HOST_NOT_FOUND) + "] " + hstrerror(HOST_NOT_FOUND));
  EXPECT_EQ(herror_category().message(TRY_AGAIN), hstrerror(TRY_AGAIN));
}

TEST(Gaierror, CodeIsTheEaiValue) {
  const gaierror e(EAI_NONAME);
  EXPECT_EQ(e.code().value(), EAI_NONAME);
  EXPECT_EQ(&e.code().category(), &gai_category());
  EXPECT_EQ(std::string(e.what()),
            "[Errno " + std::to_string(EAI_NONAME) + "] " + gai_strerror(EAI_NONAME));
  EXPECT_EQ(gai_category().message(EAI_AGAIN), gai_strerror(EAI_AGAIN));
}

TEST(Gaierror, AppendsContextInParentheses) {
  const gaierror e(EAI_NONAME, "example.invalid");
  EXPECT_EQ(std::string(e.what()), "[Errno " + std::to_string(EAI_NONAME) + "] " +
                                       gai_strerror(EAI_NONAME) + " (example.invalid)");
}

TEST(Timeout, SaysTimedOutWithEtimedout) {
  const timeout e;
  EXPECT_STREQ(e.what(), "timed out");
  EXPECT_EQ(e.code().value(), ETIMEDOUT);
  EXPECT_EQ(e.code().category(), std::generic_category());
}

TEST(Exceptions, AreAllCatchableAsErrorAndSystemError) {
  auto as_error = [](auto thrown) -> int {
    try {
      throw thrown;
    } catch (const error& e) {
      return e.code().value();
    }
  };
  auto as_system_error = [](auto thrown) -> int {
    try {
      throw thrown;
    } catch (const std::system_error& e) {
      return e.code().value();
    }
  };
  EXPECT_EQ(as_error(error(EPIPE)), EPIPE);
  EXPECT_EQ(as_error(herror(NO_RECOVERY)), NO_RECOVERY);
  EXPECT_EQ(as_error(gaierror(EAI_FAIL)), EAI_FAIL);
  EXPECT_EQ(as_error(timeout()), ETIMEDOUT);
  EXPECT_EQ(as_system_error(error(EPIPE)), EPIPE);
  EXPECT_EQ(as_system_error(herror(NO_RECOVERY)), NO_RECOVERY);
  EXPECT_EQ(as_system_error(gaierror(EAI_FAIL)), EAI_FAIL);
  EXPECT_EQ(as_system_error(timeout()), ETIMEDOUT);

  // what() through the base class is the Python-style message, not system_error's own.
  try {
    throw timeout();
  } catch (const std::exception& e) {
    EXPECT_STREQ(e.what(), "timed out");
  }
}

TEST(DefaultTimeout, RoundTripsEveryMode) {
  default_timeout_guard guard;
  setdefaulttimeout(3.5);
  EXPECT_EQ(getdefaulttimeout(), 3.5);
  setdefaulttimeout(0.0);
  EXPECT_EQ(getdefaulttimeout(), 0.0);
  setdefaulttimeout(std::nullopt);
  EXPECT_EQ(getdefaulttimeout(), std::nullopt);
}

TEST(DefaultTimeout, NegativeOrNanIsAnInvalidArgumentAndChangesNothing) {
  default_timeout_guard guard;
  setdefaulttimeout(1.25);
  EXPECT_THROW(setdefaulttimeout(-1.0), std::invalid_argument);
  EXPECT_THROW(setdefaulttimeout(-0.001), std::invalid_argument);
  EXPECT_THROW(setdefaulttimeout(std::numeric_limits<double>::quiet_NaN()), std::invalid_argument);
  EXPECT_EQ(getdefaulttimeout(), 1.25);
}

}  // namespace
}  // namespace anysock
