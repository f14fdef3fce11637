#include "tokenizer/thread_pool.h"

#include <algorithm>
#include <stdexcept>
#include <system_error>

namespace radix {

namespace {
constexpr size_t kMaxPoolThreads = 256;
}

ThreadPool::ThreadPool(size_t threads) {
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
}

ThreadPool& ThreadPool::shared() {
  static ThreadPool pool;
  return pool;
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : threads_) t.join();
}

size_t ThreadPool::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return threads_.size();
}

void ThreadPool::enqueue(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) throw std::runtime_error("thread pool: stopped");
    if (threads_.empty()) throw std::runtime_error("thread pool: no threads to run a task");
    queue_.push_back({nullptr, std::move(task)});
  }
  work_cv_.notify_one();
}

void ThreadPool::post(std::function<void()> fn, size_t limit) {
  if (limit == 0) throw std::invalid_argument("thread pool: post with a limit of 0 threads");
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) throw std::runtime_error("thread pool: stopped");
    queue_.push_back({nullptr, std::move(fn)});
    if (queue_.size() > idle_ && threads_.size() < limit) {
      try {
        threads_.emplace_back([this] { work(); });
      } catch (const std::system_error&) {
        // No more threads to be had: the queued task waits for one of those there are.
        if (threads_.empty()) {
          queue_.pop_back();
          throw std::runtime_error("thread pool: no thread could be started");
        }
      }
    }
  }
  work_cv_.notify_one();
}

void ThreadPool::run(size_t threads, tokenizer_detail::FunctionRef<void()> fn) {
  if (threads <= 1) {
    fn();
    return;
  }
  Job job{&fn, std::min(threads, kMaxPoolThreads + 1) - 1, 0};
  {
    std::lock_guard<std::mutex> lock(mu_);
    try {
      while (threads_.size() < job.unstarted) threads_.emplace_back([this] { work(); });
    } catch (const std::system_error&) {
      // No more threads to be had: go on with those there are.
      job.unstarted = threads_.size();
    }
    if (job.unstarted > 0) queue_.push_back({&job, {}});
  }
  work_cv_.notify_all();
  fn();
  std::unique_lock<std::mutex> lock(mu_);
  // Helpers not started by now are not needed: the work is shared out dynamically, so the
  // threads already on it (this one included) have finished it.
  if (job.unstarted > 0) {
    job.unstarted = 0;
    queue_.erase(
        std::find_if(queue_.begin(), queue_.end(), [&](const Entry& e) { return e.job == &job; }));
  }
  done_cv_.wait(lock, [&] { return job.running == 0; });
}

void ThreadPool::work() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    ++idle_;
    work_cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    --idle_;
    if (queue_.empty()) return;  // stop_ and nothing left
    Entry& front = queue_.front();
    if (front.job == nullptr) {
      std::function<void()> task = std::move(front.task);
      queue_.pop_front();
      lock.unlock();
      task();  // a packaged_task: its exception goes to the future
      lock.lock();
      continue;
    }
    Job* job = front.job;
    if (--job->unstarted == 0) queue_.pop_front();
    ++job->running;
    lock.unlock();
    (*job->fn)();
    lock.lock();
    if (--job->running == 0) done_cv_.notify_all();
  }
}

}  // namespace radix
