// The one thread-pool type: submitted tasks and fork-join runs on the same threads.
#include "tokenizer/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

namespace radix {
namespace {

TEST(ThreadPool, RunsTasksAndReturnsResults) {
  ThreadPool pool(3);
  std::vector<std::future<int>> futures;
  for (int i = 0; i < 100; ++i) futures.push_back(pool.submit([i] { return i * i; }));
  for (int i = 0; i < 100; ++i) EXPECT_EQ(futures[i].get(), i * i);
}

TEST(ThreadPool, PassesExceptionsBack) {
  ThreadPool pool(1);
  auto f = pool.submit([]() -> int { throw std::out_of_range("nope"); });
  EXPECT_THROW(f.get(), std::out_of_range);
  EXPECT_EQ(pool.submit([] { return 5; }).get(), 5);
}

TEST(ThreadPool, NeverRunsMoreThanItsThreads) {
  ThreadPool pool(2);
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

TEST(ThreadPool, SubmitWithoutThreadsIsAnError) {
  ThreadPool pool(0);
  EXPECT_THROW(pool.submit([] { return 1; }), std::runtime_error);
}

// run() shares work among the caller and pool threads; it finishes even when every pool thread
// is busy with a submitted task (the caller then does all of it).
TEST(ThreadPool, RunFinishesWhileThePoolIsBusy) {
  ThreadPool pool(2);
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  auto a = pool.submit([gate] { gate.wait(); });
  auto b = pool.submit([gate] { gate.wait(); });
  std::atomic<int> next{0}, done{0};
  pool.run(3, [&] {
    while (next.fetch_add(1) < 1000) done.fetch_add(1);
  });
  EXPECT_EQ(done.load(), 1000);
  release.set_value();
  a.get();
  b.get();
}

TEST(ThreadPool, RunUsesSeveralThreads) {
  ThreadPool pool;  // grows on demand
  std::mutex mu;
  std::set<std::thread::id> ids;
  std::atomic<int> arrived{0};
  pool.run(3, [&] {
    {
      std::lock_guard<std::mutex> lock(mu);
      ids.insert(std::this_thread::get_id());
    }
    arrived.fetch_add(1);
  });
  EXPECT_GE(ids.size(), 1u);
  EXPECT_EQ(pool.size(), 2u);
}

// post(): a task that blocks gets a thread of its own while fewer than `limit` run, so a task
// posted behind blocked ones still runs at once; past the limit tasks wait for a free thread.
TEST(ThreadPool, PostGrowsForBlockedTasksUpToItsLimit) {
  ThreadPool pool;  // no threads until post asks for them
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::atomic<int> started{0}, finished{0};
  for (int i = 0; i < 3; ++i) {
    pool.post(
        [&, gate] {
          started.fetch_add(1);
          gate.wait();
          finished.fetch_add(1);
        },
        4);
  }
  std::promise<void> free_ran;
  pool.post([&] { free_ran.set_value(); }, 4);  // a fourth thread: the three block
  EXPECT_EQ(free_ran.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  std::promise<void> queued_ran;
  std::future<void> queued = queued_ran.get_future();
  for (int i = 0; i < 2; ++i) {  // at the limit: these wait for a thread that is not blocked
    pool.post(
        [&, i] {
          if (i == 1) queued_ran.set_value();
        },
        4);
  }
  EXPECT_EQ(queued.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_LE(pool.size(), 4u);
  while (started.load() < 3) std::this_thread::yield();
  release.set_value();
  while (finished.load() < 3) std::this_thread::yield();
  EXPECT_EQ(finished.load(), 3);
}

TEST(ThreadPool, PostWithALimitOfZeroIsAnError) {
  ThreadPool pool;
  EXPECT_THROW(pool.post([] {}, 0), std::invalid_argument);
}

TEST(ThreadPool, PostNeverExceedsItsLimit) {
  ThreadPool pool;
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::atomic<int> running{0}, peak{0}, done{0};
  for (int i = 0; i < 12; ++i) {
    pool.post(
        [&, gate] {
          const int now = ++running;
          int p = peak.load();
          while (now > p && !peak.compare_exchange_weak(p, now)) {
          }
          gate.wait();
          --running;
          done.fetch_add(1);
        },
        3);
  }
  release.set_value();
  while (done.load() < 12) std::this_thread::yield();
  EXPECT_LE(peak.load(), 3);
  EXPECT_EQ(pool.size(), 3u);
}

}  // namespace
}  // namespace radix
