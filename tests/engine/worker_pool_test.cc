#include "engine/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

namespace radix::engine {
namespace {

TEST(WorkerPool, RunsTasksAndReturnsResults) {
  WorkerPool pool(3);
  std::vector<std::future<int>> futures;
  for (int i = 0; i < 100; ++i) futures.push_back(pool.submit([i] { return i * i; }));
  for (int i = 0; i < 100; ++i) EXPECT_EQ(futures[i].get(), i * i);
}

TEST(WorkerPool, PassesExceptionsBack) {
  WorkerPool pool(1);
  auto f = pool.submit([]() -> int { throw std::out_of_range("nope"); });
  EXPECT_THROW(f.get(), std::out_of_range);
  EXPECT_EQ(pool.submit([] { return 5; }).get(), 5);
}

TEST(WorkerPool, NeverRunsMoreThanItsThreads) {
  WorkerPool pool(2);
  std::atomic<int> running{0}, peak{0};
  std::vector<std::future<void>> futures;
  for (int i = 0; i < 20; ++i) {
    futures.push_back(pool.submit([&] {
      const int now = ++running;
      int p = peak.load();
      while (now > p && !peak.compare_exchange_weak(p, now)) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      --running;
    }));
  }
  for (auto& f : futures) f.get();
  EXPECT_LE(peak.load(), 2);
}

TEST(WorkerPool, ZeroThreadsIsAnError) { EXPECT_THROW(WorkerPool(0), std::invalid_argument); }

}  // namespace
}  // namespace radix::engine
