// Helpers for the simulator's tests (tests/sim): byte streams a receiver can check byte by byte,
// a traffic workload of many TCP streams between the hosts of a world (bulk uploads, bulk downloads
// and request/response sessions, each with a deadline in virtual time), a reader for the pcap files
// world::capture() writes, and small file utilities. Public API only (anysock/sim.hpp, socket.hpp).
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "anysock/sim.hpp"
#include "anysock/socket.hpp"

namespace anysock::sim_testing {

// ---- streams ------------------------------------------------------------------------------------

/// The bytes of stream `id`: byte i depends only on (id, i), so a receiver checks every byte it
/// gets against the generator wherever in the stream it lands, however the stream was cut up.
class stream_bytes {
 public:
  explicit stream_bytes(uint64_t id) : id_(id) {}
  /// Bytes [offset, offset + n) of the stream.
  std::string at(uint64_t offset, size_t n) const;
  /// Position (within `data`) of the first byte that differs from the stream at `offset`, or
  /// std::string_view::npos when all match.
  size_t first_mismatch(uint64_t offset, std::string_view data) const;

 private:
  uint64_t word(uint64_t index) const;
  uint64_t id_;
};

/// splitmix64: a good 64-bit mix, used to derive stream ids and per-seed values.
uint64_t mix64(uint64_t x);

// ---- traffic ------------------------------------------------------------------------------------

enum class stream_kind {
  upload,     ///< the client sends `bytes`, shuts down, and reads the server's receipt
  download,   ///< the server sends `bytes` and closes; the client reads to end of stream
  exchanges,  ///< `exchanges` requests of random sizes, each answered by a response
};

/// One TCP stream of a workload: who talks to whom, what, when, and by when.
struct stream_plan {
  uint64_t id = 0;  ///< distinct within a workload; seeds its bytes
  stream_kind kind = stream_kind::upload;
  std::string client, server;  ///< host names
  std::string dial;            ///< what the client connects to: a name or a numeric address
  uint64_t bytes = 0;          ///< upload / download size
  int exchanges = 0;           ///< request/response rounds
  double start = 0;            ///< virtual seconds after the workload starts
  double deadline = 60;        ///< virtual seconds after `start` by which it must be done
};

enum class outcome {
  not_run,      ///< the client never reported (a bug in the workload or the simulator)
  completed,    ///< every byte arrived, checked, and the stream ended as agreed, in time
  clean_error,  ///< an anysock::error (timeout, reset, ...) ended it; no wrong byte was seen
  wrong_bytes,  ///< a byte differed from the stream's generator (never acceptable)
  bad_end,      ///< the stream ended early or ran long (never acceptable)
};
const char* to_string(outcome o);

struct stream_result {
  outcome result = outcome::not_run;
  std::string detail;   ///< what ended it, for messages
  double finished = 0;  ///< virtual time when the client finished
};

/// What a workload did: one result per plan entry (same order), and anything a server saw that
/// it should not have (wrong bytes, a malformed request).
struct traffic_report {
  std::vector<stream_result> streams;
  std::vector<std::string> server_problems;
  /// Count of streams with this outcome.
  size_t count(outcome o) const;
  /// A one-line-per-stream digest, identical for identical runs.
  std::string digest() const;
};

/// Something done to the world from outside while a workload runs (a partition, a new link
/// setting), `at` virtual seconds after the workload starts.
struct world_event {
  double at = 0;
  std::function<void(sim::world&)> apply;
};

/// Spawns the workload on `w` (a dual-stack listener on `port` of every server host; one thread
/// per client stream) and runs the world until it is done, applying `events` at their times on
/// the way. Server threads wait at most until every stream's deadline has passed (plus a
/// margin), so the run always ends.
traffic_report run_traffic(sim::world& w, const std::vector<stream_plan>& plan,
                           uint16_t port = 7000, std::vector<world_event> events = {});

// ---- captures -----------------------------------------------------------------------------------

struct captured_packet {
  double time = 0;    ///< seconds (virtual time for a world's capture)
  std::string bytes;  ///< the packet as captured (LINKTYPE_RAW: starts with the IP header)
};

/// A pcap file's link type and packets; throws std::runtime_error when it is not a valid file.
struct capture_file {
  uint32_t link_type = 0;
  std::vector<captured_packet> packets;
};
capture_file read_pcap(const std::string& path);

/// The IP and transport headers of a raw IP packet, as far as a test needs them.
struct packet_summary {
  int version = 0;  ///< 4 or 6
  std::string src, dst;
  int protocol = -1;  ///< IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6, ... (after IPv6 extensions)
  uint16_t src_port = 0, dst_port = 0;
  uint8_t tcp_flags = 0;  ///< TH_FIN, TH_SYN, TH_RST, TH_ACK ... (TCP only)
  size_t payload = 0;     ///< transport payload bytes (TCP/UDP only)
};
/// Parses a raw IPv4/IPv6 packet; std::nullopt if it is not one.
std::optional<packet_summary> summarize(std::string_view packet);

// ---- files --------------------------------------------------------------------------------------

/// A fresh directory under the system's temporary directory, removed with this object.
class temp_dir {
 public:
  temp_dir();
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  /// A path inside the directory.
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

/// The whole file (throws std::runtime_error if it cannot be read).
std::string read_file(const std::string& path);

/// This test program's own path (for replay commands).
std::string self_path();

}  // namespace anysock::sim_testing
