// Helpers for the lwIP backend's own tests: a fixture that checks no lwIP memory leaked, a
// streaming hash of a byte stream, and the two workloads several tests run (a bulk transfer both
// ways over one connection, and many short connections opened and closed).
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "../support/support.hpp"
#include "anysock/lwip.hpp"
#include "anysock/socket.hpp"

namespace anysock::testing {

/// Base fixture: after each test (whose sockets are closed by then) every lwIP pool and the heap
/// are back to their starting counts. Hosts kept as members are dropped after that check.
class LwipTest : public ::testing::Test {
 protected:
  void TearDown() override;
};

/// FNV-1a 64 over the stream's 64-bit little-endian words, then its tail and its length: the same
/// value however the stream is cut into pieces, a different one if any byte changes or moves.
class stream_hash {
 public:
  void update(const void* data, size_t len);
  /// The hash of everything given so far.
  uint64_t value() const;
  uint64_t bytes() const { return bytes_; }

 private:
  void mix(uint64_t word) {
    hash_ ^= word;
    hash_ *= 0x100000001b3ull;
  }
  uint64_t hash_ = 0xcbf29ce484222325ull;
  uint64_t bytes_ = 0;
  unsigned char tail_[8] = {};
  size_t tail_len_ = 0;
};

/// What one direction of a bulk transfer saw.
struct direction_report {
  uint64_t sent_bytes = 0, sent_hash = 0;
  uint64_t received_bytes = 0, received_hash = 0;
  std::string error;  // what a sender or receiver thread threw, if anything
};

/// Sends `bytes_each_way` pseudo-random bytes from `x` to `y` and from `y` to `x` at the same time
/// (a sender and a receiver thread per end; each sender ends with shutdown(SHUT_WR), each receiver
/// reads to end of stream). Returns {x to y, y to x}. `x` and `y` must be connected to each other.
std::pair<direction_report, direction_report> bulk_exchange(socket& x, socket& y,
                                                            uint64_t bytes_each_way);

/// Opens and closes `count` TCP connections from `client` to a listener on `server` bound to
/// `server_host` (dialled at `server_host` too): connect, accept, a request and a reply of a few
/// bytes, then both ends close (the client first on even rounds, the server first on odd ones, the
/// other end seeing end of stream). Fails the test (fatally) at the first round that goes wrong.
void open_and_close_connections(backend& client, backend& server, const std::string& server_host,
                                int count);

/// The counters of host `name` in `c` (a default-constructed entry if there is none).
lwip::link_counters link_of(const lwip::counters& c, const std::string& name);
/// The "used" count of pool `name` ("TCP_PCB", "heap", ...), or -1 if there is no such pool.
int64_t pool_used(const lwip::counters& c, const std::string& name);

/// Waits until no host's frames_out has changed for `quiet` seconds (at most `limit` seconds): a
/// new host sends its unsolicited MLD reports within ~0.5 s; tests that count frames start after.
void wait_until_links_are_quiet(double quiet = 1.0, double limit = 10.0);

}  // namespace anysock::testing
