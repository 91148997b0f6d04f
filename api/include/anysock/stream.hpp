// socket_stream: Python 3's socket.makefile() as a std::iostream.
#pragma once

#include <iostream>
#include <memory>

namespace anysock {

namespace detail {
struct socket_state;
}

/// A buffered iostream over a connected socket, made by socket::makefile(). It shares the socket's
/// connection: socket::close() does not close it while the stream is open. Reads and writes use the
/// socket's current timeout. Errors set badbit (with exceptions(badbit) the anysock::error is
/// rethrown); a read that times out raises anysock::timeout inside the stream and leaves it failed:
/// every later read fails too ("cannot read from timed out object"). End of stream sets eofbit.
/// Not thread-safe (like any iostream).
class socket_stream : public std::iostream {
 public:
  socket_stream(socket_stream&& other) noexcept;
  socket_stream& operator=(socket_stream&& other) noexcept;
  ~socket_stream() override;

  /// Flushes and releases the connection reference; idempotent. A failed flush sets badbit and
  /// raises the anysock::error.
  void close();
  /// True once a read has timed out.
  bool timed_out() const;

  class buffer;  // the streambuf (implementation detail)

 private:
  friend class socket;
  socket_stream(std::shared_ptr<detail::socket_state> state, bool readable, bool writable,
                size_t bufsize);
  std::unique_ptr<buffer> buf_;
};

}  // namespace anysock
