// What only the lwIP backend has: its counters, its hosts table, its run-to-completion poll and its
// leak check. Backends come from make_backend("lwip+sim:…") like any other (see README.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace anysock::lwip {

/// Traffic of one host's link attachment (a netif), counted by the engine.
struct link_counters {
  std::string host;        ///< the host's name
  std::string link;        ///< e.g. "sim:default"
  uint64_t frames_in = 0;  ///< packets delivered to the host
  uint64_t bytes_in = 0;
  uint64_t frames_out = 0;  ///< packets the host put on the link (loopback not included)
  uint64_t bytes_out = 0;
  uint64_t drops = 0;  ///< packets the link could not deliver (no such destination, over the MTU)
  uint64_t oversize = 0;  ///< received frames longer than the MTU + Ethernet header + one VLAN
                          ///< tag or than 65,535 bytes (lwIP's longest packet buffer), dropped
                          ///< (Ethernet links)
  // Ethernet links only (lwip+tap, lwip+af_packet, ...): how the frames were batched.
  uint64_t rx_bursts = 0;   ///< driver receive calls that brought frames
  uint64_t tx_flushes = 0;  ///< driver flushes that sent frames (one system call on af_packet and
                            ///< af_xdp; tap and pcap send each frame with one call anyway)
  uint64_t wakeups = 0;     ///< times a thread polling the links woke because this one was ready
};

/// One lwIP memory pool (or the heap): how much is in use now and how often an allocation failed.
struct pool_counters {
  std::string name;
  uint64_t used = 0;
  uint64_t max = 0;  ///< highest use seen
  uint64_t failures = 0;
};

/// The running engine's counters: the first thing to read when a transfer stalls. Protocol counters
/// are lwIP's own (since this engine started).
struct counters {
  std::vector<link_counters> links;
  uint64_t ip_in = 0, ip_out = 0, ip_drops = 0, ip_checksum_errors = 0;
  uint64_t tcp_in = 0, tcp_out = 0, tcp_drops = 0, tcp_checksum_errors = 0;
  uint64_t tcp_retransmissions = 0;
  uint64_t udp_in = 0, udp_out = 0, udp_drops = 0, udp_checksum_errors = 0;
  uint64_t memory_failures = 0;  ///< allocations that failed in our layer or in lwIP
  std::vector<pool_counters> pools;
};

/// Counters of the running engine (all zero when no engine runs). Thread-safe.
counters read_counters();

/// Adds `address` (numeric IPv4 or IPv6) to `name` in the hosts table every lwIP host consults
/// (after its own name and its link's hosts). Throws std::invalid_argument for a non-numeric
/// address. Thread-safe; lasts for the process.
void add_host_entry(const std::string& name, const std::string& address);
/// Removes every address of `name` from the hosts table.
void remove_host_entry(const std::string& name);

/// Run-to-completion mode (spec key engine=poll: no engine thread): delivers pending packets and
/// runs due lwIP timers once; returns nonzero when that changed some socket's state (data, a
/// connection, an error), 0 when nothing happened. Call it from the
/// program's loop between non-blocking socket calls. Harmless in thread mode. Thread-safe.
int poll();

/// Caps the memory lwIP may hold (packets, connections; bytes, 0 = no cap, the default) for every
/// engine of the process. Past the cap lwIP's allocations fail as under real exhaustion: socket
/// calls raise ENOBUFS / ENOMEM (or wait for memory, as the kernel's do), packets are dropped and
/// counted. Thread-safe.
void set_memory_limit(size_t bytes);

/// Settles the running engine (aborts connections in TIME_WAIT, delivers what is queued, expires
/// datagrams still waiting for fragments) and checks that every lwIP pool and the heap are back to
/// the counts the engine started with. Returns "" when nothing leaked, else a description. For
/// tests, after their sockets are closed.
std::string leak_report();

}  // namespace anysock::lwip
