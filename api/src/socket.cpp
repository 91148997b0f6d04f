// anysock::socket: Python's socket semantics (timeouts, errors, argument checks) over any backend.
//
// The socket object holds a shared socket_state (shared with socket_streams). Each call turns the
// socket's timeout into a wait_spec for its backend and turns the backend's errno into exceptions.
#include "anysock/socket.hpp"

#include <fcntl.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "sockaddr.hpp"
#include "socket_state.hpp"

namespace anysock {
namespace detail {

void check_timeout(std::optional<double> t) {
  if (!t) return;
  // CPython's rules: NaN and negative values are ValueError; anything a 64-bit count of
  // nanoseconds cannot hold (inf included) is OverflowError.
  if (std::isnan(*t)) throw std::invalid_argument("Invalid value NaN (not a number)");
  if (*t < 0) throw std::invalid_argument("Timeout value out of range");
  if (*t > kMaxTimeout) throw std::invalid_argument("timestamp out of range for platform time_t");
}

void socket_state::set_timeout(std::optional<double> t) {
  check_timeout(t);
  double value = t ? *t : -1.0;
  timeout.store(value, std::memory_order_relaxed);
  wait_spec::mode m =
      !t ? wait_spec::mode::block : (*t == 0 ? wait_spec::mode::nonblock : wait_spec::mode::until);
  if (int err = impl->set_wait_mode(m); err != 0) throw error(err, "settimeout");
}

wait_spec socket_state::wait_for(std::optional<double> t) const {
  if (!t) return {wait_spec::mode::block, 0};
  if (*t == 0) return {wait_spec::mode::nonblock, 0};
  return {wait_spec::mode::until, owner->now() + *t};
}

void raise_io(int err, const char* what) {
  if (err == wait_timed_out) throw timeout();
  throw error(err, what);
}

}  // namespace detail

namespace {

using detail::sockaddr_any;

void check(int err, const char* what) {
  if (err != 0) detail::raise_io(err, what);
}

constexpr int kTypeFlags = SOCK_NONBLOCK | SOCK_CLOEXEC;

std::shared_ptr<detail::socket_state> open_state(backend& b, int family, int type, int proto) {
  std::unique_ptr<socket_impl> impl;
  check(b.open(family, type & ~kTypeFlags, proto, impl), "socket");
  auto st = std::make_shared<detail::socket_state>(b.share(), std::move(impl), family,
                                                   type & ~kTypeFlags, proto);
  st->set_timeout((type & SOCK_NONBLOCK) ? std::optional<double>(0.0) : getdefaulttimeout());
  return st;
}

}  // namespace

socket::socket(int family, int type, int proto) : socket(default_backend(), family, type, proto) {}

socket::socket(backend& b, int family, int type, int proto)
    : state_(open_state(b, family, type, proto)),
      family_(family),
      type_(type & ~kTypeFlags),
      proto_(proto) {}

socket::socket(std::shared_ptr<detail::socket_state> state, int family, int type, int proto)
    : state_(std::move(state)), family_(family), type_(type), proto_(proto) {}

socket::socket(socket&& other) noexcept
    : state_(other.exchange_state(nullptr)),
      identity_(std::move(other.identity_)),
      family_(other.family_),
      type_(other.type_),
      proto_(other.proto_) {
  if (identity_ != nullptr) identity_->where = this;  // pollers follow the socket here
}

socket& socket::operator=(socket&& other) noexcept {
  if (this != &other) {
    exchange_state(other.exchange_state(nullptr));  // the old state is released outside the lock
    family_ = other.family_;
    type_ = other.type_;
    proto_ = other.proto_;
    if (identity_ != nullptr) identity_->where = nullptr;  // the old socket leaves its pollers
    identity_ = std::move(other.identity_);
    if (identity_ != nullptr) identity_->where = this;
  }
  return *this;
}

socket::~socket() {
  if (identity_ != nullptr) identity_->where = nullptr;
}

std::shared_ptr<detail::socket_state> socket::load_state() const {
  while (state_lock_.test_and_set(std::memory_order_acquire)) {
  }
  std::shared_ptr<detail::socket_state> copy = state_;
  state_lock_.clear(std::memory_order_release);
  return copy;
}

std::shared_ptr<detail::socket_state> socket::exchange_state(
    std::shared_ptr<detail::socket_state> s) {
  while (state_lock_.test_and_set(std::memory_order_acquire)) {
  }
  state_.swap(s);
  state_lock_.clear(std::memory_order_release);
  return s;  // the previous state; destroyed by the caller, not under the lock
}

std::shared_ptr<detail::socket_state> socket::state() const {
  std::shared_ptr<detail::socket_state> st = load_state();
  if (!st) throw error(EBADF, "socket is closed");
  return st;
}

backend& socket::get_backend() const { return *state()->owner; }

void socket::close() {
  std::shared_ptr<detail::socket_state> st = exchange_state(nullptr);
  // The last owner (no makefile() stream holds the socket) closes it now and reports what the OS
  // says, as CPython does; otherwise the last stream's close releases it.
  if (!st || st.use_count() != 1) return;
  if (int err = st->impl->close(); err != 0) throw error(err, "close");
}

int socket::fileno() const {
  std::shared_ptr<detail::socket_state> st = load_state();
  return st ? st->impl->fileno() : -1;
}

std::pair<socket, address> socket::accept() {
  const auto keep = state();
  detail::socket_state& st = *keep;
  std::unique_ptr<socket_impl> impl;
  sockaddr_any peer;
  peer.len = sizeof peer.storage;
  check(st.impl->accept(st.wait(), impl, peer.storage, peer.len), "accept");
  auto child =
      std::make_shared<detail::socket_state>(st.owner, std::move(impl), family_, type_, proto_);
  child->set_timeout(getdefaulttimeout());
  return {socket(std::move(child), family_, type_, proto_),
          detail::from_sockaddr(peer.get(), peer.len)};
}

void socket::bind(const address& addr) {
  const auto keep = state();
  detail::socket_state& st = *keep;
  sockaddr_any sa = detail::to_sockaddr(*st.owner, family_, addr);
  check(st.impl->bind(sa.get(), sa.len), ("bind to " + to_string(addr)).c_str());
}

int socket::connect_ex(const address& addr) {
  const auto keep = state();
  detail::socket_state& st = *keep;
  sockaddr_any sa = detail::to_sockaddr(*st.owner, family_, addr);
  int err = st.impl->connect(sa.get(), sa.len, st.wait());
  if (err == wait_timed_out) return EAGAIN;  // Python's connect_ex reports a timeout as EAGAIN
  return err;
}

void socket::connect(const address& addr) {
  const auto keep = state();
  detail::socket_state& st = *keep;
  sockaddr_any sa = detail::to_sockaddr(*st.owner, family_, addr);
  check(st.impl->connect(sa.get(), sa.len, st.wait()), ("connect to " + to_string(addr)).c_str());
}

address socket::getpeername() const {
  sockaddr_any sa;
  sa.len = sizeof sa.storage;
  check(state()->impl->getpeername(sa.storage, sa.len), "getpeername");
  return detail::from_sockaddr(sa.get(), sa.len);
}

address socket::getsockname() const {
  sockaddr_any sa;
  sa.len = sizeof sa.storage;
  check(state()->impl->getsockname(sa.storage, sa.len), "getsockname");
  return detail::from_sockaddr(sa.get(), sa.len);
}

int socket::getsockopt(int level, int opt) const {
  int value = 0;
  socklen_t len = sizeof value;
  check(state()->impl->getsockopt(level, opt, &value, len), "getsockopt");
  return value;
}

std::string socket::getsockopt(int level, int opt, size_t buflen) const {
  if (buflen == 0 || buflen > 1024) throw error(EINVAL, "getsockopt buflen out of range");
  std::string value(buflen, '\0');
  auto len = static_cast<socklen_t>(buflen);
  check(state()->impl->getsockopt(level, opt, value.data(), len), "getsockopt");
  value.resize(len);
  return value;
}

void socket::setsockopt(int level, int opt, int value) {
  check(state()->impl->setsockopt(level, opt, &value, sizeof value), "setsockopt");
}

void socket::setsockopt(int level, int opt, std::string_view value) {
  check(state()->impl->setsockopt(level, opt, value.data(), static_cast<socklen_t>(value.size())),
        "setsockopt");
}

void socket::listen(int backlog) {
  check(state()->impl->listen(backlog < 0 ? 0 : backlog), "listen");
}

socket_stream socket::makefile(std::string_view mode, int bufsize) {
  bool readable = false, writable = false;
  for (char c : mode) {
    if (c == 'r' && !readable) {
      readable = true;
    } else if (c == 'w' && !writable) {
      writable = true;
    } else if (c != 'b') {
      throw std::invalid_argument("invalid mode '" + std::string(mode) +
                                  "' (only r, w, b allowed)");
    }
  }
  if (!readable && !writable) readable = true;
  const auto keep = state();
  detail::socket_state& st = *keep;
  if (st.get_timeout() == std::optional<double>(0.0)) {
    throw error(EINVAL, "makefile() needs a blocking socket or one with a timeout");
  }
  size_t size = bufsize < 0 ? 8192 : static_cast<size_t>(bufsize);
  return socket_stream(keep, readable, writable, size);
}

namespace {

// A receive buffer larger than any read can fill (CPython raises before allocating it).
void check_bufsize(size_t bufsize) {
  if (bufsize > static_cast<size_t>(std::numeric_limits<ssize_t>::max())) {
    throw std::invalid_argument("buffersize too large");
  }
}

}  // namespace

std::string socket::recv(size_t bufsize, int flags) {
  check_bufsize(bufsize);
  std::string out(bufsize, '\0');
  out.resize(recv_into(out.data(), bufsize, flags));
  return out;
}

size_t socket::recv_into(void* buf, size_t nbytes, int flags) {
  const auto keep = state();
  detail::socket_state& st = *keep;
  size_t got = 0;
  check(st.impl->recv(buf, nbytes, flags, st.wait(), got, nullptr, nullptr), "recv");
  return got;
}

size_t socket::recv_into(std::span<std::byte> buf, int flags) {
  return recv_into(buf.data(), buf.size(), flags);
}

std::pair<std::string, address> socket::recvfrom(size_t bufsize, int flags) {
  check_bufsize(bufsize);
  std::string out(bufsize, '\0');
  auto [n, from] = recvfrom_into(out.data(), bufsize, flags);
  out.resize(n);
  return {std::move(out), std::move(from)};
}

std::pair<size_t, address> socket::recvfrom_into(void* buf, size_t nbytes, int flags) {
  const auto keep = state();
  detail::socket_state& st = *keep;
  sockaddr_any from;
  from.len = sizeof from.storage;
  size_t got = 0;
  check(st.impl->recv(buf, nbytes, flags, st.wait(), got, &from.storage, &from.len), "recvfrom");
  return {got, detail::from_sockaddr(from.get(), from.len)};
}

size_t socket::send(std::string_view data, int flags) {
  const auto keep = state();
  detail::socket_state& st = *keep;
  size_t sent = 0;
  check(st.impl->send(data.data(), data.size(), flags, st.wait(), sent, nullptr, 0), "send");
  return sent;
}

void socket::sendall(std::string_view data, int flags) {
  const auto keep = state();
  detail::socket_state& st = *keep;
  const wait_spec wait = st.wait();  // one deadline for the whole call
  size_t done = 0;
  do {
    size_t sent = 0;
    check(st.impl->send(data.data() + done, data.size() - done, flags, wait, sent, nullptr, 0),
          "sendall");
    done += sent;
  } while (done < data.size());
}

size_t socket::sendto(std::string_view data, const address& addr) { return sendto(data, 0, addr); }

size_t socket::sendto(std::string_view data, int flags, const address& addr) {
  const auto keep = state();
  detail::socket_state& st = *keep;
  sockaddr_any to = detail::to_sockaddr(*st.owner, family_, addr);
  size_t sent = 0;
  check(st.impl->send(data.data(), data.size(), flags, st.wait(), sent, to.get(), to.len),
        ("sendto " + to_string(addr)).c_str());
  return sent;
}

void socket::setblocking(bool flag) {
  settimeout(flag ? std::nullopt : std::optional<double>(0.0));
}

void socket::settimeout(std::optional<double> seconds) { state()->set_timeout(seconds); }

std::optional<double> socket::gettimeout() const { return state()->get_timeout(); }

void socket::shutdown(int how) {
  const auto keep = state();  // a closed socket is EBADF first, as on the OS
  if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) {
    throw error(EINVAL, "shutdown: how must be SHUT_RD, SHUT_WR or SHUT_RDWR");
  }
  check(keep->impl->shutdown(how), "shutdown");
}

}  // namespace anysock
