// anysock exceptions: Python's OSError family (`socket.error`, `herror`, `gaierror`, `timeout`).
//
// Every failure a caller can see is an `anysock::error` carrying an errno value (or an EAI_* /
// h_errno value for the name-service errors), on every backend. Argument errors that Python reports
// as ValueError/TypeError are `std::invalid_argument` instead.
#pragma once

#include <string>
#include <system_error>

namespace anysock {

/// Python's OSError / socket.error. `code().value()` is the errno; `what()` reads like Python's
/// message: "[Errno 111] Connection refused", optionally followed by context ("(connect to ...)").
class error : public std::system_error {
 public:
  /// errno `err` with the standard message for it, plus optional context.
  explicit error(int err, const std::string& context = {});
  /// A code of any category with a message of the caller's own (used by the subclasses).
  error(std::error_code code, std::string message);
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

/// Python's socket.herror: a resolver failure from the gethostby* family; code is the h_errno value
/// (HOST_NOT_FOUND, TRY_AGAIN, NO_RECOVERY, NO_DATA) in `herror_category()`.
class herror : public error {
 public:
  explicit herror(int h_err);
};

/// Python's socket.gaierror: a getaddrinfo/getnameinfo failure; code is the EAI_* value (negative
/// on glibc) in `gai_category()`, `what()` is "[Errno N] <gai_strerror text>".
class gaierror : public error {
 public:
  explicit gaierror(int eai, const std::string& context = {});
};

/// Python's socket.timeout: an operation on a socket with a timeout ran out of time.
/// `what()` is exactly "timed out"; `code().value()` is ETIMEDOUT.
class timeout : public error {
 public:
  timeout();
};

const std::error_category& gai_category() noexcept;
const std::error_category& herror_category() noexcept;

}  // namespace anysock
