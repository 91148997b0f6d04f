// The state one open socket shares between its anysock::socket and its socket_streams.
#pragma once

#include <atomic>
#include <memory>
#include <optional>

#include "anysock/backend.hpp"
#include "anysock/socket.hpp"

namespace anysock::detail {

struct socket_state {
  socket_state(std::shared_ptr<backend> b, std::unique_ptr<socket_impl> i, int fam, int typ,
               int prot)
      : owner(std::move(b)), impl(std::move(i)), family(fam), type(typ), proto(prot) {}

  std::shared_ptr<backend> owner;  // declared before impl: the impl is destroyed first
  std::unique_ptr<socket_impl> impl;
  std::atomic<double> timeout{-1.0};  // < 0: blocking, 0: non-blocking, > 0: seconds
  int family;
  int type;
  int proto;

  std::optional<double> get_timeout() const {
    double t = timeout.load(std::memory_order_relaxed);
    if (t < 0) return std::nullopt;
    return t;
  }
  void set_timeout(std::optional<double> t);
  /// The wait for one call that starts now.
  wait_spec wait() const { return wait_for(get_timeout()); }
  /// The wait for a call bounded by `t` seconds from now (nullopt: forever).
  wait_spec wait_for(std::optional<double> t) const;
};

/// Where a socket object registered with pollers is now: moves with the object's contents (move
/// construction and assignment), null once that object is destroyed or assigned over.
struct socket_identity {
  explicit socket_identity(socket* s) : where(s) {}
  std::atomic<socket*> where;
};

/// Raises anysock::timeout for wait_timed_out, anysock::error(err, context) for an errno.
[[noreturn]] void raise_io(int err, const char* what);
/// The longest timeout in seconds: what CPython's 64-bit nanosecond clock type holds.
inline constexpr double kMaxTimeout = 9223372036.854775807;
/// Throws std::invalid_argument unless `t` is a valid timeout (0 <= t <= kMaxTimeout; not NaN).
void check_timeout(std::optional<double> t);

/// Grants library code access to a socket's private state.
struct socket_access {
  /// The socket's state (null once closed), kept alive by the returned pointer.
  static std::shared_ptr<socket_state> state(const socket& s) { return s.load_state(); }
  /// The socket's identity for pollers, made on first use.
  static const std::shared_ptr<socket_identity>& identity(socket& s) {
    if (s.identity_ == nullptr) s.identity_ = std::make_shared<socket_identity>(&s);
    return s.identity_;
  }
  /// The socket's identity, null if no poller ever registered it.
  static const socket_identity* find_identity(const socket& s) { return s.identity_.get(); }
  static socket make(std::shared_ptr<socket_state> st) {
    int f = st->family, t = st->type, p = st->proto;
    return socket(std::move(st), f, t, p);
  }
};

}  // namespace anysock::detail
