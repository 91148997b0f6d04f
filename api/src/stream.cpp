// socket_stream: a std::streambuf that reads and writes a shared socket_state with its timeout.
#include <cstring>
#include <exception>
#include <vector>

#include "anysock/socket.hpp"
#include "socket_state.hpp"

namespace anysock {

class socket_stream::buffer : public std::streambuf {
 public:
  buffer(std::shared_ptr<detail::socket_state> state, bool readable, bool writable, size_t size)
      : state_(std::move(state)), readable_(readable), writable_(writable) {
    if (readable_) {
      in_.resize(size == 0 ? 1 : size);
      setg(in_.data(), in_.data(), in_.data());
    }
    if (writable_ && size > 0) {
      out_.resize(size);
      setp(out_.data(), out_.data() + out_.size());
    }
  }

  bool timed_out() const { return timed_out_; }

  // Flushes what is buffered, then drops the reference to the connection. Throws on errors.
  void close() {
    if (!state_) return;
    struct release {
      std::shared_ptr<detail::socket_state>& s;
      ~release() { s.reset(); }
    } guard{state_};
    flush();
  }

 protected:
  int_type underflow() override {
    if (!readable_) return traits_type::eof();
    if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
    if (timed_out_) throw error(EIO, "cannot read from timed out object");
    detail::socket_state& st = live();
    size_t got = 0;
    int err = st.impl->recv(in_.data(), in_.size(), 0, st.wait(), got, nullptr, nullptr);
    if (err == wait_timed_out) timed_out_ = true;
    if (err != 0) detail::raise_io(err, "recv");
    setg(in_.data(), in_.data(), in_.data() + got);
    return got == 0 ? traits_type::eof() : traits_type::to_int_type(*gptr());
  }

  int_type overflow(int_type ch) override {
    if (!writable_) return traits_type::eof();
    flush();
    if (traits_type::eq_int_type(ch, traits_type::eof())) return traits_type::not_eof(ch);
    if (out_.empty()) {  // unbuffered
      char c = traits_type::to_char_type(ch);
      send_all(&c, 1);
    } else {
      *pptr() = traits_type::to_char_type(ch);
      pbump(1);
    }
    return ch;
  }

  std::streamsize xsputn(const char* s, std::streamsize n) override {
    if (!writable_) return 0;
    auto len = static_cast<size_t>(n);
    if (len <= static_cast<size_t>(epptr() - pptr())) {
      std::memcpy(pptr(), s, len);
      pbump(static_cast<int>(len));
      return n;
    }
    flush();
    if (len >= out_.size()) {
      send_all(s, len);  // large writes bypass the buffer
    } else {
      std::memcpy(pptr(), s, len);
      pbump(static_cast<int>(len));
    }
    return n;
  }

  int sync() override {
    if (writable_ && state_) flush();
    return 0;
  }

 private:
  detail::socket_state& live() {
    if (!state_) throw error(EBADF, "stream is closed");
    return *state_;
  }

  void flush() {
    if (pbase() == pptr()) return;
    size_t len = static_cast<size_t>(pptr() - pbase());
    setp(out_.data(), out_.data() + out_.size());  // dropped even if sending fails
    send_all(out_.data(), len);
  }

  void send_all(const char* data, size_t len) {
    detail::socket_state& st = live();
    const wait_spec wait = st.wait();
    size_t done = 0;
    while (done < len) {
      size_t sent = 0;
      int err = st.impl->send(data + done, len - done, 0, wait, sent, nullptr, 0);
      if (err != 0) detail::raise_io(err, "send");
      done += sent;
    }
  }

  std::shared_ptr<detail::socket_state> state_;
  bool readable_;
  bool writable_;
  bool timed_out_ = false;
  std::vector<char> in_;
  std::vector<char> out_;
};

socket_stream::socket_stream(std::shared_ptr<detail::socket_state> state, bool readable,
                             bool writable, size_t bufsize)
    : std::iostream(nullptr),
      buf_(std::make_unique<buffer>(std::move(state), readable, writable, bufsize)) {
  rdbuf(buf_.get());
}

socket_stream::socket_stream(socket_stream&& other) noexcept
    : std::iostream(std::move(other)), buf_(std::move(other.buf_)) {
  set_rdbuf(buf_.get());
}

// GCC 12 with sanitizers at -O2 reports a false stringop-overflow inside std::basic_ios::swap.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
socket_stream& socket_stream::operator=(socket_stream&& other) noexcept {
  if (this != &other) {
    try {
      close();
    } catch (...) {  // like a destructor: a failed flush is dropped
    }
    std::iostream::operator=(std::move(other));
    buf_ = std::move(other.buf_);
    set_rdbuf(buf_.get());
  }
  return *this;
}
#pragma GCC diagnostic pop

socket_stream::~socket_stream() {
  try {
    close();
  } catch (...) {  // a destructor must not throw; call close() to see flush errors
  }
}

void socket_stream::close() {
  if (!buf_) return;
  try {
    buf_->close();
  } catch (...) {
    std::exception_ptr flush_error = std::current_exception();
    try {
      setstate(std::ios::badbit);
    } catch (...) {  // the flush error below says more than ios_base::failure
    }
    std::rethrow_exception(flush_error);
  }
}

bool socket_stream::timed_out() const { return buf_ && buf_->timed_out(); }

}  // namespace anysock
