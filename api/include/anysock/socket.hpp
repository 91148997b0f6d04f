// anysock: Python's `socket` module in C++20, on any backend.
//
// One include gives the whole API: the socket class, socket_stream (makefile), the module
// functions, select/poller, the exceptions and the backend interface. Constants are the platform's
// own macros (AF_INET, SOCK_STREAM, SOL_SOCKET, MSG_PEEK, SHUT_WR, EAI_NONAME, POLLIN, ...).
//
// Timeouts (Python's three modes): gettimeout() == std::nullopt is blocking; 0.0 is non-blocking
// (operations that would wait raise error(EAGAIN) / error(EINPROGRESS)); a positive value is
// timeout mode (operations that wait longer raise anysock::timeout). Times are in seconds (double).
//
// Thread safety: one thread may recv while another sends on the same socket, on every backend; the
// other rules are those of a kernel file descriptor (e.g. shutdown() wakes a blocked recv). A
// socket object itself must not be closed, moved or destroyed while another thread uses it.
#pragma once

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

// glibc defines these as macros when optimising; anysock provides functions of the same names.
#undef ntohl
#undef ntohs
#undef htonl
#undef htons

#include <atomic>
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
#include "anysock/backend.hpp"
#include "anysock/error.hpp"

namespace anysock {

namespace detail {
struct socket_state;
struct socket_identity;
struct socket_access;
}  // namespace detail

class socket_stream;

/// A socket, like Python's socket.socket. Move-only; closes on destruction. Every operation on a
/// closed socket raises error(EBADF). Errors are anysock::error (errno), anysock::timeout, or
/// std::invalid_argument for bad arguments.
class socket {
 public:
  /// A new socket on default_backend(); takes getdefaulttimeout(). SOCK_NONBLOCK in `type` makes it
  /// non-blocking; SOCK_CLOEXEC is always set.
  explicit socket(int family = AF_INET, int type = SOCK_STREAM, int proto = 0);
  /// A new socket on backend `b` (kept alive by the socket).
  socket(backend& b, int family, int type, int proto = 0);
  socket(socket&& other) noexcept;
  socket& operator=(socket&& other) noexcept;  // closes this socket first (never throws)
  socket(const socket&) = delete;
  socket& operator=(const socket&) = delete;
  /// Closes the socket; never throws (an error the OS reports on close is dropped).
  ~socket();

  /// Waits for a connection; the new socket takes getdefaulttimeout().
  std::pair<socket, address> accept();
  void bind(const address& addr);
  /// Closes the socket. Raises error(EBADF) when the OS descriptor was already closed behind the
  /// object's back (CPython 3.6+); the object is closed all the same. close() on a closed socket
  /// object is a no-op. A socket_stream from makefile() keeps the connection open until it is
  /// closed too (then this close() releases only the object's reference and raises nothing).
  void close();
  void connect(const address& addr);
  /// connect() returning the errno instead of raising (0 on success, EINPROGRESS when
  /// non-blocking). Name-resolution failures still raise gaierror.
  int connect_ex(const address& addr);
  /// The descriptor number, -1 once closed.
  int fileno() const;
  address getpeername() const;
  address getsockname() const;
  int getsockopt(int level, int opt) const;
  /// The raw option bytes; 0 < buflen <= 1024.
  std::string getsockopt(int level, int opt, size_t buflen) const;
  void setsockopt(int level, int opt, int value);
  void setsockopt(int level, int opt, std::string_view value);
  void listen(int backlog = 128);
  /// An iostream over the socket (mode: "r", "w", "rw", optionally with "b"). bufsize -1 = default,
  /// 0 = unbuffered. Raises error(EINVAL) on a non-blocking socket.
  socket_stream makefile(std::string_view mode = "r", int bufsize = -1);
  /// Up to bufsize bytes; "" at end of stream. recv(0) waits like any receive, then returns "".
  /// A bufsize no read could fill (> SSIZE_MAX) is std::invalid_argument.
  std::string recv(size_t bufsize, int flags = 0);
  size_t recv_into(void* buf, size_t nbytes, int flags = 0);
  size_t recv_into(std::span<std::byte> buf, int flags = 0);
  std::pair<std::string, address> recvfrom(size_t bufsize, int flags = 0);
  std::pair<size_t, address> recvfrom_into(void* buf, size_t nbytes, int flags = 0);
  /// Bytes sent (may be fewer than given).
  size_t send(std::string_view data, int flags = 0);
  /// Sends everything or raises; the socket's timeout bounds the whole call.
  void sendall(std::string_view data, int flags = 0);
  size_t sendto(std::string_view data, const address& addr);
  size_t sendto(std::string_view data, int flags, const address& addr);
  /// setblocking(true) == settimeout(nullopt); setblocking(false) == settimeout(0.0).
  void setblocking(bool flag);
  /// nullopt = blocking, 0 = non-blocking, > 0 = timeout in seconds. What CPython refuses is
  /// std::invalid_argument: negative, NaN, or more than ~9.2e9 s (its 64-bit nanoseconds; inf).
  void settimeout(std::optional<double> seconds);
  std::optional<double> gettimeout() const;
  /// SHUT_RD, SHUT_WR or SHUT_RDWR; anything else raises error(EINVAL), as the OS does.
  void shutdown(int how);
  int family() const { return family_; }
  int type() const { return type_; }
  int proto() const { return proto_; }

  /// The backend this socket lives on (raises error(EBADF) once closed).
  backend& get_backend() const;

 private:
  friend struct detail::socket_access;
  socket(std::shared_ptr<detail::socket_state> state, int family, int type, int proto);
  // The state, kept alive for the caller's call (raises EBADF when closed). state_ is read and
  // replaced under a tiny spin lock, so close() in one thread while another is blocked in a call on
  // the socket is safe: the blocked call keeps its own reference and finishes (as a kernel
  // descriptor closed under a blocked call does on Linux).
  std::shared_ptr<detail::socket_state> state() const;
  std::shared_ptr<detail::socket_state> load_state() const;
  std::shared_ptr<detail::socket_state> exchange_state(std::shared_ptr<detail::socket_state> s);

  std::shared_ptr<detail::socket_state> state_;
  mutable std::atomic_flag state_lock_;  // guards state_ (held for a pointer copy only)
  // What pollers registered this socket by: made on the first poller::add, it moves with the
  // socket's contents and tells the pollers where the socket is now (null once destroyed).
  std::shared_ptr<detail::socket_identity> identity_;
  int family_ = AF_INET;
  int type_ = SOCK_STREAM;
  int proto_ = 0;
};

// ---- module functions ---------------------------------------------------------------------------

/// Connects to (host, port) with getdefaulttimeout(), trying every address getaddrinfo returns.
socket create_connection(const address& addr);
/// Same with an explicit timeout (nullopt = blocking) and an optional source address to bind.
/// Raises the last attempt's error.
socket create_connection(const address& addr, std::optional<double> timeout,
                         std::optional<address> source = {});

/// Resolves through default_backend(). `port` is a service name or a decimal number.
std::vector<addr_info> getaddrinfo(const std::optional<std::string>& host,
                                   const std::optional<std::string>& port, int family = 0,
                                   int type = 0, int proto = 0, int flags = 0);
std::vector<addr_info> getaddrinfo(const std::optional<std::string>& host, uint16_t port,
                                   int family = 0, int type = 0, int proto = 0, int flags = 0);
/// (host, service) for an address; NI_* flags.
std::pair<std::string, std::string> getnameinfo(const address& addr, int flags);
/// A fully qualified name for `name` (the local host when empty, "0.0.0.0" or "::").
std::string getfqdn(const std::string& name = "");
/// The first IPv4 address of `name` (numeric). Raises gaierror.
std::string gethostbyname(const std::string& name);
/// Raises herror.
host_entry gethostbyname_ex(const std::string& name);
host_entry gethostbyaddr(const std::string& ip_or_name);
std::string gethostname();
int getprotobyname(const std::string& name);
/// Port number (host order) of a service; proto "" matches any.
uint16_t getservbyname(const std::string& name, const std::string& proto = "");
std::string getservbyport(uint16_t port, const std::string& proto = "");
/// A connected pair on default_backend(). Where the backend has no AF_UNIX (lwIP) this is
/// CPython's emulation: a TCP pair over the loopback, SOCK_STREAM and protocol 0 only (else
/// std::invalid_argument).
std::pair<socket, socket> socketpair(int family = AF_UNIX, int type = SOCK_STREAM, int proto = 0);
/// A kernel socket on a duplicate of `fd` (the caller keeps `fd`). Raises error(EBADF) for a
/// closed or negative descriptor and error(ENOTSOCK) for one that is not a socket (CPython 3.7+).
socket fromfd(int fd, int family, int type, int proto = 0);

inline uint32_t ntohl(uint32_t x) { return ::ntohl(x); }
inline uint16_t ntohs(uint16_t x) { return ::ntohs(x); }
inline uint32_t htonl(uint32_t x) { return ::htonl(x); }
inline uint16_t htons(uint16_t x) { return ::htons(x); }

/// Dotted quad (also the short forms "127.1") to 4 packed bytes. Raises error(EINVAL).
std::string inet_aton(const std::string& ip);
/// 4 packed bytes to dotted quad; other lengths raise error(EINVAL).
std::string inet_ntoa(std::string_view packed);
/// Text to 4 (AF_INET) or 16 (AF_INET6) packed bytes. Raises error.
std::string inet_pton(int family, const std::string& ip);
/// Packed bytes to text (RFC 5952 for IPv6). Wrong length: std::invalid_argument.
std::string inet_ntop(int family, std::string_view packed);

/// The timeout new sockets take (nullopt = blocking). Process-wide, thread-safe.
std::optional<double> getdefaulttimeout();
void setdefaulttimeout(std::optional<double> seconds);
/// Whether IPv6 sockets can be made on default_backend().
bool has_ipv6();

// ---- readiness ----------------------------------------------------------------------------------

struct select_result {
  std::vector<socket*> read, write, except;
};
/// Python's select.select over sockets of any backend. timeout nullopt = wait forever, in seconds.
/// A closed socket raises std::invalid_argument.
select_result select(const std::vector<socket*>& read, const std::vector<socket*>& write,
                     const std::vector<socket*>& except, std::optional<double> timeout);

/// A reusable set of sockets to wait on (Python's select.poll, with seconds). Not thread-safe.
/// A registration follows the socket's contents when the socket object moves (a std::vector<socket>
/// that grows, say): poll() reports the object holding it now, and modify/remove take that object.
/// A socket closed after registration is reported as POLLNVAL until removed (as select.poll reports
/// a closed descriptor); a socket object destroyed or assigned over leaves the poller (as a closed
/// descriptor leaves an epoll set).
class poller {
 public:
  /// Raises error(EEXIST) if `s` is already registered.
  void add(socket& s, short events);
  /// Raises error(ENOENT) if `s` is not registered.
  void modify(socket& s, short events);
  void remove(socket& s);
  /// Sockets with events (POLLIN/POLLOUT/POLLERR/POLLHUP, POLLNVAL once closed), in
  /// registration order. nullopt or negative = wait forever.
  std::vector<std::pair<socket*, short>> poll(std::optional<double> timeout_seconds = {});
  /// Registered sockets (destroyed ones no longer count).
  size_t size() const;

 private:
  struct entry {
    std::shared_ptr<detail::socket_identity> id;
    short events;
  };
  /// Drops the entries of destroyed sockets.
  void forget_destroyed();
  /// The entry of `s`, or entries_.end().
  std::vector<entry>::iterator find(const socket& s);

  std::vector<entry> entries_;
};

}  // namespace anysock

#include "anysock/stream.hpp"
