// radix's one thread-pool type: a fixed (or growing) set of threads that serves three kinds of
// work from one queue:
//   run(n, fn):       fork-join; `fn` runs on n threads at once, the caller being one of them (the
//                     tokenizer's encode_batch shares texts out this way);
//   submit(fn):       one task, its result or exception through a future (the service's
//                     tokenization workers: they bound how many cores request preparation takes,
//                     however many clients are connected);
//   post(fn, limit):  one task that may block for long (an HTTP request waiting for its batch),
//                     the pool growing up to `limit` threads so that queued tasks never wait
//                     behind blocked ones while fewer than `limit` run (the HTTP transport).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#include "tokenizer/piece.h"

namespace radix {

class ThreadPool {
 public:
  // Starts `threads` threads (0: none yet; run() grows the pool to what it asks for).
  explicit ThreadPool(size_t threads = 0);
  ~ThreadPool();  // finishes queued tasks, then joins

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // The pool behind Tokenizer::encode_batch; it grows to the largest number of threads asked for
  // and keeps them, so each keeps its warm word cache from one batch to the next.
  static ThreadPool& shared();

  // Runs `fn` on `threads` threads at once, the calling thread being one of them, and returns
  // when all have finished. `fn` must not throw and must share its work out dynamically: a call
  // never waits for pool threads that are busy elsewhere (the caller then does more of it).
  void run(size_t threads, tokenizer_detail::FunctionRef<void()> fn);

  // Runs fn() on a pool thread; its result or exception comes back through the future. Throws
  // std::runtime_error if the pool has no threads.
  template <typename Fn>
  auto submit(Fn fn) -> std::future<std::invoke_result_t<Fn>> {
    using R = std::invoke_result_t<Fn>;
    auto task = std::make_shared<std::packaged_task<R()>>(std::move(fn));
    std::future<R> future = task->get_future();
    enqueue([task] { (*task)(); });
    return future;
  }

  // Runs fn() on a pool thread, starting a new one (while there are fewer than `limit`) when no
  // idle thread is left for it. fn must not throw: nothing would see the exception. Throws
  // std::invalid_argument for a limit of 0, std::runtime_error once the pool is stopping.
  void post(std::function<void()> fn, size_t limit);

  size_t size() const;

 private:
  struct Job {
    tokenizer_detail::FunctionRef<void()>* fn;
    size_t unstarted;  // helpers still to be picked up by a pool thread
    size_t running;    // helpers running now
  };
  struct Entry {
    Job* job = nullptr;          // a run() call's helpers, or
    std::function<void()> task;  // one submitted task
  };
  void enqueue(std::function<void()> task);
  void work();

  mutable std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::deque<Entry> queue_;
  std::vector<std::thread> threads_;
  size_t idle_ = 0;  // threads waiting for work
  bool stop_ = false;
};

}  // namespace radix
