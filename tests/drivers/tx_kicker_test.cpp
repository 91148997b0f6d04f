// The transmit thread of the batching drivers (drivers/tx_kicker.hpp), on its own: every request
// is followed by a kick that starts after it (none is lost however the threads interleave),
// requests made while a kick runs are folded into the next one, a kick's error is reported once,
// and destruction stops a sleeping thread.
#include "tx_kicker.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <thread>

#include "../support/support.hpp"

namespace anysock::testing {
namespace {

using namespace std::chrono_literals;

// Waits (polling) until `done` holds or kGenerousWait passes; returns whether it held.
template <class Pred>
bool eventually(Pred done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(kGenerousWait);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(100us);
  }
  return true;
}

TEST(TxKicker, EveryRequestIsFollowedByAKickThatSeesIt) {
  // The producer publishes a number, then requests; each kick records the latest number it saw.
  // Whatever the interleaving, the last number published must be seen by some kick.
  std::atomic<uint64_t> published{0};
  std::atomic<uint64_t> seen{0};
  drivers::detail::tx_kicker k(
      [&] {
        seen.store(published.load(std::memory_order_acquire), std::memory_order_release);
        return 0;
      },
      "test-kicker");
  for (uint64_t i = 1; i <= 20000; ++i) {
    published.store(i, std::memory_order_release);
    k.request();
    if (i % 1000 == 0) {
      ASSERT_TRUE(eventually([&] { return seen.load() == i; }))
          << "request " << i << " was never served (seen " << seen.load() << ")";
    }
  }
  EXPECT_GE(k.kicks(), 20u);
  EXPECT_LE(k.kicks(), 20000u);
}

TEST(TxKicker, RequestsDuringAKickAreFoldedIntoOneMore) {
  std::atomic<int> running{0};
  std::atomic<bool> release{false};
  std::atomic<int> rounds{0};
  drivers::detail::tx_kicker k(
      [&] {
        running.store(1);
        while (!release.load()) std::this_thread::sleep_for(100us);
        rounds.fetch_add(1);
        return 0;
      },
      "test-kicker");
  k.request();
  ASSERT_TRUE(eventually([&] { return running.load() == 1; }));
  EXPECT_TRUE(k.busy(0ns)) << "a thread in a kick is busy";
  for (int i = 0; i < 100; ++i) k.request();  // all while the first kick runs
  release.store(true);
  ASSERT_TRUE(eventually([&] { return rounds.load() == 2; }));
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(rounds.load(), 2) << "100 requests during one kick make exactly one more";
  EXPECT_TRUE(eventually([&] { return !k.busy(0ns); })) << "the thread sleeps when done";
  EXPECT_TRUE(k.busy(std::chrono::hours(1))) << "it kicked within the last hour";
}

TEST(TxKicker, TransmitAsksEveryBurstAndAnIdleThreadLeavesSmallFlushesToTheCaller) {
  std::atomic<int> rounds{0};
  drivers::detail::tx_kicker k(
      [&] {
        rounds.fetch_add(1);
        return 0;
      },
      "test-kicker");
  // Until the new thread first goes to sleep it counts as busy.
  ASSERT_TRUE(eventually([&] { return !k.busy(0ns); }));
  uint32_t queued = 0;
  uint32_t small = 3;
  EXPECT_FALSE(k.take_flush(small)) << "an idle thread that never kicked leaves a flush to us";
  EXPECT_EQ(small, 3u) << "and the frames stay counted for the caller's own kick";
  for (uint32_t i = 1; i < drivers::detail::tx_kicker::kBurst; ++i) k.frame_queued(queued);
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(rounds.load(), 0) << "no kick before a burst is queued";
  EXPECT_EQ(queued, drivers::detail::tx_kicker::kBurst - 1);
  k.frame_queued(queued);
  EXPECT_EQ(queued, 0u);
  ASSERT_TRUE(eventually([&] { return rounds.load() == 1; }));
  // Within kStreamGap of that kick a flush goes to the thread, counted frames and all.
  uint32_t tail = 5;
  if (k.take_flush(tail)) {
    EXPECT_EQ(tail, 0u);
    EXPECT_TRUE(eventually([&] { return rounds.load() == 2; }));
  }
}

TEST(TxKicker, AKicksErrorIsReportedOnce) {
  std::atomic<int> next_error{ENETDOWN};
  std::atomic<int> rounds{0};
  drivers::detail::tx_kicker k(
      [&] {
        rounds.fetch_add(1);
        return next_error.exchange(0);
      },
      "test-kicker");
  EXPECT_EQ(k.take_error(), 0);
  k.request();
  ASSERT_TRUE(eventually([&] { return rounds.load() == 1; }));
  ASSERT_TRUE(eventually([&] { return !k.busy(0ns); }));
  EXPECT_EQ(k.take_error(), ENETDOWN);
  EXPECT_EQ(k.take_error(), 0) << "reported once";
}

TEST(TxKicker, DestroyingStopsASleepingThreadWithoutKicking) {
  std::atomic<int> rounds{0};
  {
    drivers::detail::tx_kicker k(
        [&] {
          rounds.fetch_add(1);
          return 0;
        },
        "test-kicker");
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(rounds.load(), 0);
}

}  // namespace
}  // namespace anysock::testing
