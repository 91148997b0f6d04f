// select() and poller: readiness over sockets of any backend.
//
// Sockets that expose a kernel fd (os_handle) are waited on with the kernel's poll, whatever their
// backend; sockets of one other backend are waited on through that backend's poll.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "anysock/socket.hpp"
#include "socket_state.hpp"

namespace anysock {
namespace {

// Linux's select(2) readiness sets, expressed in poll bits.
constexpr short kReadSet = POLLIN | POLLRDNORM | POLLRDBAND | POLLHUP | POLLERR;
constexpr short kWriteSet = POLLOUT | POLLWRNORM | POLLWRBAND | POLLERR;
constexpr short kExceptSet = POLLPRI;

// Waits on `entries` (open sockets); returns how many are ready. Sockets with kernel fds only: the
// kernel polls them. Otherwise the first socket without a kernel fd names the backend that waits on
// the whole set (the lwIP backend waits on sockets of any lwIP host plus kernel fds, e.g. a kernel
// socket and lwIP sockets in one select); a backend that cannot raises EOPNOTSUPP.
int wait_ready(std::span<poll_entry> entries, std::span<backend* const> owners,
               std::optional<double> timeout) {
  backend* group = nullptr;
  for (size_t i = 0; i < entries.size() && group == nullptr; ++i) {
    if (entries[i].sock->os_handle() < 0) group = owners[i];
  }
  if (group == nullptr) group = &kernel_backend();  // the kernel polls any fd
  wait_spec wait;
  if (!timeout) {
    wait = {wait_spec::mode::block, 0};
  } else if (*timeout <= 0) {
    wait = {wait_spec::mode::nonblock, 0};
  } else {
    wait = {wait_spec::mode::until, group->now() + *timeout};
  }
  int ready = 0;
  if (int err = group->poll(entries, wait, ready); err != 0 && err != wait_timed_out) {
    if (err == EOPNOTSUPP) {
      throw error(err, "select/poll over sockets of backends that cannot wait together");
    }
    throw error(err, "poll");
  }
  return ready;
}

}  // namespace

select_result select(const std::vector<socket*>& read, const std::vector<socket*>& write,
                     const std::vector<socket*>& except, std::optional<double> timeout) {
  if (timeout && (std::isnan(*timeout) || *timeout < 0)) {
    throw std::invalid_argument("timeout must be non-negative");
  }
  std::vector<socket*> order;  // one entry per distinct socket, in order of first appearance
  std::vector<poll_entry> entries;
  std::vector<backend*> owners;
  std::vector<std::shared_ptr<detail::socket_state>> keep;  // alive while we wait, even if closed
  auto add = [&](socket* s, short events) {
    std::shared_ptr<detail::socket_state> st = s ? detail::socket_access::state(*s) : nullptr;
    if (st == nullptr) throw std::invalid_argument("select: socket is closed or null");
    for (size_t i = 0; i < order.size(); ++i) {
      if (order[i] == s) {
        entries[i].events |= events;
        return;
      }
    }
    order.push_back(s);
    entries.push_back({st->impl.get(), events, 0});
    owners.push_back(st->owner.get());
    keep.push_back(std::move(st));
  };
  for (socket* s : read) add(s, POLLIN);
  for (socket* s : write) add(s, POLLOUT);
  for (socket* s : except) add(s, POLLPRI);

  select_result out;
  if (entries.empty()) {
    // Python sleeps for the timeout when given nothing to wait on.
    if (timeout) {
      poll_entry none{};
      int ready = 0;
      wait_spec w{wait_spec::mode::until, kernel_backend().now() + *timeout};
      kernel_backend().poll(std::span<poll_entry>(&none, 0), w, ready);
    }
    return out;
  }
  if (wait_ready(entries, owners, timeout) == 0) return out;
  for (socket* s : read) {
    for (size_t i = 0; i < order.size(); ++i) {
      if (order[i] == s && (entries[i].revents & kReadSet)) out.read.push_back(s);
    }
  }
  for (socket* s : write) {
    for (size_t i = 0; i < order.size(); ++i) {
      if (order[i] == s && (entries[i].revents & kWriteSet)) out.write.push_back(s);
    }
  }
  for (socket* s : except) {
    for (size_t i = 0; i < order.size(); ++i) {
      if (order[i] == s && (entries[i].revents & kExceptSet)) out.except.push_back(s);
    }
  }
  return out;
}

// A registration is the socket's identity (socket_state.hpp), not its address: it follows the
// socket object through moves, and is dropped once that object is destroyed.

void poller::forget_destroyed() {
  std::erase_if(entries_, [](const entry& e) { return e.id->where == nullptr; });
}

std::vector<poller::entry>::iterator poller::find(const socket& s) {
  const detail::socket_identity* id = detail::socket_access::find_identity(s);
  if (id == nullptr) return entries_.end();  // never registered anywhere
  return std::find_if(entries_.begin(), entries_.end(),
                      [id](const entry& e) { return e.id.get() == id; });
}

size_t poller::size() const {
  return static_cast<size_t>(std::count_if(entries_.begin(), entries_.end(),
                                           [](const entry& e) { return e.id->where != nullptr; }));
}

void poller::add(socket& s, short events) {
  forget_destroyed();
  if (find(s) != entries_.end()) throw error(EEXIST, "poller: socket already registered");
  entries_.push_back({detail::socket_access::identity(s), events});
}

void poller::modify(socket& s, short events) {
  forget_destroyed();
  auto it = find(s);
  if (it == entries_.end()) throw error(ENOENT, "poller: socket not registered");
  it->events = events;
}

void poller::remove(socket& s) {
  forget_destroyed();
  auto it = find(s);
  if (it == entries_.end()) throw error(ENOENT, "poller: socket not registered");
  entries_.erase(it);
}

std::vector<std::pair<socket*, short>> poller::poll(std::optional<double> timeout_seconds) {
  if (timeout_seconds && (std::isnan(*timeout_seconds) || *timeout_seconds < 0)) {
    timeout_seconds.reset();  // like select.poll: negative waits forever
  }
  forget_destroyed();
  std::vector<short> revents(entries_.size(), 0);
  std::vector<poll_entry> entries;
  std::vector<backend*> owners;
  std::vector<size_t> index;                                // entries[k] is entries_[index[k]]
  std::vector<std::shared_ptr<detail::socket_state>> keep;  // alive while we wait, even if closed
  for (size_t i = 0; i < entries_.size(); ++i) {
    std::shared_ptr<detail::socket_state> st = detail::socket_access::state(*entries_[i].id->where);
    if (st == nullptr) {
      revents[i] = POLLNVAL;
      timeout_seconds = 0.0;  // a closed socket is ready at once
      continue;
    }
    entries.push_back({st->impl.get(), entries_[i].events, 0});
    owners.push_back(st->owner.get());
    index.push_back(i);
    keep.push_back(std::move(st));
  }
  if (!entries.empty()) {
    wait_ready(entries, owners, timeout_seconds);
    for (size_t k = 0; k < entries.size(); ++k) revents[index[k]] = entries[k].revents;
  } else if (entries_.empty() && timeout_seconds && *timeout_seconds > 0) {
    select({}, {}, {}, timeout_seconds);  // nothing registered: just wait
  }
  std::vector<std::pair<socket*, short>> out;
  for (size_t i = 0; i < entries_.size(); ++i) {
    socket* where = entries_[i].id->where;  // destroyed by another thread while we waited: gone
    if (revents[i] != 0 && where != nullptr) out.emplace_back(where, revents[i]);
  }
  return out;
}

}  // namespace anysock
