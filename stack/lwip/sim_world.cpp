// anysock::sim: worlds, their hosts and the scheduler that runs spawned code in virtual time.
//
// Spawned functions run as fibers (platform/fiber.hpp) on the thread that calls run(): one at a
// time, switching only at switch points of our API (the engine calls scheduler::wait and
// scheduler::switch_point), so lwIP, the links and the scheduler's own state are touched by one
// context at a time. The context that gives up the CPU decides who runs next (decide()): a
// runnable task chosen with the world's seeded generator or, when none can run, the virtual clock
// jumps to the next event (packet due, lwIP timer, deadline) and decide() looks again. The caller
// of run() gets control back when the run ends (all done, time up, an exception, a deadlock).
//
// Per-thread state that code sees is per task: the current task and world, the backend_scope
// (anysock::default_backend()), and the C++ runtime's exception state (fiber.hpp).
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <limits>
#include <stdexcept>
#include <thread>

#include "../../drivers/sim/sim_link.hpp"
#include "../../platform/fiber.hpp"
#include "anysock/backend.hpp"
#include "anysock/error.hpp"
#include "anysock/sim.hpp"
#include "engine.hpp"
#include "host.hpp"
#include "pcap_file.hpp"

namespace anysock::detail {
// api/src/backend.cpp: swaps this thread's backend_scope value (a fiber switch keeps one per task).
backend* exchange_scoped_backend(backend* b) noexcept;
}  // namespace anysock::detail

namespace anysock::sim {

using lwip_detail::engine;
using lwip_detail::sim_link;
using lwip_host = lwip_detail::host;

namespace {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
// A thread polling with non-blocking calls gets to run again after this much virtual time at the
// latest, so a poll loop advances the clock instead of spinning at one instant.
constexpr int64_t kPollQuantumNs = 1000000;
// Each task's stack: mapped lazily, so only what it touches costs memory.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr size_t kStackBytes = 8 << 20;
#else
constexpr size_t kStackBytes = 2 << 20;
#endif

uint64_t mix(uint64_t seed, uint64_t stream) {
  uint64_t z = seed + (stream + 1) * 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

int64_t to_ns(double seconds) {
  if (seconds >= 9.2e9) return kNever;
  return static_cast<int64_t>(std::llround(seconds * 1e9));
}

void check_config(const link_config& c) {
  auto probability = [](double p, const char* name) {
    if (!(p >= 0 && p <= 1)) {
      throw std::invalid_argument(std::string("anysock::sim::link_config: ") + name +
                                  " must be a probability in [0, 1]");
    }
  };
  probability(c.loss, "loss");
  probability(c.reorder, "reorder");
  probability(c.duplicate, "duplicate");
  probability(c.corrupt, "corrupt");
  auto time = [](double t, const char* name) {
    if (!(t >= 0 && t < 1e6)) {
      throw std::invalid_argument(std::string("anysock::sim::link_config: ") + name +
                                  " must be a time in seconds >= 0");
    }
  };
  time(c.delay, "delay");
  time(c.jitter, "jitter");
  if (c.mtu < 576 || c.mtu > 65535) {
    throw std::invalid_argument("anysock::sim::link_config: mtu must be in [576, 65535]");
  }
}

// An anysock error rethrown by run(): the same type and errno, what() naming the host.
template <class E>
class spawned final : public E, public host_failure {
 public:
  spawned(const E& original, const std::string& host)
      : E(original), host_failure(host), text_("host '" + host + "': " + original.what()) {}
  const char* what() const noexcept override { return text_.c_str(); }

 private:
  std::string text_;
};

[[noreturn]] void rethrow_naming(const std::exception_ptr& e, const std::string& host) {
  try {
    std::rethrow_exception(e);
  } catch (const anysock::timeout& x) {
    throw spawned<anysock::timeout>(x, host);
  } catch (const anysock::gaierror& x) {
    throw spawned<anysock::gaierror>(x, host);
  } catch (const anysock::herror& x) {
    throw spawned<anysock::herror>(x, host);
  } catch (const anysock::error& x) {
    throw spawned<anysock::error>(x, host);
  } catch (const std::exception& x) {
    std::throw_with_nested(spawn_error(host, "host '" + host + "': " + x.what()));
  } catch (...) {
    std::throw_with_nested(spawn_error(host, "host '" + host + "': an exception of unknown type"));
  }
}

}  // namespace

struct task {
  enum class state { ready, blocked, polling, done };
  int id = 0;
  host_state* h = nullptr;
  std::shared_ptr<lwip_host> stack;  // the host's stack when spawned (a restart makes a new one)
  std::function<void()> fn;
  std::unique_ptr<platform::fiber> fib;
  bool started = false;
  backend* scope = nullptr;  // its backend_scope value while switched out
  state st = state::ready;
  // While blocked or polling:
  const std::function<bool()>* pred = nullptr;
  int64_t deadline = kNever;
  const char* what = "";
  uint64_t poll_epoch = 0;
  int64_t poll_time = 0;
};

struct host_state {
  world_state* w = nullptr;
  std::string name;
  int number = 0;
  std::string ip4, ip6;
  std::shared_ptr<lwip_host> stack;
};

namespace {
thread_local task* t_task = nullptr;
thread_local world_state* t_world = nullptr;
}  // namespace

struct world_state final : lwip_detail::scheduler {
  enum class outcome { none, done, time_up, error, deadlock };

  uint64_t seed = 0;
  std::shared_ptr<engine> eng;
  sim_link* link = nullptr;
  std::vector<std::unique_ptr<host>> hosts;
  std::vector<host*> host_list;
  std::vector<std::unique_ptr<task>> tasks;
  uint64_t rng = 0;
  task* running = nullptr;  // the task running; nullptr: the caller of run()
  backend* caller_scope = nullptr;
  std::thread::id carrier;  // the thread that runs the world's fibers
  bool in_run = false;
  bool stopping = false;
  bool stopped = false;
  int64_t run_until = kNever;
  outcome result = outcome::none;
  std::string report;
  std::exception_ptr error;
  std::string error_host;
  std::unique_ptr<lwip_detail::pcap_file> capture;

  // ---- scheduling (engine lock held) ------------------------------------------------------------

  bool host_down(const task* t) const { return t->stack->down(); }

  size_t pick(size_t n) {
    if (n == 1) return 0;
    rng = mix(rng, 0);
    return static_cast<size_t>(rng % n);
  }

  // Who runs next, moving the clock as needed; nullptr (with `result` set) ends the run.
  task* decide() {
    std::vector<task*> runnable;
    while (true) {
      if (error) {
        result = outcome::error;
        return nullptr;
      }
      runnable.clear();
      bool live = false;
      bool pollers = false;
      int64_t next_deadline = kNever;
      const int64_t now = eng->now_ns();
      for (auto& tp : tasks) {
        task* t = tp.get();
        switch (t->st) {
          case task::state::done:
            continue;
          case task::state::ready:
            runnable.push_back(t);
            break;
          case task::state::blocked:
            if (host_down(t) || t->deadline <= now || (*t->pred)()) {
              runnable.push_back(t);
            } else {
              next_deadline = std::min(next_deadline, t->deadline);
            }
            break;
          case task::state::polling:
            if (host_down(t) || eng->epoch() != t->poll_epoch || now > t->poll_time) {
              runnable.push_back(t);
            } else {
              pollers = true;
            }
            break;
        }
        live = true;
      }
      if (!runnable.empty()) return runnable[pick(runnable.size())];
      if (!live && run_until == kNever) {
        result = outcome::done;
        return nullptr;
      }
      // Nothing can run now: the clock jumps to the next event.
      int64_t next = std::min(eng->next_delivery_ns(), next_deadline);
      if (pollers) next = std::min(next, now + kPollQuantumNs);
      const int64_t timer = eng->next_timer_ns();
      if (next == kNever && !eng->tcp_work_pending()) {
        // Only lwIP's periodic timers are left: nothing will ever wake a blocked thread.
        if (run_until == kNever) {
          result = outcome::deadlock;
          report = deadlock_report();
          return nullptr;
        }
        next = std::min(timer, run_until == kNever ? kNever : run_until + 1);
      } else {
        next = std::min(next, timer);
      }
      if (next > run_until) {
        eng->advance_to(run_until);
        result = outcome::time_up;
        return nullptr;
      }
      if (next == kNever) {  // cannot happen (run_until bounds it); never spin
        result = outcome::deadlock;
        report = deadlock_report();
        return nullptr;
      }
      eng->advance_to(next);
    }
  }

  std::string deadlock_report() const {
    std::string r = "anysock::sim: deadlock at " + std::to_string(eng->now()) +
                    " s: no thread can run and nothing can wake one:";
    for (const auto& tp : tasks) {
      if (tp->st == task::state::done) continue;
      r += "\n  host '" + tp->h->name + "' thread " + std::to_string(tp->id) + ": blocked in " +
           tp->what + " (no deadline)";
    }
    return r;
  }

  // Hands the per-task state (backend scope, current task and world) from the running context
  // (`from`: a task, or nullptr for the caller of run()) to `to`; returns the fiber to switch to.
  platform::fiber* become(task* from, task* to) {
    backend* mine = detail::exchange_scoped_backend(to != nullptr ? to->scope : caller_scope);
    (from != nullptr ? from->scope : caller_scope) = mine;
    t_task = to;
    t_world = to != nullptr ? this : nullptr;
    running = to;
    if (to != nullptr) to->started = true;
    return to != nullptr ? to->fib.get() : nullptr;
  }

  // Moves the CPU from `from` to `to`; returns when something switches back. Lock held on entry
  // and on return.
  void resume(std::unique_lock<std::mutex>& lk, task* from, task* to) {
    platform::fiber* target = become(from, to);
    lk.unlock();
    platform::fiber::switch_to(target);
    lk.lock();
  }

  // Gives up the CPU (self: the calling task, nullptr for the caller of run()) to whoever decide()
  // picks, and returns when self runs again (at once if decide() picks self).
  void hand_off(std::unique_lock<std::mutex>& lk, task* self) {
    task* next = decide();
    if (next == self) return;
    resume(lk, self, next);
  }

  // lwip_detail::scheduler
  int wait(std::unique_lock<std::mutex>& lk, const wait_spec& w, const std::function<bool()>& pred,
           const char* what) override {
    task* t = t_task;
    if (t == nullptr || t_world != this || stopping) {
      // Not spawned code (or the world is stopping): nothing moves the clock for this thread.
      if (pred()) return 0;
      if (w.how == wait_spec::mode::nonblock) return EAGAIN;
      return stopping ? ECANCELED : EWOULDBLOCK;
    }
    lwip_host* entered = eng->current_host();
    while (true) {
      if (host_down(t)) return ENETDOWN;
      if (pred()) return 0;
      if (w.how == wait_spec::mode::nonblock) {
        // A switch point: others run first, and this thread runs again once something changed
        // or the clock moved.
        t->st = task::state::polling;
        t->poll_epoch = eng->epoch();
        t->poll_time = eng->now_ns();
        hand_off(lk, t);
        t->st = task::state::ready;
        eng->enter(entered);
        return stopping ? ECANCELED : EAGAIN;
      }
      const int64_t deadline = w.how == wait_spec::mode::until ? to_ns(w.deadline) : kNever;
      if (eng->now_ns() >= deadline) return wait_timed_out;
      t->st = task::state::blocked;
      t->pred = &pred;
      t->deadline = deadline;
      t->what = what;
      hand_off(lk, t);
      t->st = task::state::ready;
      t->pred = nullptr;
      eng->enter(entered);
      if (stopping) return pred() ? 0 : ECANCELED;
    }
  }

  void switch_point(std::unique_lock<std::mutex>& lk) override {
    task* t = t_task;
    if (t == nullptr || t_world != this || stopping) return;
    lwip_host* entered = eng->current_host();
    hand_off(lk, t);
    eng->enter(entered);
  }

  // ---- tasks ------------------------------------------------------------------------------------

  // The body of a task's fiber.
  void task_main(task* t) {
    std::function<void()> fn = std::move(t->fn);
    if (!stopping) {
      try {
        fn();
      } catch (...) {
        std::lock_guard g(eng->mutex());
        if (!stopping && !error) {
          error = std::current_exception();
          error_host = t->h->name;
        }
      }
    }
    fn = nullptr;  // its captures (sockets) are released before the task ends
    std::unique_lock lk(eng->mutex());
    t->st = task::state::done;
    platform::fiber* target = become(t, stopping ? nullptr : decide());
    lk.unlock();
    platform::fiber::finish_and_switch_to(target);
  }

  void spawn(host_state* h, std::function<void()> fn) {
    if (!fn) throw std::invalid_argument("anysock::sim::host::spawn: empty function");
    std::unique_lock lk(eng->mutex());
    if (stopped || stopping) throw std::logic_error("anysock::sim: the world has stopped");
    if (h->stack->down()) {
      throw anysock::error(ENETDOWN, "(spawn on crashed host '" + h->name + "': restart it first)");
    }
    auto t = std::make_unique<task>();
    t->id = static_cast<int>(tasks.size()) + 1;
    t->h = h;
    t->stack = h->stack;
    t->scope = t->stack.get();
    t->fn = std::move(fn);
    task* raw = t.get();
    t->fib = std::make_unique<platform::fiber>([this, raw] { task_main(raw); }, kStackBytes);
    tasks.push_back(std::move(t));
  }

  // Ends every task: each resumes, its calls fail with ECANCELED, and it runs to its end. Called by
  // the caller of run() or the destructor (never from a task). Lock held through lk.
  void stop(std::unique_lock<std::mutex>& lk) {
    stopping = true;
    stopped = true;
    for (auto& tp : tasks) {
      task* t = tp.get();
      if (t->st == task::state::done) continue;
      if (!t->started) {
        t->st = task::state::done;
        std::function<void()> fn = std::move(t->fn);
        lk.unlock();
        fn = nullptr;
        lk.lock();
        continue;
      }
      resume(lk, nullptr, t);  // back here when it has finished
    }
    free_finished();
  }

  // Frees the stacks of finished tasks (from the caller's context: never the running one).
  void free_finished() {
    for (auto& t : tasks) {
      if (t->st == task::state::done) t->fib.reset();
    }
  }

  void run(int64_t until) {
    if (t_world == this)
      throw std::logic_error("anysock::sim::world::run: called from spawned code");
    std::unique_lock lk(eng->mutex());
    if (stopped) throw std::logic_error("anysock::sim::world::run: the world has stopped");
    if (in_run) throw std::logic_error("anysock::sim::world::run: already running");
    in_run = true;
    run_until = until;
    result = outcome::none;
    report.clear();
    hand_off(lk, nullptr);
    in_run = false;
    run_until = kNever;
    free_finished();
    switch (result) {
      case outcome::done:
      case outcome::time_up:
      case outcome::none:
        return;
      case outcome::error: {
        std::exception_ptr e = error;
        std::string who = error_host;
        stop(lk);
        lk.unlock();
        rethrow_naming(e, who);
      }
      case outcome::deadlock: {
        std::string r = report;
        stop(lk);
        throw deadlock(r);
      }
    }
  }
};

// ---- host -------------------------------------------------------------------------------------

host::host(std::unique_ptr<host_state> s) : s_(std::move(s)) {}
host::~host() = default;

const std::string& host::name() const { return s_->name; }
std::string host::ip() const { return s_->ip4; }
std::string host::ip6() const { return s_->ip6; }
void host::spawn(std::function<void()> fn) { s_->w->spawn(s_.get(), std::move(fn)); }

bool host::crashed() const {
  std::lock_guard lk(s_->w->eng->mutex());
  return s_->stack->down();
}

anysock::backend& host::stack() {
  std::lock_guard lk(s_->w->eng->mutex());
  return *s_->stack;
}

void host::crash() {
  std::lock_guard lk(s_->w->eng->mutex());
  s_->stack->crash();
}

namespace {

std::shared_ptr<lwip_host> make_stack(world_state& w, host_state& h) {
  lwip_detail::host_config cfg;
  cfg.name = h.name;
  cfg.link = w.link->name();
  cfg.ip = h.ip4 + "/16";
  cfg.ip6 = {h.ip6 + "/64"};
  cfg.mtu = w.link->mtu_for(h.name);
  char mac[32];
  std::snprintf(mac, sizeof mac, "02:00:5e:00:%02x:%02x", (h.number >> 8) & 0xff, h.number & 0xff);
  cfg.mac = mac;
  cfg.checksums = true;  // links may corrupt packets
  return std::make_shared<lwip_host>(w.eng, cfg, "lwip+sim:host=" + h.name + ",link=world");
}

}  // namespace

void host::restart() {
  world_state& w = *s_->w;
  std::shared_ptr<lwip_host> old;  // lives on while its sockets do; released after the lock
  std::lock_guard lk(w.eng->mutex());
  if (!s_->stack->down()) {
    throw std::logic_error("anysock::sim::host::restart: host '" + s_->name + "' has not crashed");
  }
  old = std::move(s_->stack);
  s_->stack = make_stack(w, *s_);
}

// ---- world ------------------------------------------------------------------------------------

world::world(uint64_t seed) : s_(std::make_unique<world_state>()) {
  s_->seed = seed;
  s_->eng = engine::start_sim(seed);
  std::lock_guard lk(s_->eng->mutex());
  s_->eng->set_scheduler(s_.get());
  s_->link = &s_->eng->link("world");
  s_->link->simulate(mix(seed, 100));
  s_->rng = mix(seed, 101);
}

world::~world() {
  {
    std::unique_lock lk(s_->eng->mutex());
    if (std::any_of(s_->tasks.begin(), s_->tasks.end(),
                    [](const auto& t) { return t->st != task::state::done; })) {
      s_->stop(lk);
    }
    s_->link->set_capture(nullptr);
    s_->eng->set_scheduler(nullptr);
  }
  s_->tasks.clear();
  s_->hosts.clear();  // each host's stack goes when its last socket does
  s_->capture.reset();
  s_->eng.reset();
}

uint64_t world::seed() const { return s_->seed; }

host& world::add_host(std::string name) {
  if (name.empty()) throw std::invalid_argument("anysock::sim::world::add_host: empty name");
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_')) {
      throw std::invalid_argument("anysock::sim::world::add_host: '" + name +
                                  "' is not a host name (letters, digits, '-', '.', '_')");
    }
  }
  std::lock_guard lk(s_->eng->mutex());
  for (host* h : s_->host_list) {
    if (h->name() == name) {
      throw std::invalid_argument("anysock::sim::world::add_host: host '" + name + "' exists");
    }
  }
  const int n = static_cast<int>(s_->hosts.size()) + 1;
  if (n > 65534) throw std::invalid_argument("anysock::sim::world::add_host: too many hosts");
  auto st = std::make_unique<host_state>();
  st->w = s_.get();
  st->name = std::move(name);
  st->number = n;
  st->ip4 = "10.0." + std::to_string(n >> 8) + "." + std::to_string(n & 0xff);
  char buf[32];
  std::snprintf(buf, sizeof buf, "fd00::%x", n);
  st->ip6 = buf;
  st->stack = make_stack(*s_, *st);
  s_->hosts.push_back(std::unique_ptr<host>(new host(std::move(st))));
  s_->host_list.push_back(s_->hosts.back().get());
  return *s_->hosts.back();
}

host& world::get(const std::string& name) {
  for (host* h : s_->host_list) {
    if (h->name() == name) return *h;
  }
  throw std::out_of_range("anysock::sim::world::get: no host '" + name + "'");
}

const std::vector<host*>& world::hosts() const { return s_->host_list; }

void world::set_default_link(const link_config& cfg) {
  check_config(cfg);
  std::lock_guard lk(s_->eng->mutex());
  s_->link->set_default(cfg);
  for (auto& h : s_->hosts) h->s_->stack->set_mtu(s_->link->mtu_for(h->name()));
}

void world::set_link(host& a, host& b, const link_config& cfg) {
  check_config(cfg);
  std::lock_guard lk(s_->eng->mutex());
  s_->link->set_direction(a.name(), b.name(), cfg);
  s_->link->set_direction(b.name(), a.name(), cfg);
  a.s_->stack->set_mtu(s_->link->mtu_for(a.name()));
  b.s_->stack->set_mtu(s_->link->mtu_for(b.name()));
}

void world::set_link_one_way(host& from, host& to, const link_config& cfg) {
  check_config(cfg);
  std::lock_guard lk(s_->eng->mutex());
  s_->link->set_direction(from.name(), to.name(), cfg);
  from.s_->stack->set_mtu(s_->link->mtu_for(from.name()));
  to.s_->stack->set_mtu(s_->link->mtu_for(to.name()));
}

void world::partition(host& a, host& b) {
  std::lock_guard lk(s_->eng->mutex());
  s_->link->set_partitioned(a.name(), b.name(), true);
  s_->link->set_partitioned(b.name(), a.name(), true);
}

void world::partition_one_way(host& from, host& to) {
  std::lock_guard lk(s_->eng->mutex());
  s_->link->set_partitioned(from.name(), to.name(), true);
}

void world::heal(host& a, host& b) {
  std::lock_guard lk(s_->eng->mutex());
  s_->link->set_partitioned(a.name(), b.name(), false);
  s_->link->set_partitioned(b.name(), a.name(), false);
}

void world::run() { s_->run(kNever); }

void world::run_for(double seconds) {
  if (!(seconds >= 0)) throw std::invalid_argument("anysock::sim::world::run_for: negative time");
  int64_t until;
  {
    std::lock_guard lk(s_->eng->mutex());
    until = s_->eng->now_ns() + to_ns(seconds);
  }
  s_->run(until);
}

double world::now() const {
  std::lock_guard lk(s_->eng->mutex());
  return s_->eng->now();
}

void world::capture(const std::string& path, unsigned mode) {
  if (mode > 0777) {
    throw std::invalid_argument("anysock::sim::world::capture: mode " + std::to_string(mode) +
                                " is not permission bits (at most 0777)");
  }
  auto file =
      std::make_unique<lwip_detail::pcap_file>(path, lwip_detail::pcap_file::kRawIp, 65535, mode);
  std::lock_guard lk(s_->eng->mutex());
  s_->link->set_capture(file.get());
  s_->capture = std::move(file);
}

sim::stats world::stats() const {
  std::lock_guard lk(s_->eng->mutex());
  if (s_->capture) s_->capture->flush();
  return s_->link->stats();
}

// ---- in spawned code --------------------------------------------------------------------------

double now() {
  if (world_state* w = t_world) return w->eng->now();
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

void sleep(double seconds) {
  if (!(seconds >= 0)) throw std::invalid_argument("anysock::sim::sleep: negative time");
  if (world_state* w = t_world) {
    std::unique_lock lk(w->eng->mutex());
    if (seconds == 0) {  // a switch point only
      w->switch_point(lk);
      return;
    }
    const wait_spec until{wait_spec::mode::until, w->eng->now() + seconds};
    const std::function<bool()> never = [] { return false; };
    int e = w->wait(lk, until, never, "sim::sleep");
    if (e != wait_timed_out && e != 0) throw anysock::error(e, "(sim::sleep)");
    return;
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
}

}  // namespace anysock::sim
