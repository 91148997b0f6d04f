#include "engine.hpp"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <limits>
#include <stdexcept>

#include "../../drivers/sim/sim_link.hpp"
#include "anysock/error.hpp"
#include "anysock_lwip_port.h"
#include "ethernet_link.hpp"
#include "host.hpp"
#include "icmp_errors.hpp"
#include "lwip/dns.h"
#include "lwip/init.h"
#include "lwip/ip4_frag.h"
#include "lwip/ip6_frag.h"
#include "lwip/memp.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/stats.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "lwip/udp.h"
#include "reassembly_guard.hpp"
#include "siphash.hpp"
#include "state.h"

extern "C" void lwip_cyclic_timer(void* arg);  // non-static under LWIP_TESTMODE (lwipopts.h)

namespace anysock::lwip_detail {
namespace {

constexpr double kForever = std::numeric_limits<double>::infinity();
// Packets one pump() delivers at most before leaving the rest to the engine thread.
constexpr size_t kPumpBudget = 1 << 16;
// Frames taken from one Ethernet link per wake-up before pumping (and flushing the replies).
constexpr size_t kReceiveBudget = 256;
// How long after a waiting thread stopped polling the links the engine thread takes them back:
// long enough for that thread to come back with its next call (copying out what it received, say)
// and find the next frames itself, on its own CPU.
constexpr double kLinkHandback = 500e-6;

double monotonic_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::chrono::steady_clock::time_point steady_at(double seconds) {
  // steady_clock is CLOCK_MONOTONIC on Linux: the same clock as monotonic_seconds(). Deadlines
  // past a century are a century away (the nanosecond count would overflow: a wait that returned
  // at once, and a waiter that spun).
  seconds = std::min(seconds, monotonic_seconds() + 100 * 365.25 * 86400);
  return std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(seconds)));
}

// The running engine, for acquire() and running(). Its weak pointer expires before the engine's
// destructor runs: an expired pointer does not mean lwIP is free.
std::mutex& registry_mutex() {
  static std::mutex mu;
  return mu;
}
std::weak_ptr<engine>& registry() {
  static std::weak_ptr<engine> current;
  return current;
}

// Whether an engine owns lwIP's global state: from before its constructor until the end of its
// destructor (shutdown_lwip() included). A new engine starts only once the previous one is gone.
// Taken after registry_mutex() when both are held; the destructor takes only this one.
struct lwip_owner {
  std::mutex mu;
  std::condition_variable released;
  bool taken = false;
};
lwip_owner& owner() {
  static lwip_owner o;
  return o;
}

// Waits until no engine owns lwIP (the previous one finished its destructor).
void wait_until_lwip_free(std::unique_lock<std::mutex>& lk) {
  owner().released.wait(lk, [] { return !owner().taken; });
}

void release_lwip() {
  std::lock_guard lk(owner().mu);
  owner().taken = false;
  owner().released.notify_all();
}

// The engine lwIP's hooks talk to (set while one runs; accessed under its lock).
engine* g_engine = nullptr;
// RFC 6528 key for initial sequence numbers, drawn when an engine starts.
uint64_t g_isn_key[2] = {0, 0};

// splitmix64 of (seed, stream): independent streams of one seed.
uint64_t derive_seed(uint64_t seed, uint64_t stream) {
  uint64_t z = seed + stream * 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// How long a waiter spins on the epoch before sleeping.
constexpr double kSpinSeconds = 20e-6;

// lwIP's pool names ("TCP_PCB", "PBUF_POOL", ...), in memp_t order.
const char* const kPoolNames[] = {
#define LWIP_MEMPOOL(name, num, size, desc) #name,
#include "lwip/priv/memp_std.h"
};
static_assert(sizeof kPoolNames / sizeof kPoolNames[0] == MEMP_MAX);

std::vector<int64_t> snapshot() {
  std::vector<int64_t> v;
  for (int i = 0; i < MEMP_MAX; ++i) {
    v.push_back(lwip_stats.memp[i] ? static_cast<int64_t>(lwip_stats.memp[i]->used) : 0);
  }
  v.push_back(static_cast<int64_t>(lwip_stats.mem.used));
  return v;
}

}  // namespace

std::shared_ptr<engine> engine::acquire(mode m, bool m_given) {
  std::shared_ptr<engine> e;  // destroyed after the lock is released (it may be the last owner)
  std::lock_guard lk(registry_mutex());
  e = registry().lock();
  if (e == nullptr) return start(m, nullptr);
  if (m_given && e->mode_ != m) {
    throw std::invalid_argument(
        "lwIP engine already runs in another mode (engine=thread|poll must agree across hosts)");
  }
  return e;
}

std::shared_ptr<engine> engine::start_sim(uint64_t seed) {
  std::shared_ptr<engine> e;
  std::lock_guard lk(registry_mutex());
  e = registry().lock();
  if (e != nullptr) {
    throw std::logic_error(
        "anysock::sim::world: an lwIP engine is already running in this process (one world at a "
        "time, and no lwip+ backend may outlive into a world)");
  }
  return start(mode::sim, &seed);
}

std::shared_ptr<engine> engine::start(mode m, const uint64_t* sim_seed) {
  {
    // The last engine's pointer has expired, but its destructor may still be shutting lwIP down.
    std::unique_lock lk(owner().mu);
    wait_until_lwip_free(lk);
    owner().taken = true;
  }
  std::shared_ptr<engine> e;
  try {
    e.reset(new engine(m, sim_seed));
  } catch (...) {
    release_lwip();
    throw;
  }
  registry() = e;
  return e;
}

std::shared_ptr<engine> engine::running() {
  std::lock_guard lk(registry_mutex());
  return registry().lock();
}

void engine::with_lwip(const std::function<void()>& f) {
  std::shared_ptr<engine> e;  // destroyed after both locks are released
  std::unique_lock registry_lock(registry_mutex());
  e = registry().lock();
  if (e == nullptr) {
    // No engine can start while we hold the registry lock; wait for one shutting down.
    std::unique_lock lk(owner().mu);
    wait_until_lwip_free(lk);
    f();
    return;
  }
  registry_lock.unlock();
  std::lock_guard lk(e->mu_);
  f();
}

engine::engine(mode m, const uint64_t* sim_seed) : mode_(m) {
  std::lock_guard lk(mu_);
  uint64_t seed = 0;
  if (sim_seed != nullptr) {
    // Everything lwIP draws (ports, IP ids, MLD delays) and the ISN key come from the seed.
    seed = derive_seed(*sim_seed, 1);
    g_isn_key[0] = derive_seed(*sim_seed, 2);
    g_isn_key[1] = derive_seed(*sim_seed, 3);
  } else {
    if (getrandom(g_isn_key, sizeof g_isn_key, 0) != sizeof g_isn_key) {
      g_isn_key[0] = static_cast<uint64_t>(monotonic_seconds() * 1e9);
      g_isn_key[1] = reinterpret_cast<uintptr_t>(this);
    }
    if (getrandom(&seed, sizeof seed, 0) != sizeof seed) seed = g_isn_key[0] ^ 0x5eed;
  }
  g_engine = this;  // sys_now() reads the clock of the engine being initialised
  anysock_lwip_seed_rand(seed);
  // Every engine starts from lwIP's statics as they were before the first one (ip_id, tcp_port,
  // the timer list, netif numbering, ND tables ...): lwip_init() resets only some of them.
  anysock_lwip_state_save();
  anysock_lwip_state_restore();
  lwip_init();
  // Protocol counters start from zero with every engine (pool and heap use is cumulative state).
  std::memset(&lwip_stats.link, 0, sizeof lwip_stats.link);
  std::memset(&lwip_stats.ip, 0, sizeof lwip_stats.ip);
  std::memset(&lwip_stats.tcp, 0, sizeof lwip_stats.tcp);
  std::memset(&lwip_stats.udp, 0, sizeof lwip_stats.udp);
  std::memset(&lwip_stats.ip6, 0, sizeof lwip_stats.ip6);
  std::memset(&lwip_stats.icmp, 0, sizeof lwip_stats.icmp);
  std::memset(&lwip_stats.icmp6, 0, sizeof lwip_stats.icmp6);
  std::memset(&lwip_stats.mib2, 0, sizeof lwip_stats.mib2);
  baseline_ = snapshot();
  try {
    if (mode_ != mode::sim) {
      for (wake_channel* c : {&engine_wake_, &poller_wake_}) {
        c->fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (c->fd < 0) throw anysock::error(errno, "lwIP engine: eventfd");
      }
    }
    if (mode_ == mode::thread) {
      thread_ = std::thread([this] { run_thread(); });
      pthread_setname_np(thread_.native_handle(), "lwip-engine");  // for top -H, perf, gdb
    }
  } catch (...) {
    // No destructor runs: leave lwIP as the destructor would, for the next engine.
    shutdown_lwip();
    close_wake_fds();
    g_engine = nullptr;
    throw;
  }
}

engine::~engine() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
    if (engine_wake_.fd >= 0) {
      uint64_t one = 1;
      [[maybe_unused]] ssize_t n = ::write(engine_wake_.fd, &one, sizeof one);
    }
  }
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard lk(mu_);
    shutdown_lwip();
    close_wake_fds();
    g_engine = nullptr;
  }
  release_lwip();  // the next engine may start now
}

void engine::close_wake_fds() {
  for (wake_channel* c : {&engine_wake_, &poller_wake_}) {
    if (c->fd >= 0) ::close(c->fd);
    c->fd = -1;
  }
}

void engine::shutdown_lwip() {
  // Hosts are gone (each aborted its own pcbs); anything left belongs to no host.
  while (tcp_active_pcbs != nullptr) tcp_abort(tcp_active_pcbs);
  while (tcp_tw_pcbs != nullptr) tcp_abort(tcp_tw_pcbs);
  while (tcp_bound_pcbs != nullptr) tcp_abort(tcp_bound_pcbs);
  while (tcp_listen_pcbs.pcbs != nullptr) tcp_close(tcp_listen_pcbs.pcbs);
  while (udp_pcbs != nullptr) udp_remove(udp_pcbs);
  // Fragments waiting for reassembly are freed by age only: age them out (no netif is left to
  // send a "reassembly time exceeded" through).
  for (int tick = 0; tick < 256; ++tick) {
    ip_reass_tmr();
    ip6_reass_tmr();
  }
  links_.clear();
  dns_pending_.clear();
  // Empty lwIP's timer list: lwip_init() of the next engine registers its timers again and would
  // otherwise run every periodic timer twice. Non-periodic entries (the TCP timer) are run once
  // first: with no pcbs left, the TCP timer marks itself inactive, so the next engine restarts it.
  for (int round = 0; round < 2; ++round) {
    sys_timeo** head = sys_timeouts_get_next_timeout();
    sys_timeo* t = *head;
    *head = nullptr;
    while (t != nullptr) {
      sys_timeo* next = t->next;
      if (round == 0 && t->h != &lwip_cyclic_timer) t->h(t->arg);
      memp_free(MEMP_SYS_TIMEOUT, t);
      t = next;
    }
  }
  tcp_ticks = 0;
  anysock_lwip_heap_release();
}

double engine::now() const {
  return mode_ == mode::sim ? static_cast<double>(virtual_now_ns_) * 1e-9 : monotonic_seconds();
}

int64_t engine::now_ns() const {
  if (mode_ == mode::sim) return virtual_now_ns_;
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void engine::advance_to(int64_t t_ns) {
  if (t_ns > virtual_now_ns_) virtual_now_ns_ = t_ns;
  run_timers();
}

int64_t engine::next_delivery_ns() const {
  int64_t next = std::numeric_limits<int64_t>::max();
  for (const auto& [name, l] : links_) next = std::min(next, l->next_due_ns());
  return next;
}

int64_t engine::next_timer_ns() const {
  u32_t ms = sys_timeouts_sleeptime();
  if (ms == SYS_TIMEOUTS_SLEEPTIME_INFINITE) return std::numeric_limits<int64_t>::max();
  // lwIP's clock is whole milliseconds: the timer is due at the start of that millisecond.
  const int64_t now_ms = now_ns() / 1000000;
  return std::max(now_ns() + 1, (now_ms + static_cast<int64_t>(ms)) * 1000000);
}

bool engine::tcp_work_pending() const {
  for (const tcp_pcb* p = tcp_active_pcbs; p != nullptr; p = p->next) {
    if (p->unacked != nullptr || p->unsent != nullptr || p->refused_data != nullptr) return true;
    if (p->state == SYN_SENT || p->state == SYN_RCVD || p->state == FIN_WAIT_1 ||
        p->state == CLOSING || p->state == LAST_ACK) {
      return true;
    }
    if ((p->flags & TF_ACK_DELAY) != 0 || p->persist_backoff > 0) return true;
    if (ip_get_option(p, SOF_KEEPALIVE)) return true;
  }
  return false;
}

void engine::enter(host* h) {
  current_ = h;
  if (h != nullptr && netif_default != h->nif()) netif_set_default(h->nif());
}

std::vector<int64_t> engine::usage() const { return snapshot(); }

void engine::add_host(host* h, const std::vector<int64_t>& usage_before) {
  hosts_.push_back(h);
  std::vector<int64_t> after = snapshot();
  for (size_t i = 0; i < after.size(); ++i) baseline_[i] += after[i] - usage_before[i];
}

void engine::host_netif_removed(const std::vector<int64_t>& usage_before) {
  std::vector<int64_t> after = snapshot();
  for (size_t i = 0; i < after.size(); ++i) baseline_[i] += after[i] - usage_before[i];
}

void engine::remove_host(host* h) {
  std::erase(hosts_, h);
  if (current_ == h) current_ = nullptr;
  if (netif_default == h->nif())
    netif_set_default(hosts_.empty() ? nullptr : hosts_.front()->nif());
}

host* engine::host_owning_ip4(uint32_t addr_be) const {
  for (host* h : hosts_) {
    if (h->owns_ip4(addr_be)) return h;
  }
  return nullptr;
}

host* engine::host_owning_ip6(const uint32_t addr[4]) const {
  for (host* h : hosts_) {
    if (h->owns_ip6(addr)) return h;
  }
  return nullptr;
}

sim_link& engine::link(const std::string& name) {
  auto it = links_.find(name);
  if (it == links_.end())
    it = links_.emplace(name, std::make_unique<sim_link>(name, static_cast<int>(links_.size()) + 1))
             .first;
  return *it->second;
}

void engine::pump() {
  host* saved = current_;
  // Bounded: a pathological exchange (two stacks answering each other forever) must not hold the
  // lock forever. What is left is delivered by the engine thread (or the next poll), lock released
  // in between, so every other thread still makes progress and deadlines still fire.
  size_t budget = kPumpBudget;
  backlog_ = false;
  while (true) {
    size_t moved = 0;
    const int64_t due = mode_ == mode::sim ? virtual_now_ns_ : std::numeric_limits<int64_t>::max();
    for (auto& [name, l] : links_) moved += l->deliver_due(due);
    for (host* h : hosts_) {
      if (h->nif()->loop_first != nullptr) {
        enter(h);
        netif_poll(h->nif());
        ++moved;
      }
    }
    if (moved == 0) break;
    if (moved >= budget) {
      backlog_ = true;
      if (mode_ == mode::thread) kick(engine_wake_);
      break;
    }
    budget -= moved;
  }
  // What the hosts sent on Ethernet links leaves now: one system call per link on the batching
  // drivers.
  for (ethernet_link* l : ethernet_) l->flush();
  enter(saved);
  if (dirty_) {
    dirty_ = false;
    epoch_.fetch_add(1, std::memory_order_release);
    if (sleepers_ > 0) waiters_.notify_all();
    if (poller_active_) kick(poller_wake_);  // the waiter polling the links re-checks
    for (int fd : wake_fds_) {
      uint64_t one = 1;
      ssize_t n = ::write(fd, &one, sizeof one);
      (void)n;  // a full eventfd is already signalled
    }
  }
  wake_engine_thread_if_needed();
}

void engine::wake_engine_thread_if_needed() {
  // In poll mode the waiter polling the links runs timers too: the same rule applies to it.
  wake_channel& c = mode_ == mode::thread ? engine_wake_ : poller_wake_;
  if (!c.sleeping) return;  // whoever sleeps next computes its timeout then
  u32_t ms = sys_timeouts_sleeptime();
  if (ms == SYS_TIMEOUTS_SLEEPTIME_INFINITE) return;
  double due = now() + ms / 1000.0;
  if (due + 0.0005 < c.wakes_at) kick(c);
}

void engine::kick(wake_channel& c) {
  if (!c.sleeping || c.pending) return;
  c.pending = true;
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(c.fd, &one, sizeof one);  // full: already signalled
}

void engine::poll_links(std::unique_lock<std::mutex>& lk, double until, wake_channel& c,
                        bool with_links, std::vector<pollfd>& fds,
                        std::vector<ethernet_link*>& polled) {
  fds.clear();
  polled.clear();
  fds.push_back({c.fd, POLLIN, 0});
  if (with_links) {
    for (ethernet_link* l : ethernet_) {
      fds.push_back({l->fd(), l->poll_events(), 0});
      polled.push_back(l);
    }
  }
  const uint64_t version = ethernet_version_;
  c.wakes_at = until;
  c.sleeping = true;
  c.with_links = with_links;
  lk.unlock();
  timespec ts{};
  timespec* timeout = nullptr;
  if (!std::isinf(until)) {
    const double left = std::max(0.0, until - now());
    ts.tv_sec = static_cast<time_t>(left);
    ts.tv_nsec = static_cast<long>((left - static_cast<double>(ts.tv_sec)) * 1e9);
    timeout = &ts;
  }
  const int n = ::ppoll(fds.data(), fds.size(), timeout, nullptr);
  lk.lock();
  c.sleeping = false;
  c.wakes_at = kForever;
  if (n <= 0) return;  // timeout (timers run next) or EINTR
  if (fds[0].revents != 0) {
    uint64_t count;
    [[maybe_unused]] ssize_t r = ::read(c.fd, &count, sizeof count);
  }
  c.pending = false;
  if (!with_links) return;
  if (version != ethernet_version_) {
    receive_links();  // links came or went meanwhile: ask every link now attached
  } else {
    for (size_t i = 0; i < polled.size(); ++i) {
      if (fds[i + 1].revents == 0) continue;
      polled[i]->count_wakeup();
      polled[i]->receive(kReceiveBudget);
      // An error event may be the only sign that the interface went down or away.
      if ((fds[i + 1].revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) polled[i]->check();
    }
  }
  pump();
}

size_t engine::receive_links() {
  size_t frames = 0;
  for (size_t i = 0; i < ethernet_.size(); ++i) frames += ethernet_[i]->receive(kReceiveBudget);
  return frames;
}

void engine::add_ethernet(ethernet_link* l) {
  ethernet_.push_back(l);
  ++ethernet_version_;
  kick(engine_wake_);  // whoever polls the links rebuilds its set
  kick(poller_wake_);
}

void engine::remove_ethernet(ethernet_link* l) {
  std::erase(ethernet_, l);
  ++ethernet_version_;
  kick(engine_wake_);
  kick(poller_wake_);
}

void engine::link_failed() {
  failed_links_ = true;
  kick(engine_wake_);  // the engine thread (or, in poll mode, the polling waiter) reaps it
  kick(poller_wake_);
}

void engine::reap_failed_links() {
  if (!failed_links_) return;
  failed_links_ = false;
  std::vector<host*> down;
  for (ethernet_link* l : ethernet_) {
    // A deleted interface is first brought down: the OS may report only that, once.
    if (l->down() && !l->failed()) l->check();
    if (l->down() && !l->failed()) failed_links_ = true;  // ask again next time
    if (l->failed() && l->attached() != nullptr) down.push_back(l->attached());
  }
  for (host* h : down) h->crash();  // detaches the link
}

std::shared_ptr<engine::dns_query> engine::dns_lookup(host* h, const ip_addr_t& server,
                                                      const std::string& name, bool ipv6) {
  auto q = std::make_shared<dns_query>();
  // lwIP has one DNS client with one server list for the whole stack: each lookup names its own.
  dns_setserver(0, &server);
  const uintptr_t id = next_dns_id_++;
  host* saved = current_;
  enter(h);
  ip_addr_t addr{};
  err_t e = dns_gethostbyname_addrtype(name.c_str(), &addr, &engine::dns_found,
                                       reinterpret_cast<void*>(id),
                                       ipv6 ? LWIP_DNS_ADDRTYPE_IPV6 : LWIP_DNS_ADDRTYPE_IPV4);
  enter(saved);
  if (e == ERR_OK) {  // cached (or numeric)
    q->done = true;
    q->found = true;
    q->addr = addr;
  } else if (e == ERR_INPROGRESS) {
    dns_pending_[id] = q;
  } else {
    q->done = true;  // no server, name too long, table full: not found
  }
  pump();
  return q;
}

void engine::dns_found(const char*, const ip_addr_t* addr, void* arg) {
  engine* e = g_engine;
  if (e == nullptr) return;
  auto it = e->dns_pending_.find(reinterpret_cast<uintptr_t>(arg));
  if (it == e->dns_pending_.end()) return;
  dns_query& q = *it->second;
  q.done = true;
  if (addr != nullptr) {
    q.found = true;
    q.addr = *addr;
  }
  e->dns_pending_.erase(it);
  e->changed();
}

void engine::run_timers() {
  reap_failed_links();
  enter(nullptr);
  // lwIP counts only fast retransmissions (mib2.tcpretranssegs); a retransmission timeout shows as
  // a pcb's nrtx going up inside tcp_slowtmr. Count those too.
  rto_before_.clear();
  for (tcp_pcb* p = tcp_active_pcbs; p != nullptr; p = p->next) rto_before_.push_back({p, p->nrtx});
  sys_check_timeouts();
  if (!rto_before_.empty()) {
    std::sort(rto_before_.begin(), rto_before_.end());
    for (tcp_pcb* p = tcp_active_pcbs; p != nullptr; p = p->next) {
      auto it = std::lower_bound(rto_before_.begin(), rto_before_.end(),
                                 std::pair<const void*, uint8_t>(p, 0));
      if (it != rto_before_.end() && it->first == p && p->nrtx > it->second) {
        rto_retransmissions_ += p->nrtx - it->second;
      }
    }
  }
  chunks_.sweep_orphans();
  pump();
}

void engine::run_thread() {
  std::unique_lock lk(mu_);
  std::vector<pollfd> fds;
  std::vector<ethernet_link*> polled;
  while (!stop_) {
    run_timers();
    if (backlog_) {  // pump() stopped at its budget: go on, letting other threads in between
      lk.unlock();
      std::this_thread::yield();
      lk.lock();
      continue;
    }
    // Sleep until lwIP's next timer, a frame on a link, or a kick (see the top of engine.hpp).
    // The links are left to a waiting thread that polls them, and for a moment after it left.
    u32_t ms = sys_timeouts_sleeptime();
    double until = ms == SYS_TIMEOUTS_SLEEPTIME_INFINITE ? kForever : now() + ms / 1000.0;
    const bool with_links = !poller_active_ && now() >= links_free_at_;
    if (!with_links && !poller_active_) until = std::min(until, links_free_at_);
    if (stop_) break;
    poll_links(lk, until, engine_wake_, with_links, fds, polled);
  }
}

int engine::poll_once() {
  std::unique_lock lk(mu_);
  size_t before = epoch_.load();
  if (receive_links() > 0) pump();
  run_timers();
  return static_cast<int>(epoch_.load() - before);
}

void engine::spin_until_changed(uint64_t seen) {
  // Who we wait for is usually the thread that waited last (ping-pong between two threads). If it
  // ran on our CPU it cannot make progress while we spin: yield at once. Otherwise spin on the
  // epoch with pauses, yielding only after a while (a yield is a system call: it would delay
  // noticing a change made on the other CPU).
  const int cpu = sched_getcpu();
  const bool shared_cpu = last_waiter_cpu_.exchange(cpu, std::memory_order_relaxed) == cpu;
  const double give_up = now() + kSpinSeconds;
  for (int i = 0;; ++i) {
    if (!shared_cpu) {
      for (int k = 0; k < 16; ++k) {
        if (epoch_.load(std::memory_order_acquire) != seen) return;
        cpu_relax();
      }
    }
    if (shared_cpu || i >= 64) {
      std::this_thread::yield();
      if (epoch_.load(std::memory_order_acquire) != seen) return;
    }
    if ((i & 7) == 7 && now() > give_up) return;
  }
}

int engine::wait(std::unique_lock<std::mutex>& lk, const wait_spec& w,
                 const std::function<bool()>& pred, const char* what) {
  if (mode_ == mode::sim) {
    if (scheduler_ != nullptr) return scheduler_->wait(lk, w, pred, what);
    // The world is gone: nothing will ever move its clock again.
    if (pred()) return 0;
    return w.how == wait_spec::mode::nonblock ? EAGAIN : ENETDOWN;
  }
  while (true) {
    if (pred()) return 0;
    if (w.how == wait_spec::mode::nonblock) return EAGAIN;
    double t = now();
    if (w.how == wait_spec::mode::until && t >= w.deadline) return wait_timed_out;
    // Spin a little on the epoch without the lock: the thread that will satisfy us is often
    // running right now on the other CPU, and sleeping would cost two context switches.
    uint64_t seen = epoch_.load(std::memory_order_acquire);
    lk.unlock();
    spin_until_changed(seen);
    lk.lock();
    if (epoch_.load(std::memory_order_acquire) != seen) continue;
    double until = w.how == wait_spec::mode::until ? w.deadline : kForever;
    if (mode_ == mode::poll) {
      // No engine thread: whoever waits keeps lwIP's timers running.
      u32_t ms = sys_timeouts_sleeptime();
      if (ms != SYS_TIMEOUTS_SLEEPTIME_INFINITE) until = std::min(until, now() + ms / 1000.0);
    }
    if (!ethernet_.empty() && !poller_active_) {
      // One waiter at a time receives from the links itself (frames wake it, and so does any
      // change a pump makes): what it waits for is processed in its own thread, on its own CPU,
      // instead of being handed over by the engine thread (measured: 3.5 -> 9 Gbit/s into lwIP
      // when the received data stopped crossing CPUs).
      poll_as_waiter(lk, until);
      if (mode_ == mode::poll) run_timers();
      continue;
    }
    ++sleepers_;
    if (std::isinf(until)) {
      waiters_.wait(lk);
    } else {
      waiters_.wait_until(lk, steady_at(until));
    }
    --sleepers_;
    if (mode_ == mode::poll) run_timers();
  }
}

void engine::poll_as_waiter(std::unique_lock<std::mutex>& lk, double until) {
  std::vector<pollfd> fds;
  std::vector<ethernet_link*> polled;
  // The engine thread leaves the links to us from its next wake-up on (a frame may still wake it
  // once, if it sleeps polling them now).
  poller_active_ = true;
  poll_links(lk, until, poller_wake_, true, fds, polled);
  poller_active_ = false;
  // The links go back to the engine thread shortly, unless a waiter comes for them first.
  links_free_at_ = now() + kLinkHandback;
  if (mode_ == mode::thread && engine_wake_.sleeping && !engine_wake_.with_links &&
      engine_wake_.wakes_at > links_free_at_ + kLinkHandback) {
    kick(engine_wake_);
  }
  // If another waiter sleeps on the condition variable, it may take over polling.
  if (sleepers_ > 0) waiters_.notify_all();
}

void engine::add_wake_fd(int fd) { wake_fds_.push_back(fd); }
void engine::remove_wake_fd(int fd) { std::erase(wake_fds_, fd); }

lwip::counters engine::read_counters() const {
  lwip::counters c;
  for (host* h : hosts_) c.links.push_back(h->counters());
  c.ip_in = lwip_stats.ip.recv + lwip_stats.ip6.recv;
  c.ip_out = lwip_stats.ip.xmit + lwip_stats.ip6.xmit;
  c.ip_drops = lwip_stats.ip.drop + lwip_stats.ip6.drop;
  c.ip_checksum_errors = lwip_stats.ip.chkerr;
  c.tcp_in = lwip_stats.tcp.recv;
  c.tcp_out = lwip_stats.tcp.xmit;
  c.tcp_drops = lwip_stats.tcp.drop;
  c.tcp_checksum_errors = lwip_stats.tcp.chkerr;
  c.tcp_retransmissions = lwip_stats.mib2.tcpretranssegs + rto_retransmissions_;
  c.udp_in = lwip_stats.udp.recv;
  c.udp_out = lwip_stats.udp.xmit;
  c.udp_drops = lwip_stats.udp.drop;
  c.udp_checksum_errors = lwip_stats.udp.chkerr;
  c.memory_failures = memory_failures_ + lwip_stats.tcp.memerr + lwip_stats.udp.memerr +
                      lwip_stats.ip.memerr + lwip_stats.ip6.memerr + lwip_stats.mem.err;
  c.pools.push_back({"heap", lwip_stats.mem.used, lwip_stats.mem.max, lwip_stats.mem.err});
  for (int i = 0; i < MEMP_MAX; ++i) {
    const stats_mem* s = lwip_stats.memp[i];
    if (s == nullptr) continue;
    c.memory_failures += s->err;
    c.pools.push_back({kPoolNames[i], s->used, s->max, s->err});
  }
  return c;
}

std::string engine::leak_report() {
  std::unique_lock lk(mu_);
  std::string report;
  double give_up = now() + 2.0;
  while (true) {
    // TIME_WAIT would hold pcbs for 2 MSL: abort them (the test is over).
    while (tcp_tw_pcbs != nullptr) tcp_abort(tcp_tw_pcbs);
    // Closing connections wait for their peers' answers: with no engine thread, fetch them.
    if (mode_ == mode::poll) receive_links();
    pump();
    // Datagrams whose fragments never all came (dropped ones, reassembly_guard.hpp) would wait for
    // their reassembly timers (IPv6: 60 s): expire them now.
    for (int i = 0; i <= std::max(IP_REASS_MAXAGE, IPV6_REASS_MAXAGE); ++i) {
      ip_reass_tmr();
      ip6_reass_tmr();
    }
    report.clear();
    std::vector<int64_t> now_used = snapshot();
    // The TCP timer stays registered up to 250 ms after the last connection: one timer entry and
    // its heap block may remain.
    const bool tcp_timer = now_used[MEMP_SYS_TIMEOUT] == baseline_[MEMP_SYS_TIMEOUT] + 1;
    for (int i = 0; i < MEMP_MAX; ++i) {
      int64_t allowed = baseline_[i] + (i == MEMP_SYS_TIMEOUT ? 1 : 0);
      if (now_used[i] > allowed) {
        report += std::string(kPoolNames[i]) + ": " + std::to_string(now_used[i]) + " in use, " +
                  std::to_string(baseline_[i]) + " at start; ";
      }
    }
    const int64_t heap_allowed =
        baseline_[MEMP_MAX] +
        (tcp_timer ? static_cast<int64_t>(LWIP_MEM_ALIGN_SIZE(sizeof(sys_timeo))) : 0);
    if (now_used[MEMP_MAX] > heap_allowed) {
      report += "heap: " + std::to_string(now_used[MEMP_MAX]) + " bytes in use, " +
                std::to_string(baseline_[MEMP_MAX]) + " at start; ";
    }
    if (chunks_.held() > 0) {
      report += "send chunks: " + std::to_string(chunks_.held()) + " still referenced; ";
    }
    if (report.empty() || now() > give_up) break;
    // Connections still closing (FIN/ACK exchanges, lingering sends) finish within milliseconds.
    lk.unlock();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    lk.lock();
    run_timers();
  }
  return report;
}

}  // namespace anysock::lwip_detail

// ---- what lwIP calls (engine lock held)
// ------------------------------------------------------------

using anysock::lwip_detail::g_engine;

namespace {

// The strong host model: a host takes only what is addressed to it on its own link. lwIP would take
// a packet for any netif's address whichever netif it came in on, so with several hosts in one
// process host A would answer pings for host B's address sent into A's link (and send RSTs for B's
// ports). Multicast is already matched against the netif it came in on (lwIP), and the loopback
// addresses are the host's own (each host loops on its own netif).
bool ip4_for_netif(const pbuf* p, const netif* inp) {
  ip4_addr_t dest;
  if (p->tot_len < IP_HLEN || pbuf_copy_partial(p, &dest, sizeof dest, 16) != sizeof dest) {
    return true;  // lwIP drops it
  }
  return ip4_addr_ismulticast(&dest) || ip4_addr_isloopback(&dest) ||
         ip4_addr_cmp(&dest, netif_ip4_addr(inp)) || ip4_addr_isbroadcast(&dest, inp);
}

bool ip6_for_netif(const pbuf* p, const netif* inp) {
  ip6_addr_t dest{};
  if (p->tot_len < IP6_HLEN || pbuf_copy_partial(p, dest.addr, sizeof dest.addr, 24) != 16) {
    return true;  // lwIP drops it
  }
  return ip6_addr_ismulticast(&dest) || ip6_addr_isloopback(&dest) ||
         netif_get_ip6_addr_match(const_cast<netif*>(inp), &dest) >= 0;
}

}  // namespace

extern "C" {

__attribute__((visibility("hidden"))) u32_t sys_now(void) {
  if (g_engine != nullptr) return static_cast<u32_t>(g_engine->now_ns() / 1000000);
  return static_cast<u32_t>(
      static_cast<uint64_t>(anysock::lwip_detail::monotonic_seconds() * 1000.0));
}

__attribute__((visibility("hidden"))) unsigned int anysock_lwip_tcp_isn(
    const struct ip_addr* local_ip, unsigned short local_port, const struct ip_addr* remote_ip,
    unsigned short remote_port) {
  // RFC 6528: ISN = M + F(4-tuple, secret key), M a 4-microsecond clock, F a keyed hash.
  unsigned char buf[2 * 16 + 4];
  std::memset(buf, 0, sizeof buf);
  std::memcpy(buf, local_ip, std::min<size_t>(16, sizeof *local_ip));
  std::memcpy(buf + 16, remote_ip, std::min<size_t>(16, sizeof *remote_ip));
  std::memcpy(buf + 32, &local_port, 2);
  std::memcpy(buf + 34, &remote_port, 2);
  uint64_t f = anysock::lwip_detail::siphash24(anysock::lwip_detail::g_isn_key, buf, sizeof buf);
  const int64_t ns = g_engine != nullptr
                         ? g_engine->now_ns()
                         : static_cast<int64_t>(anysock::lwip_detail::monotonic_seconds() * 1e9);
  auto m = static_cast<uint32_t>(ns / 4000);
  return static_cast<unsigned int>(m + static_cast<uint32_t>(f));
}

__attribute__((visibility("hidden"))) struct netif* anysock_lwip_ip4_route_src(
    const struct ip4_addr* src, const struct ip4_addr* dest) {
  if (g_engine == nullptr) return nullptr;
  // Replies generated while a packet is being received leave through the host that received it.
  if (ip_current_input_netif() != nullptr) return ip_current_input_netif();
  if (src != nullptr && !ip4_addr_isany(src) && !ip4_addr_isloopback(src)) {
    if (auto* h = g_engine->host_owning_ip4(ip4_addr_get_u32(src))) return h->nif();
  }
  if (auto* h = g_engine->current_host()) return h->nif();
  (void)dest;
  return nullptr;
}

__attribute__((visibility("hidden"))) struct netif* anysock_lwip_ip6_route(
    const struct ip6_addr* src, const struct ip6_addr* dest) {
  if (g_engine == nullptr) return nullptr;
  if (ip_current_input_netif() != nullptr) return ip_current_input_netif();
  if (src != nullptr && !ip6_addr_isany(src) && !ip6_addr_isloopback(src)) {
    if (auto* h = g_engine->host_owning_ip6(src->addr)) return h->nif();
  }
  if (auto* h = g_engine->current_host()) return h->nif();
  (void)dest;
  return nullptr;
}

__attribute__((visibility("hidden"))) const struct ip6_addr* anysock_lwip_nd6_get_gw(
    struct netif* netif, const struct ip6_addr* dest) {
  // Only Ethernet netifs resolve next hops; every netif's state is its host.
  const auto* h = static_cast<const anysock::lwip_detail::host*>(netif->state);
  return h != nullptr && h->on_link6(*dest) ? dest : nullptr;
}

// LWIP_HOOK_IP4_INPUT / LWIP_HOOK_IP6_INPUT: packets for another host's address (the strong host
// model, above) and IPv6 fragments lwIP cannot reassemble (reassembly_guard.hpp), dropped and
// counted (ip_drops); ICMP port unreachable for our connected UDP sockets.
// Defined here, not in icmp_errors.cpp: from a static libanysock the linker would take sys_arch.c's
// weak default and never pull in an object nothing else refers to.
__attribute__((visibility("hidden"))) int anysock_lwip_ip4_input(struct pbuf* p,
                                                                 struct netif* inp) {
  if (!ip4_for_netif(p, inp)) {
    IP_STATS_INC(ip.drop);
    pbuf_free(p);
    return 1;  // consumed: another host's address (the strong host model)
  }
  anysock::lwip_detail::read_ip4_input(p, inp);
  return 0;  // lwIP goes on with the packet
}

__attribute__((visibility("hidden"))) int anysock_lwip_ip6_input(struct pbuf* p,
                                                                 struct netif* inp) {
  if (anysock::lwip_detail::ends_past_lwip_reassembly(p)) {
    IP6_STATS_INC(ip6.drop);
    pbuf_free(p);
    return 1;  // consumed: lwIP's reassembly would overflow its 16-bit length (or assert)
  }
  if (!ip6_for_netif(p, inp)) {
    IP6_STATS_INC(ip6.drop);
    pbuf_free(p);
    return 1;  // consumed: another host's address (the strong host model)
  }
  anysock::lwip_detail::read_ip6_input(p, inp);
  return 0;
}

}  // extern "C"
