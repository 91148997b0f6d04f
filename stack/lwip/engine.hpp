// The lwIP engine: the one owner of lwIP in this process.
//
// lwIP keeps global state, so at most one engine exists at a time (engine::acquire() returns the
// running one or starts a new one; it shuts down when the last host holding it is gone, and a later
// acquire() starts a fresh one, waiting for the old one's destructor to finish with lwIP first).
// Everything that touches lwIP — socket calls, packet delivery, timers — runs under the engine's
// one mutex. Packets a host sends are queued by its link and delivered by pump(), which the caller
// of any lwIP call runs before releasing the lock ("run to completion"): a send() on one host
// carries its segment into the peer's stack and wakes the peer's reader directly. lwIP's timers run
// on the engine thread (real-time mode) or from poll() (run-to-completion mode, no thread), and
// also from any thread blocked in a socket call that reaches a timer's due time.
//
// Threads blocked in socket calls wait on one condition variable; every state change lwIP reports
// through a callback bumps `epoch_` and wakes them (they re-check their own condition). Waiters
// spin briefly on the epoch before sleeping: a round trip between two application threads then
// costs no futex sleep at all when both are on CPU.
//
// Ethernet links (ethernet_link.hpp) bring frames from outside the process. One thread at a time
// polls them: it sleeps in ppoll(2) on every link's descriptor and an eventfd of its own, receives
// bursts under the lock when one is ready, feeds them to the hosts and pumps. That thread is one
// of the threads blocked in a socket call if there is one (the others wait on the condition
// variable as usual): what it waits for is then received and processed on its own CPU, not handed
// over. Otherwise it is the engine thread (real-time mode), which takes the links back
// kLinkHandback after the last waiting thread stopped polling them, and otherwise sleeps on its
// eventfd (written when a timer moves earlier, a link comes or goes, or the engine stops) with
// lwIP's next timer as timeout. In poll mode lwip::poll() receives from the links too. Frames sent
// during a pump leave in one flush per link at its end. A link whose interface is deleted takes
// its host down (host::crash), never from inside pump().
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "anysock/backend.hpp"
#include "anysock/lwip.hpp"
#include "lwip/ip_addr.h"
#include "send_chunk.hpp"

struct netif;
struct pbuf;
struct pollfd;

namespace anysock::lwip_detail {

class host;
class sim_link;
class ethernet_link;

/// Who decides which thread runs while an engine runs on a virtual clock (anysock::sim's world).
/// Called with the engine lock held.
class scheduler {
 public:
  virtual ~scheduler() = default;
  /// engine::wait in virtual time: parks the calling thread until pred() holds, its deadline
  /// passes (the clock jumps there when nothing else can run) or its host goes down.
  virtual int wait(std::unique_lock<std::mutex>& lk, const wait_spec& w,
                   const std::function<bool()>& pred, const char* what) = 0;
  /// A point where another runnable thread may be chosen to run (after every send).
  virtual void switch_point(std::unique_lock<std::mutex>& lk) = 0;
};

class engine {
 public:
  /// thread: real time, timers on the engine thread; poll: real time, timers from poll();
  /// sim: a virtual clock moved by a scheduler, no thread, every random choice from a seed.
  enum class mode { thread, poll, sim };

  /// The running engine, or a new one in mode `m` (std::invalid_argument if the running engine is
  /// in another mode and `m_given`).
  static std::shared_ptr<engine> acquire(mode m, bool m_given);
  /// The running engine, if any.
  static std::shared_ptr<engine> running();
  /// Runs `f` while it may touch lwIP's global state (the heap limit, say): under the running
  /// engine's lock, or with no engine running, after the last one finished shutting down and
  /// before the next one starts.
  static void with_lwip(const std::function<void()>& f);
  /// A new engine in sim mode with every random choice drawn from `seed`; std::logic_error if an
  /// engine is running already.
  static std::shared_ptr<engine> start_sim(uint64_t seed);

  ~engine();
  engine(const engine&) = delete;
  engine& operator=(const engine&) = delete;

  std::mutex& mutex() { return mu_; }
  mode run_mode() const { return mode_; }
  /// Seconds on the engine's clock (CLOCK_MONOTONIC in real time, virtual in sim mode).
  double now() const;
  int64_t now_ns() const;

  // ---- sim mode (lock held)
  // ----------------------------------------------------------------------
  void set_scheduler(scheduler* s) { scheduler_ = s; }
  /// Moves the virtual clock to `t` (never backwards), then runs due timers and deliveries.
  void advance_to(int64_t t_ns);
  /// When the next queued packet is due (INT64_MAX: none queued).
  int64_t next_delivery_ns() const;
  /// When lwIP's next timer is due (INT64_MAX: none).
  int64_t next_timer_ns() const;
  /// Whether a TCP connection still has work its timers will do (retransmissions, handshakes,
  /// closing, delayed ACKs, persist or keepalive probes): lwIP's timers then count as activity.
  bool tcp_work_pending() const;
  /// A switch point (see scheduler); nothing outside sim mode.
  void switch_point(std::unique_lock<std::mutex>& lk) {
    if (scheduler_ != nullptr) scheduler_->switch_point(lk);
  }
  /// A switch point for a call that returns "not yet" without waiting (EALREADY, EINPROGRESS): in
  /// sim mode the caller runs again only once something changed or the clock moved.
  void poll_point(std::unique_lock<std::mutex>& lk) {
    if (scheduler_ == nullptr) return;
    static const std::function<bool()> never = [] { return false; };
    scheduler_->wait(lk, wait_spec{wait_spec::mode::nonblock, 0}, never, "poll");
  }
  uint64_t epoch() const { return epoch_.load(std::memory_order_relaxed); }

  // ---- called with the lock held ---------------------------------------------------------------
  /// Delivers queued packets (links and every host's loopback) until none is left, runs due timers,
  /// then wakes waiters if anything changed and the engine thread if the next timer moved earlier.
  void pump();
  /// Something a waiter may be waiting for changed (called from lwIP callbacks).
  void changed() { dirty_ = true; }
  /// Waits (lock held through `lk`) until pred() holds or `w` runs out: 0, EAGAIN (non-blocking) or
  /// wait_timed_out. Runs due lwIP timers while waiting.
  /// `what` names the call for a deadlock report ("recv", "accept", ...).
  int wait(std::unique_lock<std::mutex>& lk, const wait_spec& w, const std::function<bool()>& pred,
           const char* what = "wait");
  /// Makes `h` the host lwIP serves now (route hooks, netif_default for unpinned replies).
  void enter(host* h);

  /// Pool and heap use now: what a host's netif takes (multicast memberships) is the host's, not a
  /// leak, so hosts bracket netif_add/netif_remove with usage() and report the change.
  std::vector<int64_t> usage() const;
  void add_host(host* h, const std::vector<int64_t>& usage_before);
  void remove_host(host* h);
  void host_netif_removed(const std::vector<int64_t>& usage_before);
  const std::vector<host*>& hosts() const { return hosts_; }
  host* host_owning_ip4(uint32_t addr_be) const;
  host* host_owning_ip6(const uint32_t addr[4]) const;
  host* current_host() const { return current_; }

  /// The sim link named `name`, created on first use (destroyed with the engine).
  sim_link& link(const std::string& name);

  lwip::counters read_counters() const;
  std::string leak_report();
  int poll_once();

  /// Eventfds written whenever waiters are woken (select/poll over lwIP and kernel sockets at
  /// once).
  void add_wake_fd(int fd);
  void remove_wake_fd(int fd);

  /// Chunks of zero-copy sends (see send_chunk.hpp).
  send_chunk_registry& chunks() { return chunks_; }

  /// Tracks one more/fewer lwIP pool failure or ENOBUFS reported to a caller.
  void count_memory_failure() { ++memory_failures_; }

  // ---- Ethernet links (lock held) ---------------------------------------------------------------
  /// Starts/stops polling `l` for frames (its host attaches/detaches it).
  void add_ethernet(ethernet_link* l);
  void remove_ethernet(ethernet_link* l);
  /// A link found its interface deleted: its host is taken down soon, outside any pump().
  void link_failed();

  // ---- DNS (lwIP's client; lock held) -----------------------------------------------------------
  struct dns_query {
    bool done = false;
    bool found = false;
    ip_addr_t addr{};
  };
  /// Asks `server` for `name`'s A (or AAAA when `ipv6`) record through lwIP's DNS client, sent by
  /// host `h`. The answer lands in the returned query (done; found and addr), then changed().
  std::shared_ptr<dns_query> dns_lookup(host* h, const ip_addr_t& server, const std::string& name,
                                        bool ipv6);

 private:
  engine(mode m, const uint64_t* seed);
  /// A new engine in the registry, once the previous one has finished its destructor (registry
  /// lock held).
  static std::shared_ptr<engine> start(mode m, const uint64_t* seed);
  void close_wake_fds();
  void run_thread();
  void run_timers();
  void wake_engine_thread_if_needed();
  /// An eventfd a thread sleeping in poll_links() listens to: the engine thread's, and the one of
  /// the waiting thread that polls the links (one at a time).
  struct wake_channel {
    int fd = -1;
    bool sleeping = false;    // a thread sleeps in poll_links() on it
    bool with_links = false;  // ... polling the links too
    bool pending = false;     // written since that thread last woke
    double wakes_at = 0;      // when it wakes at the latest (engine clock)
  };
  /// Writes `c`'s eventfd if a thread sleeps on it (once until it wakes).
  void kick(wake_channel& c);
  /// Releases the lock and sleeps in ppoll on `c` (and every Ethernet link if `with_links`) until
  /// one is ready or `until` (engine clock; +inf: no timeout), then receives from the ready links
  /// and pumps. Lock held on entry and on return.
  void poll_links(std::unique_lock<std::mutex>& lk, double until, wake_channel& c, bool with_links,
                  std::vector<pollfd>& fds, std::vector<ethernet_link*>& polled);
  /// A waiting thread polls the links once (see poll_links), as the one poller of the links.
  void poll_as_waiter(std::unique_lock<std::mutex>& lk, double until);
  /// Receives what every Ethernet link holds (up to a budget each), without waiting.
  size_t receive_links();
  /// Takes down the hosts whose link failed.
  void reap_failed_links();
  static void dns_found(const char* name, const ip_addr_t* addr, void* arg);
  void shutdown_lwip();
  void spin_until_changed(uint64_t seen);

  mode mode_;
  scheduler* scheduler_ = nullptr;
  int64_t virtual_now_ns_ = 0;
  std::mutex mu_;
  std::condition_variable waiters_;
  wake_channel engine_wake_;    // the engine thread's (see the top)
  wake_channel poller_wake_;    // the waiting thread's that polls the links
  bool poller_active_ = false;  // a waiting thread polls the links (the engine thread does not)
  double links_free_at_ = 0;    // the engine thread polls the links again from then on
  std::atomic<uint64_t> epoch_{0};
  std::atomic<int> last_waiter_cpu_{-1};  // the CPU of the thread that last began to wait
  bool dirty_ = false;
  bool backlog_ = false;  // pump() left packets queued (its budget ran out)
  bool stop_ = false;
  int sleepers_ = 0;
  std::thread thread_;
  std::vector<host*> hosts_;  // in creation order
  std::vector<int> wake_fds_;
  send_chunk_registry chunks_;  // before links_: queued packets may point into chunks
  host* current_ = nullptr;
  std::map<std::string, std::unique_ptr<sim_link>> links_;
  std::vector<ethernet_link*> ethernet_;  // in attach order
  uint64_t ethernet_version_ = 0;         // changes when a link comes or goes
  bool failed_links_ = false;
  std::map<uintptr_t, std::shared_ptr<dns_query>> dns_pending_;
  uintptr_t next_dns_id_ = 1;
  std::vector<int64_t> baseline_;  // pools (MEMP_MAX entries) then the heap, at engine start
  uint64_t memory_failures_ = 0;
  uint64_t rto_retransmissions_ = 0;
  std::vector<std::pair<const void*, uint8_t>> rto_before_;  // run_timers' scratch
};

}  // namespace anysock::lwip_detail
