// The kernel backend: anysock's socket_impl over the host's POSIX sockets — the reference
// behaviour.
//
// A socket's fd is blocking while the socket is in blocking mode (the kernel does the waiting, one
// system call per operation, like raw POSIX) and O_NONBLOCK otherwise; timeout mode tries the call
// and, on EAGAIN, waits with ppoll until the deadline (Python's sock_call). Signals interrupt
// nothing: EINTR is retried (PEP 475). SIGPIPE is never raised (MSG_NOSIGNAL).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <ctime>
#include <stdexcept>
#include <vector>

#include "anysock/socket.hpp"
#include "sockaddr.hpp"
#include "socket_state.hpp"

namespace anysock {
namespace {

double monotonic_now() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// ppoll until something in `fds` is ready or `w` runs out. Returns 0, wait_timed_out or an errno.
int wait_fds(pollfd* fds, nfds_t count, const wait_spec& w, int& ready) {
  ready = 0;
  while (true) {
    timespec ts{};
    timespec* limit = nullptr;
    if (w.how == wait_spec::mode::nonblock) {
      limit = &ts;
    } else if (w.how == wait_spec::mode::until) {
      double left = w.deadline - monotonic_now();
      if (left < 0) left = 0;
      ts.tv_sec = static_cast<time_t>(left);
      ts.tv_nsec = static_cast<long>((left - static_cast<double>(ts.tv_sec)) * 1e9);
      limit = &ts;
    }
    int n = ::ppoll(fds, count, limit, nullptr);
    if (n > 0) {
      ready = n;
      return 0;
    }
    if (n == 0) {
      if (w.how == wait_spec::mode::block) continue;
      return wait_timed_out;
    }
    if (errno != EINTR) return errno;
  }
}

class kernel_socket final : public socket_impl {
 public:
  explicit kernel_socket(int fd) : fd_(fd) {
    int fl = ::fcntl(fd_, F_GETFL);
    nonblocking_ = fl >= 0 && (fl & O_NONBLOCK) != 0;
  }
  ~kernel_socket() override {
    if (fd_ >= 0) ::close(fd_);
  }
  kernel_socket(const kernel_socket&) = delete;
  kernel_socket& operator=(const kernel_socket&) = delete;

  int fileno() const override { return fd_; }
  int os_handle() const override { return fd_; }

  int close() override {
    int fd = fd_;
    fd_ = -1;
    // Linux frees the descriptor even when close() fails; ECONNRESET is not an error (CPython).
    if (::close(fd) != 0 && errno != ECONNRESET && errno != EINTR) return errno;
    return 0;
  }

  int set_wait_mode(wait_spec::mode m) override {
    bool want = m != wait_spec::mode::block;
    if (want == nonblocking_) return 0;
    int fl = ::fcntl(fd_, F_GETFL);
    if (fl < 0) return errno;
    if (::fcntl(fd_, F_SETFL, want ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK)) < 0) return errno;
    nonblocking_ = want;
    return 0;
  }

  int bind(const sockaddr* addr, socklen_t len) override {
    return ::bind(fd_, addr, len) == 0 ? 0 : errno;
  }

  int listen(int backlog) override { return ::listen(fd_, backlog) == 0 ? 0 : errno; }

  int connect(const sockaddr* addr, socklen_t len, const wait_spec& w) override {
    if (::connect(fd_, addr, len) == 0) return 0;
    int err = errno;
    // A blocking connect interrupted by a signal goes on in the background: wait for it.
    bool pending = (err == EINPROGRESS && nonblocking_) || err == EINTR;
    if (!pending || w.how == wait_spec::mode::nonblock) return err;
    pollfd p{fd_, POLLOUT, 0};
    int ready = 0;
    if (int werr = wait_fds(&p, 1, w, ready); werr != 0) return werr;
    int so_error = 0;
    socklen_t so_len = sizeof so_error;
    if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &so_error, &so_len) != 0) return errno;
    return so_error;
  }

  int accept(const wait_spec& w, std::unique_ptr<socket_impl>& out, sockaddr_storage& peer,
             socklen_t& peer_len) override {
    int fd = -1;
    int err = retry(POLLIN, w, [&] {
      socklen_t len = peer_len;
      fd = ::accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
      if (fd < 0) return errno;
      peer_len = len;
      return 0;
    });
    if (err == 0) out = std::make_unique<kernel_socket>(fd);
    return err;
  }

  int recv(void* buf, size_t len, int flags, const wait_spec& w, size_t& got,
           sockaddr_storage* from, socklen_t* from_len) override {
    const socklen_t from_capacity = from_len != nullptr ? *from_len : 0;
    return retry(POLLIN, w, [&] {
      if (from_len != nullptr) *from_len = from_capacity;
      ssize_t n = from != nullptr ? ::recvfrom(fd_, buf, len, flags,
                                               reinterpret_cast<sockaddr*>(from), from_len)
                                  : ::recv(fd_, buf, len, flags);
      if (n < 0) return errno;
      got = static_cast<size_t>(n);
      return 0;
    });
  }

  int send(const void* buf, size_t len, int flags, const wait_spec& w, size_t& sent,
           const sockaddr* to, socklen_t to_len) override {
    return retry(POLLOUT, w, [&] {
      ssize_t n = to != nullptr ? ::sendto(fd_, buf, len, flags | MSG_NOSIGNAL, to, to_len)
                                : ::send(fd_, buf, len, flags | MSG_NOSIGNAL);
      if (n < 0) return errno;
      sent = static_cast<size_t>(n);
      return 0;
    });
  }

  int shutdown(int how) override { return ::shutdown(fd_, how) == 0 ? 0 : errno; }

  int getsockname(sockaddr_storage& addr, socklen_t& len) const override {
    return ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0 ? 0 : errno;
  }

  int getpeername(sockaddr_storage& addr, socklen_t& len) const override {
    return ::getpeername(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0 ? 0 : errno;
  }

  int getsockopt(int level, int opt, void* value, socklen_t& len) const override {
    return ::getsockopt(fd_, level, opt, value, &len) == 0 ? 0 : errno;
  }

  int setsockopt(int level, int opt, const void* value, socklen_t len) override {
    return ::setsockopt(fd_, level, opt, value, len) == 0 ? 0 : errno;
  }

  short poll_now(short events) override {
    pollfd p{fd_, events, 0};
    int n = 0;
    do {
      n = ::poll(&p, 1, 0);
    } while (n < 0 && errno == EINTR);
    return n > 0 ? p.revents : 0;
  }

 private:
  // Runs `op` (returns 0 or an errno) with Python's timeout rules: EINTR is retried; in timeout
  // mode EAGAIN waits for `events` until the deadline.
  template <class Op>
  int retry(short events, const wait_spec& w, Op op) {
    while (true) {
      int err = op();
      if (err == EINTR) continue;
      if ((err != EAGAIN && err != EWOULDBLOCK) || w.how != wait_spec::mode::until) return err;
      pollfd p{fd_, events, 0};
      int ready = 0;
      if (int werr = wait_fds(&p, 1, w, ready); werr != 0) return werr;
    }
  }

  int fd_;
  bool nonblocking_ = false;
};

class kernel_backend_impl final : public backend {
 public:
  std::string spec() const override { return "kernel"; }
  double now() const override { return monotonic_now(); }

  bool has_family(int family) const override {
    if (family == AF_INET || family == AF_UNIX) return true;
    if (family != AF_INET6) return false;
    static const bool ipv6 = [] {
      int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0) return false;
      ::close(fd);
      return true;
    }();
    return ipv6;
  }

  int open(int family, int type, int proto, std::unique_ptr<socket_impl>& out) override {
    int fd = ::socket(family, type | SOCK_CLOEXEC, proto);
    if (fd < 0) return errno;
    out = std::make_unique<kernel_socket>(fd);
    return 0;
  }

  int socketpair(int family, int type, int proto, std::unique_ptr<socket_impl>& a,
                 std::unique_ptr<socket_impl>& b) override {
    int fds[2];
    if (::socketpair(family, type | SOCK_CLOEXEC, proto, fds) != 0) return errno;
    a = std::make_unique<kernel_socket>(fds[0]);
    b = std::make_unique<kernel_socket>(fds[1]);
    return 0;
  }

  int poll(std::span<poll_entry> entries, const wait_spec& w, int& ready) override {
    std::vector<pollfd> fds(entries.size());
    for (size_t i = 0; i < entries.size(); ++i) {
      fds[i] = {entries[i].sock->os_handle(), entries[i].events, 0};
    }
    int err = wait_fds(fds.data(), fds.size(), w, ready);
    for (size_t i = 0; i < entries.size(); ++i) entries[i].revents = fds[i].revents;
    return err;
  }

  std::vector<addr_info> getaddrinfo(const char* host, const char* port, int family, int type,
                                     int proto, int flags) override {
    addrinfo hints{};
    hints.ai_family = family;
    hints.ai_socktype = type;
    hints.ai_protocol = proto;
    hints.ai_flags = flags;
    addrinfo* res = nullptr;
    int rc = ::getaddrinfo(host, port, &hints, &res);
    if (rc == EAI_SYSTEM) throw error(errno, "getaddrinfo");
    if (rc != 0) throw gaierror(rc, host ? host : "");
    std::vector<addr_info> out;
    for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
      out.push_back({ai->ai_family, ai->ai_socktype, ai->ai_protocol,
                     ai->ai_canonname ? ai->ai_canonname : "",
                     detail::from_sockaddr(ai->ai_addr, ai->ai_addrlen)});
    }
    ::freeaddrinfo(res);
    return out;
  }

  std::pair<std::string, std::string> getnameinfo(const sockaddr* addr, socklen_t len,
                                                  int flags) override {
    std::array<char, NI_MAXHOST> host{};
    std::array<char, NI_MAXSERV> serv{};
    int rc = ::getnameinfo(addr, len, host.data(), host.size(), serv.data(), serv.size(), flags);
    if (rc == EAI_SYSTEM) throw error(errno, "getnameinfo");
    if (rc != 0) throw gaierror(rc);
    return {host.data(), serv.data()};
  }

  host_entry gethostbyname_ex(const std::string& name) override {
    // Like CPython: the name must resolve (gaierror), then the hosts database answers (herror).
    detail::to_sockaddr(*this, AF_INET, address{name, 0});
    hostent entry{};
    hostent* result = nullptr;
    int h_err = 0;
    std::vector<char> buf(16384);
    while (::gethostbyname_r(name.c_str(), &entry, buf.data(), buf.size(), &result, &h_err) ==
           ERANGE) {
      buf.resize(buf.size() * 2);
    }
    if (result == nullptr) throw herror(h_err);
    return to_entry(*result);
  }

  host_entry gethostbyaddr(const std::string& numeric_host) override {
    auto infos = getaddrinfo(numeric_host.c_str(), nullptr, AF_UNSPEC, SOCK_STREAM, 0, 0);
    if (infos.empty()) throw gaierror(EAI_NONAME, numeric_host);
    int family = infos.front().family;
    std::string packed(family == AF_INET ? 4 : 16, '\0');
    ::inet_pton(family, infos.front().addr.host.c_str(), packed.data());
    hostent entry{};
    hostent* result = nullptr;
    int h_err = 0;
    std::vector<char> buf(16384);
    while (::gethostbyaddr_r(packed.data(), static_cast<socklen_t>(packed.size()), family, &entry,
                             buf.data(), buf.size(), &result, &h_err) == ERANGE) {
      buf.resize(buf.size() * 2);
    }
    if (result == nullptr) throw herror(h_err);
    return to_entry(*result);
  }

  std::string gethostname() override {
    std::array<char, 256> name{};
    if (::gethostname(name.data(), name.size() - 1) != 0) throw error(errno, "gethostname");
    return name.data();
  }

 private:
  static host_entry to_entry(const hostent& h) {
    host_entry e;
    e.name = h.h_name ? h.h_name : "";
    for (char** a = h.h_aliases; a && *a; ++a) e.aliases.emplace_back(*a);
    for (char** p = h.h_addr_list; p && *p; ++p) {
      char text[INET6_ADDRSTRLEN];
      ::inet_ntop(h.h_addrtype, *p, text, sizeof text);
      e.addresses.emplace_back(text);
    }
    return e;
  }
};

std::shared_ptr<backend> make_kernel(const backend_spec& spec) {
  if (!spec.params.empty()) {
    throw std::invalid_argument("backend 'kernel' takes no keys (got '" + spec.params[0].first +
                                "')");
  }
  return kernel_backend().share();
}

}  // namespace

backend& kernel_backend() {
  // Never destroyed: sockets held in static objects may outlive any destruction order.
  static auto* instance =
      new std::shared_ptr<kernel_backend_impl>(std::make_shared<kernel_backend_impl>());
  return **instance;
}

socket fromfd(int fd, int family, int type, int proto) {
  int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) throw error(errno, "fromfd");
  auto impl = std::make_unique<kernel_socket>(copy);  // closes the copy on every path below
  // CPython 3.7+ checks that the descriptor is a socket (getsockname: ENOTSOCK otherwise).
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(copy, reinterpret_cast<sockaddr*>(&ss), &len) != 0 &&
      (errno == EBADF || errno == ENOTSOCK)) {
    throw error(errno, "fromfd");
  }
  const int kinds = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
  auto st = std::make_shared<detail::socket_state>(kernel_backend().share(), std::move(impl),
                                                   family, kinds, proto);
  st->set_timeout((type & SOCK_NONBLOCK) ? std::optional<double>(0.0) : getdefaulttimeout());
  return detail::socket_access::make(std::move(st));
}

namespace detail {
backend_factory kernel_factory() { return &make_kernel; }
}  // namespace detail

}  // namespace anysock
