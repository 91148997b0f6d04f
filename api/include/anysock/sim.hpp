// anysock::sim — deterministic network simulation over the lwIP backend.
//
// A world holds hosts (each a full lwIP stack with its own addresses and name) on one simulated
// link, a virtual clock and a seeded random generator. Code spawned on a host is ordinary blocking
// socket code: inside it, anysock::socket and the module functions use that host's stack. Spawned
// code runs one thread at a time, switching only at calls of our API (blocking calls, sends, calls
// that return EAGAIN, sim::sleep); when every thread is blocked the clock jumps to the next packet
// delivery or timer. Nothing waits in wall time: a 30 s timeout on a silent socket expires at once.
//
// Every random choice (link faults, TCP initial sequence numbers, ephemeral ports, which runnable
// thread goes next) is drawn from the seed, so a world run twice with one seed sends the same
// packets at the same virtual times (capture() files are byte-identical), whether it is the first
// or the hundredth world of the process.
//
// One world exists at a time per process, and it owns the process's lwIP engine while it lives
// (making an lwip+sim/lwip+tap backend meanwhile shares that engine and its virtual clock).
// Spawned code must block only in anysock calls (a thread waiting on a std::mutex or condition
// variable held by another spawned thread would stop the world).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace anysock {
class backend;
}

namespace anysock::sim {

/// How packets travel from one host to another. Probabilities are in [0, 1], times in seconds;
/// std::invalid_argument for anything negative, a probability above 1 or an MTU outside
/// [576, 65535].
struct link_config {
  double loss = 0;         ///< probability a packet is dropped
  double delay = 0;        ///< one-way propagation delay
  double jitter = 0;       ///< delay varies uniformly by ± jitter (never below zero)
  double reorder = 0;      ///< probability a packet is held back so that later ones overtake it
  double duplicate = 0;    ///< probability a packet is delivered twice
  double corrupt = 0;      ///< probability one bit of a packet is flipped (one per datagram,
                           ///< across its fragments: two could cancel out in its checksum)
  uint64_t rate_bps = 0;   ///< serialisation rate in bits per second (0: unlimited)
  size_t mtu = 1500;       ///< larger packets are dropped (hosts take the MTU of their links)
  size_t queue_limit = 0;  ///< packets waiting for the rate limiter before tail drop (0: unlimited)
};

/// What the links did over the world's life. Every packet a host sends is counted once in `sent`,
/// then either dropped (one of the drop counters) or delivered (twice if duplicated).
struct stats {
  uint64_t sent = 0;
  uint64_t delivered = 0;  ///< packets handed to a receiving host: the packets capture() writes
  uint64_t delivered_bytes = 0;
  uint64_t lost = 0;         ///< dropped by `loss`
  uint64_t duplicated = 0;   ///< extra copies made by `duplicate`
  uint64_t corrupted = 0;    ///< packets with a flipped bit
  uint64_t reordered = 0;    ///< packets held back by `reorder`
  uint64_t too_big = 0;      ///< dropped for exceeding the link's MTU
  uint64_t queue_drops = 0;  ///< dropped by `queue_limit`
  uint64_t partitioned = 0;  ///< dropped by a partition
  uint64_t unroutable = 0;   ///< no host has the destination (e.g. it crashed)
};

/// What run() throws when spawned code threw: which host's code it was. An anysock::error (or
/// herror, gaierror, timeout) is rethrown with its own type and errno, and also derives from
/// host_failure; what() becomes "host '<name>': <original what()>".
class host_failure {
 public:
  explicit host_failure(std::string host) : host_(std::move(host)) {}
  virtual ~host_failure() = default;
  const std::string& host() const { return host_; }

 private:
  std::string host_;
};

/// Any other exception from spawned code: what() is "host '<name>': <original what()>", and the
/// original is nested (std::rethrow_if_nested(e) throws it with its own type).
class spawn_error : public std::runtime_error, public host_failure {
 public:
  spawn_error(std::string host, const std::string& what)
      : std::runtime_error(what), host_failure(std::move(host)) {}
};

/// run() found no thread that can ever run again: what() lists what each one is blocked on.
class deadlock : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class world;
struct world_state;
struct host_state;

/// A host of a world (made by world::add_host; lives as long as the world).
class host {
 public:
  const std::string& name() const;
  /// Its addresses, numeric ("10.0.0.1", "fd00::1").
  std::string ip() const;
  std::string ip6() const;

  /// Runs `fn` as a thread of this host (when the world runs). May be called from spawned code.
  void spawn(std::function<void()> fn);
  /// The host vanishes: it sends nothing more (no FIN, no RST), packets to it are lost, its
  /// threads blocked in our API get error(ENETDOWN) and every later call on its sockets fails
  /// the same way.
  void crash();
  /// Brings a crashed host back with a fresh stack and no sockets (same name and addresses).
  void restart();
  bool crashed() const;
  /// The host's current stack, for sockets made outside spawned code (anysock::socket(b, ...)).
  anysock::backend& stack();

  host(const host&) = delete;
  host& operator=(const host&) = delete;
  ~host();

 private:
  friend class world;
  friend struct world_state;
  explicit host(std::unique_ptr<host_state> s);
  std::unique_ptr<host_state> s_;
};

class world {
 public:
  explicit world(uint64_t seed);
  /// Stops what is still running (blocked threads get error(ECANCELED)) and frees every host.
  ~world();
  world(const world&) = delete;
  world& operator=(const world&) = delete;

  uint64_t seed() const;
  /// Adds a host; the n-th host (from 1) gets 10.0.<n/256>.<n%256>/16 and fd00::<n in hex>/64 on
  /// the world's link, and the MTU of its links. Names are unique and non-empty
  /// (std::invalid_argument otherwise).
  host& add_host(std::string name);
  /// The host named `name` (std::out_of_range if none).
  host& get(const std::string& name);
  const std::vector<host*>& hosts() const;

  /// Links: the default applies to every pair without its own setting.
  void set_default_link(const link_config& cfg);
  void set_link(host& a, host& b, const link_config& cfg);
  void set_link_one_way(host& from, host& to, const link_config& cfg);
  void partition(host& a, host& b);
  void partition_one_way(host& from, host& to);
  void heal(host& a, host& b);

  /// Runs until every spawned function has returned. If one throws, the world stops (the others
  /// get error(ECANCELED) from their next call) and run() rethrows it naming the host (see
  /// host_failure). If
  /// no thread can run and nothing can ever wake one, the world stops and run() throws deadlock.
  /// A stopped world cannot run again (std::logic_error). Not callable from spawned code.
  void run();
  /// Runs for `seconds` of virtual time (threads still blocked stay blocked), then returns.
  void run_for(double seconds);
  /// Virtual seconds since the world began.
  double now() const;
  /// Writes every packet as the link delivers it (after faults), stamped with virtual time, to a
  /// pcap file (LINKTYPE_RAW: IPv4/IPv6 packets). Call before run(); one file per world. The file
  /// gets permission bits `mode` (less the umask; an existing file is narrowed to them) and is
  /// never reached through a symbolic link (anysock::error(ELOOP) naming it).
  void capture(const std::string& path, unsigned mode = 0600);
  sim::stats stats() const;

 private:
  std::unique_ptr<world_state> s_;
};

/// Virtual seconds inside a world's spawned code; elsewhere seconds of CLOCK_MONOTONIC.
double now();
/// Waits `seconds` of virtual time inside a world's spawned code (a switch point); elsewhere
/// sleeps in real time.
void sleep(double seconds);

}  // namespace anysock::sim
