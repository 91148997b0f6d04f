// A thread that makes a batching driver's "send what the ring holds" system call, so the thread
// that runs the stack goes on producing frames meanwhile.
//
// Why: on af_packet and af_xdp one sendto() hands a burst of ring slots to the kernel, and the
// kernel sends them inside that call: allocating an skb per frame, copying it, and (on a veth, or
// any device that delivers locally) running the receiving side's whole IP and TCP input in the
// softirq at the end. Measured with link-tcp-bench, that call was 80% of the sending thread's time
// while the other CPU idled a quarter of the time. With a kicker the stack fills the ring on one
// CPU while the kernel drains it on another.
//
// Contract with the driver: `kick` runs on the kicker's thread, concurrently with the driver's
// other calls, so it may only make the system call and read what the kernel publishes (slot
// status words, ring indices); everything the driver's own calls change stays theirs. The kernel
// serialises concurrent sendto() calls on one socket (af_packet's pg_vec_lock, XDP's socket
// mutex), so the driver may still kick synchronously itself, e.g. when its ring is full.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

namespace anysock::drivers::detail {

class tx_kicker {
 public:
  /// Starts the thread (named `name`, at most 15 characters). `kick` returns 0 or an errno.
  tx_kicker(std::function<int()> kick, const std::string& name);
  /// Stops and joins the thread: the driver must destroy its kicker before closing the socket.
  ~tx_kicker();
  tx_kicker(const tx_kicker&) = delete;
  tx_kicker& operator=(const tx_kicker&) = delete;

  /// Asks for a kick after frames were published. Costs one atomic add, plus a futex wake when the
  /// thread is asleep; every request made before a kick starts is covered by it.
  void request() noexcept;
  /// The policy both drivers follow, on `queued`: the driver's count of frames published since it
  /// last asked for a kick.
  /// transmit() calls frame_queued() after each frame: every kBurst frames it asks for a kick, so
  /// the kernel starts on a long burst while the stack is still producing it.
  void frame_queued(uint32_t& queued) noexcept {
    if (++queued < kBurst) return;
    queued = 0;
    request();
  }
  /// flush() calls take_flush(): true when the thread takes the rest (it is awake, or kicked less
  /// than kStreamGap ago: a stream of bursts is under way); false when the caller should send the
  /// few frames itself (acknowledgements, a request), as waking the thread would add its wake-up
  /// to their latency.
  bool take_flush(uint32_t& queued) noexcept {
    if (!busy(kStreamGap)) return false;
    if (queued > 0) {
      queued = 0;
      request();
    }
    return true;
  }

  /// The first error a kick returned since the last call (then cleared), or 0.
  int take_error() noexcept { return error_.exchange(0, std::memory_order_acq_rel); }
  /// Whether the thread is awake, or finished a kick less than `recent` ago: a stream of bursts is
  /// under way, and a kick of the caller's own would contend with the thread's (and a request to
  /// an awake thread costs no system call).
  bool busy(std::chrono::nanoseconds recent) const noexcept;
  /// Kicks made so far (system call rounds, for counters).
  uint64_t kicks() const noexcept { return kicks_.load(std::memory_order_relaxed); }

  /// Whether a driver should start one when its `tx_thread` option is absent: only with a CPU to
  /// spare (on one CPU a second thread only adds context switches).
  static bool useful_by_default() noexcept;

  static constexpr uint32_t kBurst = 32;
  static constexpr std::chrono::microseconds kStreamGap{200};

 private:
  void run() noexcept;

  std::function<int()> kick_;
  std::atomic<uint32_t> requests_{0};
  std::atomic<bool> sleeping_{false};
  std::atomic<bool> stop_{false};
  std::atomic<int> error_{0};
  std::atomic<uint64_t> kicks_{0};
  std::atomic<int64_t> last_kick_end_{0};  // steady_clock, nanoseconds
  std::thread thread_;
};

}  // namespace anysock::drivers::detail
