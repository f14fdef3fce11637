// The threads behind Tokenizer::encode_batch: started once and kept, so each keeps its warm
// word cache from one batch to the next.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "tokenizer/piece.h"

namespace radix::tokenizer_detail {

class ThreadPool {
 public:
  // One pool for the process; it grows to the largest number of threads asked for.
  static ThreadPool& shared();
  ~ThreadPool();

  // Runs `fn` on `threads` threads at once, the calling thread being one of them, and returns
  // when all have finished. `fn` must not throw. Calls from several threads may overlap; a call
  // never waits for pool threads that are busy elsewhere (it then does more of the work itself).
  void run(size_t threads, FunctionRef<void()> fn);

 private:
  struct Job {
    FunctionRef<void()>* fn;
    size_t unstarted;  // helpers still to be picked up by a pool thread
    size_t running;    // helpers running now
  };
  void work();

  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::deque<Job*> queue_;
  std::vector<std::thread> threads_;
  bool stop_ = false;
};

}  // namespace radix::tokenizer_detail
