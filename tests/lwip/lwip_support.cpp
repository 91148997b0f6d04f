#include "lwip_support.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>
#include <span>
#include <thread>
#include <vector>

namespace anysock::testing {
namespace {

// Bounds each call of a bulk transfer (seconds): a stalled transfer fails instead of hanging.
constexpr double kBulkWait = 60.0;
// The sender generates the stream in blocks of this many bytes (a multiple of 8)...
constexpr size_t kBlock = 1 << 20;
// ...and hands each block to sendall in slices of these sizes, in turn, so that the boundaries
// of sends, segments and receives keep moving relative to each other.
constexpr size_t kSlices[] = {65536, 1, 262144, 9000, 131071, 4096, 300000, 65535, 7};

std::string what_of(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "unknown exception";
  }
}

// Unblocks the peer after a failure: it sees end of stream (and a short count) instead of waiting.
void abandon(socket& s) {
  try {
    s.shutdown(SHUT_RDWR);
  } catch (const std::exception&) {
  }
}

// Sends `total` bytes of an xorshift64 stream seeded with `seed`, then shuts down writing.
void send_stream(socket& s, uint64_t total, uint64_t seed, direction_report& r,
                 std::string& error) {
  try {
    std::vector<uint64_t> block(kBlock / sizeof(uint64_t));
    uint64_t x = seed | 1;
    stream_hash h;
    size_t slice = 0;
    for (uint64_t left = total; left > 0;) {
      for (uint64_t& w : block) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        w = x;
      }
      const size_t n = static_cast<size_t>(std::min<uint64_t>(kBlock, left));
      const char* p = reinterpret_cast<const char*>(block.data());
      h.update(p, n);
      for (size_t off = 0; off < n;) {
        const size_t k = std::min(kSlices[slice++ % std::size(kSlices)], n - off);
        s.sendall(std::string_view(p + off, k));
        off += k;
      }
      left -= n;
    }
    s.shutdown(SHUT_WR);
    r.sent_bytes = h.bytes();
    r.sent_hash = h.value();
  } catch (...) {
    error = "sender: " + what_of(std::current_exception());
    abandon(s);
  }
}

// Reads to end of stream, hashing every byte.
void receive_stream(socket& s, direction_report& r, std::string& error) {
  try {
    std::vector<std::byte> buf(256 * 1024);
    stream_hash h;
    while (size_t n = s.recv_into(std::span<std::byte>(buf))) h.update(buf.data(), n);
    r.received_bytes = h.bytes();
    r.received_hash = h.value();
  } catch (...) {
    error = "receiver: " + what_of(std::current_exception());
    abandon(s);
  }
}

// Exactly `n` bytes from `s` (fewer only at end of stream).
std::string recv_exactly(socket& s, size_t n) {
  std::string out;
  while (out.size() < n) {
    std::string part = s.recv(n - out.size());
    if (part.empty()) break;
    out += part;
  }
  return out;
}

int family_of(const std::string& host) {
  return host.find(':') == std::string::npos ? AF_INET : AF_INET6;
}

}  // namespace

void LwipTest::TearDown() {
  EXPECT_EQ(lwip::leak_report(), "") << "lwIP memory still in use after the test";
}

void stream_hash::update(const void* data, size_t len) {
  const auto* p = static_cast<const unsigned char*>(data);
  bytes_ += len;
  if (tail_len_ > 0) {
    const size_t k = std::min(len, sizeof tail_ - tail_len_);
    std::memcpy(tail_ + tail_len_, p, k);
    tail_len_ += k;
    p += k;
    len -= k;
    if (tail_len_ < sizeof tail_) return;
    uint64_t w;
    std::memcpy(&w, tail_, sizeof w);
    mix(w);
    tail_len_ = 0;
  }
  for (; len >= sizeof(uint64_t); p += sizeof(uint64_t), len -= sizeof(uint64_t)) {
    uint64_t w;
    std::memcpy(&w, p, sizeof w);
    mix(w);
  }
  std::memcpy(tail_, p, len);
  tail_len_ = len;
}

uint64_t stream_hash::value() const {
  stream_hash h = *this;
  if (h.tail_len_ > 0) {
    uint64_t w = 0;
    std::memcpy(&w, h.tail_, h.tail_len_);
    h.mix(w);
  }
  h.mix(bytes_);
  return h.hash_;
}

std::pair<direction_report, direction_report> bulk_exchange(socket& x, socket& y,
                                                            uint64_t bytes_each_way) {
  direction_report x_to_y, y_to_x;
  std::string errors[4];
  x.settimeout(kBulkWait);
  y.settimeout(kBulkWait);
  {
    std::jthread t1(
        [&] { send_stream(x, bytes_each_way, 0x9e3779b97f4a7c15ull, x_to_y, errors[0]); });
    std::jthread t2([&] { receive_stream(y, x_to_y, errors[1]); });
    std::jthread t3(
        [&] { send_stream(y, bytes_each_way, 0xd1b54a32d192ed03ull, y_to_x, errors[2]); });
    std::jthread t4([&] { receive_stream(x, y_to_x, errors[3]); });
  }
  x_to_y.error = errors[0] + errors[1];
  y_to_x.error = errors[2] + errors[3];
  return {x_to_y, y_to_x};
}

void open_and_close_connections(backend& client, backend& server, const std::string& server_host,
                                int count) {
  const int family = family_of(server_host);
  socket listener(server, family, SOCK_STREAM);
  listener.bind({server_host, 0});
  listener.listen(64);
  listener.settimeout(kGenerousWait);
  const address dial{server_host, listener.getsockname().port};
  for (int i = 0; i < count; ++i) {
    SCOPED_TRACE("connection #" + std::to_string(i));
    socket c(client, family, SOCK_STREAM);
    c.settimeout(kGenerousWait);
    c.connect(dial);
    auto [s, peer] = listener.accept();
    s.settimeout(kGenerousWait);
    ASSERT_EQ(peer, c.getsockname());
    const std::string request = "request " + std::to_string(i);
    c.sendall(request);
    ASSERT_EQ(recv_exactly(s, request.size()), request);
    s.sendall("reply");
    ASSERT_EQ(recv_exactly(c, 5), "reply");
    socket& first = i % 2 == 0 ? c : s;
    socket& second = i % 2 == 0 ? s : c;
    first.close();
    ASSERT_EQ(second.recv(16), "") << "the end that closed second sees end of stream";
    second.close();
  }
}

lwip::link_counters link_of(const lwip::counters& c, const std::string& name) {
  for (const auto& l : c.links) {
    if (l.host == name) return l;
  }
  return {};
}

int64_t pool_used(const lwip::counters& c, const std::string& name) {
  for (const auto& p : c.pools) {
    if (p.name == name) return static_cast<int64_t>(p.used);
  }
  return -1;
}

void wait_until_links_are_quiet(double quiet, double limit) {
  using clock = std::chrono::steady_clock;
  auto frames = [] {
    std::vector<uint64_t> out;
    for (const auto& l : lwip::read_counters().links) out.push_back(l.frames_out);
    return out;
  };
  const auto give_up = clock::now() + std::chrono::duration<double>(limit);
  auto last_change = clock::now();
  std::vector<uint64_t> seen = frames();
  while (clock::now() < give_up &&
         clock::now() - last_change < std::chrono::duration<double>(quiet)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::vector<uint64_t> now = frames();
    if (now != seen) {
      seen = now;
      last_change = clock::now();
    }
  }
}

}  // namespace anysock::testing
