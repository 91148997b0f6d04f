// The backend interface: what a network stack implements so that anysock::socket runs on it, and
// how programs choose one (per socket, per thread scope, per process through ANYSOCK_BACKEND).
//
// Backends speak errno values, not exceptions: every socket_impl operation returns 0 on success, a
// positive errno on failure, or `wait_timed_out` when its wait_spec ran out. The throwing layer in
// anysock::socket is thin over it. Addresses cross this interface as the platform's sockaddr
// structs (already resolved), so AF_* / SOL_* / SO_* constants mean the same on every backend.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "anysock/address.hpp"

namespace anysock {

/// Returned by socket_impl operations whose wait ran out (becomes anysock::timeout).
inline constexpr int wait_timed_out = -1;

/// How long one operation may wait for readiness.
struct wait_spec {
  enum class mode : uint8_t {
    block,     ///< wait as long as it takes (Python: timeout None)
    nonblock,  ///< never wait: EAGAIN / EINPROGRESS (Python: timeout 0.0)
    until,     ///< wait until `deadline` on the backend's clock, then wait_timed_out
  };
  mode how = mode::block;
  double deadline = 0;  ///< seconds on backend::now(), for mode::until
};

/// One open socket on some backend. Created by backend::open/socketpair or socket_impl::accept;
/// destroying it closes the socket. Thread safety: one thread may recv while another sends; other
/// calls follow the rules of a kernel file descriptor.
class socket_impl {
 public:
  virtual ~socket_impl() = default;

  /// The descriptor number shown to the user (a kernel fd, or a backend-unique number).
  virtual int fileno() const = 0;
  /// Closes the socket now and returns the errno the OS reported (e.g. EBADF when the descriptor
  /// was closed behind anysock's back), else 0. Called at most once, by socket::close() when no
  /// makefile() stream shares the socket; the destructor closes it otherwise. Later calls on the
  /// object do not happen.
  virtual int close() { return 0; }
  /// A kernel fd whose poll() readiness is this socket's readiness, or -1 if there is none.
  virtual int os_handle() const { return -1; }
  /// The wait mode the next calls will mostly use (lets a backend keep a kernel fd in blocking
  /// mode).
  virtual int set_wait_mode(wait_spec::mode) { return 0; }

  virtual int bind(const sockaddr* addr, socklen_t len) = 0;
  virtual int listen(int backlog) = 0;
  /// Non-blocking mode returns EINPROGRESS; the outcome is read later through SO_ERROR.
  virtual int connect(const sockaddr* addr, socklen_t len, const wait_spec& wait) = 0;
  virtual int accept(const wait_spec& wait, std::unique_ptr<socket_impl>& out,
                     sockaddr_storage& peer, socklen_t& peer_len) = 0;
  /// recv / recvfrom (when `from` is not null). `got` = bytes stored; for datagrams, a longer
  /// datagram is truncated (MSG_TRUNC semantics are the kernel's).
  virtual int recv(void* buf, size_t len, int flags, const wait_spec& wait, size_t& got,
                   sockaddr_storage* from, socklen_t* from_len) = 0;
  /// send / sendto (when `to` is not null). Never raises SIGPIPE: EPIPE is returned instead.
  virtual int send(const void* buf, size_t len, int flags, const wait_spec& wait, size_t& sent,
                   const sockaddr* to, socklen_t to_len) = 0;
  virtual int shutdown(int how) = 0;
  virtual int getsockname(sockaddr_storage& addr, socklen_t& len) const = 0;
  virtual int getpeername(sockaddr_storage& addr, socklen_t& len) const = 0;
  virtual int getsockopt(int level, int opt, void* value, socklen_t& len) const = 0;
  virtual int setsockopt(int level, int opt, const void* value, socklen_t len) = 0;
  /// Readiness right now (POLLIN/POLLOUT/POLLERR/POLLHUP of `events`), never waiting.
  virtual short poll_now(short events) = 0;
};

/// One socket's part in backend::poll.
struct poll_entry {
  socket_impl* sock = nullptr;
  short events = 0;
  short revents = 0;
};

/// A network stack. Sockets keep their backend alive (shared ownership), so a backend is always
/// owned by a std::shared_ptr except the kernel's, which lives for the whole process.
class backend : public std::enable_shared_from_this<backend> {
 public:
  virtual ~backend() = default;

  /// The spec this backend was made from, e.g. "kernel" or "lwip+sim:host=a".
  virtual std::string spec() const = 0;
  /// The clock that wait_spec deadlines use, in seconds (monotonic; virtual in a simulation).
  virtual double now() const = 0;
  /// Whether sockets of this family can be created here (AF_INET, AF_INET6, AF_UNIX).
  virtual bool has_family(int family) const = 0;

  virtual int open(int family, int type, int proto, std::unique_ptr<socket_impl>& out) = 0;
  /// A connected pair. A backend without AF_UNIX emulates it as CPython does (a TCP pair over the
  /// loopback) and throws std::invalid_argument for what that emulation refuses.
  virtual int socketpair(int family, int type, int proto, std::unique_ptr<socket_impl>& a,
                         std::unique_ptr<socket_impl>& b) = 0;
  /// Waits until one of `entries` (all sockets of this backend) is ready, or the wait runs out.
  /// Fills revents; `ready` = number of entries with revents != 0 (0 when the wait ran out).
  virtual int poll(std::span<poll_entry> entries, const wait_spec& wait, int& ready) = 0;

  // Name service. These throw gaierror / herror / error as the Python functions do.
  virtual std::vector<addr_info> getaddrinfo(const char* host, const char* port, int family,
                                             int type, int proto, int flags) = 0;
  virtual std::pair<std::string, std::string> getnameinfo(const sockaddr* addr, socklen_t len,
                                                          int flags) = 0;
  virtual host_entry gethostbyname_ex(const std::string& name) = 0;
  virtual host_entry gethostbyaddr(const std::string& numeric_host) = 0;
  virtual std::string gethostname() = 0;

  /// A shared_ptr to this backend (non-owning for backends not owned by a shared_ptr).
  std::shared_ptr<backend> share();
};

/// The host kernel's sockets: the reference behaviour. Lives for the whole process.
backend& kernel_backend();

/// The backend new sockets of this thread use: the innermost backend_scope, else the process
/// default (read once from ANYSOCK_BACKEND, unset = kernel, or set by set_default_backend).
backend& default_backend();
/// Makes `b` the process default (kept alive until replaced). Call it before other threads create
/// sockets on the default: a backend replaced while in use elsewhere stays alive only through its
/// sockets.
void set_default_backend(backend& b);

/// While alive, sockets created by this thread (without an explicit backend) use `b`. Nests.
class backend_scope {
 public:
  explicit backend_scope(backend& b);
  ~backend_scope();
  backend_scope(const backend_scope&) = delete;
  backend_scope& operator=(const backend_scope&) = delete;

 private:
  std::shared_ptr<backend> backend_;
  backend* previous_;
};

/// A parsed spec string: `kind` or `kind:key=value,key=value`; a value containing ',' is written
/// in single quotes (any value may be; ':' after the kind needs none, e.g. ip6=fd00::2/64). Keys
/// keep their order.
struct backend_spec {
  std::string kind;
  std::vector<std::pair<std::string, std::string>> params;
};
/// Parses a spec; throws std::invalid_argument naming the bad part.
backend_spec parse_backend_spec(std::string_view spec);

/// Makes a backend from a spec ("kernel", later "lwip+sim:…", "lwip+tap:…"). Throws
/// std::invalid_argument for an unknown kind or key, anysock::error when the stack cannot start.
std::shared_ptr<backend> make_backend(std::string_view spec);

/// A factory for one kind of backend (used by backends to register themselves).
using backend_factory = std::shared_ptr<backend> (*)(const backend_spec& spec);
/// Registers `kind` (e.g. "lwip+tap"); a later registration of the same kind replaces it.
void register_backend_kind(std::string kind, backend_factory factory);

}  // namespace anysock
