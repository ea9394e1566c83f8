// The chunk dealer with stand-in workers: every chunk exactly once, a slow worker takes
// fewer, results do not depend on the worker count, errors and the stop flag end it early.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "underspec/run/deal_chunks.hpp"

namespace underspec {
namespace {

using namespace std::chrono_literals;

TEST(DealChunks, EveryChunkExactlyOnce) {
  for (int workers : {1, 2, 3, 8}) {
    constexpr std::size_t n = 100;
    std::vector<std::atomic<int>> times(n);
    std::vector<std::atomic<int>> by_worker(static_cast<std::size_t>(workers));
    deal_chunks(n, workers, [&](int worker, std::size_t chunk) {
      ASSERT_GE(worker, 0);
      ASSERT_LT(worker, workers);
      times[chunk].fetch_add(1);
      by_worker[static_cast<std::size_t>(worker)].fetch_add(1);
      std::this_thread::sleep_for(100us);
    });
    int total = 0;
    for (std::size_t c = 0; c < n; ++c) EXPECT_EQ(times[c].load(), 1) << "chunk " << c << ", " << workers << " workers";
    for (auto& count : by_worker) total += count.load();
    EXPECT_EQ(total, static_cast<int>(n));
  }
}

TEST(DealChunks, NoChunksAndFewerChunksThanWorkers) {
  int calls = 0;
  deal_chunks(0, 4, [&](int, std::size_t) { ++calls; });
  EXPECT_EQ(calls, 0);
  std::vector<std::atomic<int>> times(2);
  deal_chunks(2, 8, [&](int worker, std::size_t chunk) {
    EXPECT_LT(worker, 2);  // no more workers started than chunks
    times[chunk].fetch_add(1);
  });
  EXPECT_EQ(times[0].load(), 1);
  EXPECT_EQ(times[1].load(), 1);
}

TEST(DealChunks, RejectsNoWorkers) {
  EXPECT_THROW(deal_chunks(3, 0, [](int, std::size_t) {}), std::invalid_argument);
  EXPECT_THROW(deal_chunks(3, -1, [](int, std::size_t) {}), std::invalid_argument);
}

TEST(DealChunks, SlowWorkerTakesFewerChunks) {
  std::atomic<int> fast{0}, slow{0};
  deal_chunks(60, 2, [&](int worker, std::size_t) {
    if (worker == 0) {
      slow.fetch_add(1);
      std::this_thread::sleep_for(20ms);
    } else {
      fast.fetch_add(1);
      std::this_thread::sleep_for(1ms);
    }
  });
  EXPECT_EQ(fast + slow, 60);
  EXPECT_LT(slow.load(), fast.load());
}

TEST(DealChunks, ResultsIndependentOfWorkerCount) {
  auto run = [](int workers) {
    std::vector<std::uint64_t> out(257);
    deal_chunks(out.size(), workers, [&](int, std::size_t chunk) {
      std::uint64_t x = chunk * 0x9E3779B97F4A7C15ull + 1;
      for (int i = 0; i < 100; ++i) x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      out[chunk] = x;  // each chunk writes only its own slot
    });
    return out;
  };
  const auto one = run(1);
  for (int workers : {2, 3, 8}) EXPECT_EQ(run(workers), one) << workers << " workers";
}

TEST(DealChunks, FirstExceptionPropagatesAndStopsDealing) {
  std::mutex mutex;
  std::vector<std::size_t> started;
  std::atomic<bool> thrown{false};
  std::atomic<int> started_after_throw{0};
  EXPECT_THROW(deal_chunks(1000, 4,
                           [&](int, std::size_t chunk) {
                             if (thrown.load()) started_after_throw.fetch_add(1);
                             {
                               std::lock_guard lock(mutex);
                               started.push_back(chunk);
                             }
                             if (chunk == 10) {
                               thrown.store(true);
                               throw std::runtime_error("chunk 10 failed");
                             }
                             std::this_thread::sleep_for(1ms);
                           }),
               std::runtime_error);
  // Others may start a chunk or two while the throw unwinds, before it is recorded.
  EXPECT_LE(started_after_throw.load(), 6);
  EXPECT_LT(started.size(), 100u);
  try {
    deal_chunks(5, 2, [](int, std::size_t chunk) {
      if (chunk == 3) throw std::logic_error("the message");
    });
    FAIL() << "no exception";
  } catch (const std::logic_error& e) {
    EXPECT_STREQ(e.what(), "the message");
  }
}

TEST(DealChunks, StopFlagHonoured) {
  std::atomic<bool> stop{false};
  std::atomic<int> done{0};
  deal_chunks(
      1000, 3,
      [&](int, std::size_t) {
        if (done.fetch_add(1) + 1 == 20) stop.store(true);
        std::this_thread::sleep_for(1ms);
      },
      &stop);
  EXPECT_GE(done.load(), 20);
  EXPECT_LE(done.load(), 22);  // at most one more chunk each for the other workers

  std::atomic<bool> already{true};
  int calls = 0;
  deal_chunks(
      10, 1, [&](int, std::size_t) { ++calls; }, &already);
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace underspec
