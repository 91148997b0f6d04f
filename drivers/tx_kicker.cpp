#include "tx_kicker.hpp"

#include <pthread.h>

#include <utility>

namespace anysock::drivers::detail {

tx_kicker::tx_kicker(std::function<int()> kick, const std::string& name) : kick_(std::move(kick)) {
  thread_ = std::thread([this] { run(); });
  ::pthread_setname_np(thread_.native_handle(), name.substr(0, 15).c_str());
}

tx_kicker::~tx_kicker() {
  stop_.store(true, std::memory_order_seq_cst);
  requests_.fetch_add(1, std::memory_order_seq_cst);
  requests_.notify_one();
  thread_.join();
}

void tx_kicker::request() noexcept {
  // Paired with run(): the request is stored before `sleeping_` is read, and the thread stores
  // `sleeping_` before it reads the requests again, so one of the two sees the other (seq_cst).
  requests_.fetch_add(1, std::memory_order_seq_cst);
  if (sleeping_.load(std::memory_order_seq_cst)) requests_.notify_one();
}

namespace {
int64_t steady_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

bool tx_kicker::busy(std::chrono::nanoseconds recent) const noexcept {
  if (!sleeping_.load(std::memory_order_relaxed)) return true;
  return steady_ns() - last_kick_end_.load(std::memory_order_relaxed) < recent.count();
}

bool tx_kicker::useful_by_default() noexcept { return std::thread::hardware_concurrency() > 1; }

void tx_kicker::run() noexcept {
  uint32_t served = 0;
  for (;;) {
    uint32_t now = requests_.load(std::memory_order_acquire);
    if (now == served) {
      sleeping_.store(true, std::memory_order_seq_cst);
      if (requests_.load(std::memory_order_seq_cst) == served) requests_.wait(served);
      sleeping_.store(false, std::memory_order_relaxed);
      continue;
    }
    if (stop_.load(std::memory_order_acquire)) return;
    served = now;
    kicks_.fetch_add(1, std::memory_order_relaxed);
    if (int e = kick_(); e != 0) {
      int none = 0;
      error_.compare_exchange_strong(none, e, std::memory_order_acq_rel);
    }
    last_kick_end_.store(steady_ns(), std::memory_order_relaxed);
  }
}

}  // namespace anysock::drivers::detail
