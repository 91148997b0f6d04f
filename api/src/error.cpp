#include "anysock/error.hpp"

#include <netdb.h>

#include <cerrno>
#include <cstring>

namespace anysock {
namespace {

std::string errno_text(int err) {
  char buf[256];
  // GNU strerror_r returns the message (possibly not in buf).
  const char* text = strerror_r(err, buf, sizeof buf);
  return text;
}

std::string with_context(std::string message, const std::string& context) {
  if (!context.empty()) message += " (" + context + ")";
  return message;
}

class gai_category_impl : public std::error_category {
 public:
  const char* name() const noexcept override { return "getaddrinfo"; }
  std::string message(int eai) const override { return gai_strerror(eai); }
};

class herror_category_impl : public std::error_category {
 public:
  const char* name() const noexcept override { return "resolver"; }
  std::string message(int h_err) const override { return hstrerror(h_err); }
};

}  // namespace

const std::error_category& gai_category() noexcept {
  static const gai_category_impl instance;
  return instance;
}

const std::error_category& herror_category() noexcept {
  static const herror_category_impl instance;
  return instance;
}

error::error(int err, const std::string& context)
    : error(std::error_code(err, std::generic_category()),
            with_context("[Errno " + std::to_string(err) + "] " + errno_text(err), context)) {}

error::error(std::error_code code, std::string message)
    : std::system_error(code, message), message_(std::move(message)) {}

herror::herror(int h_err)
    : error(std::error_code(h_err, herror_category()),
            "[Errno " + std::to_string(h_err) + "] " + hstrerror(h_err)) {}

gaierror::gaierror(int eai, const std::string& context)
    : error(std::error_code(eai, gai_category()),
            with_context("[Errno " + std::to_string(eai) + "] " + gai_strerror(eai), context)) {}

timeout::timeout() : error(std::error_code(ETIMEDOUT, std::generic_category()), "timed out") {}

}  // namespace anysock
