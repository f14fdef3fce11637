// Concurrency permits: a request that finds none left is refused at once (429), never queued.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <optional>

namespace radix::server {

class ConcurrencyLimiter {
 public:
  explicit ConcurrencyLimiter(size_t permits) : permits_(permits) {}

  // Held for the life of a request; gives its permit back when destroyed.
  class Permit {
   public:
    Permit(Permit&& other) noexcept : owner_(other.owner_) { other.owner_ = nullptr; }
    Permit& operator=(Permit&&) = delete;
    Permit(const Permit&) = delete;
    ~Permit() {
      if (owner_) owner_->release();
    }

   private:
    friend class ConcurrencyLimiter;
    explicit Permit(ConcurrencyLimiter* owner) : owner_(owner) {}
    ConcurrencyLimiter* owner_;
  };

  std::optional<Permit> try_acquire() {
    std::lock_guard<std::mutex> lock(mu_);
    if (in_use_ >= permits_) return std::nullopt;
    ++in_use_;
    return Permit(this);
  }

  size_t in_use() const {
    std::lock_guard<std::mutex> lock(mu_);
    return in_use_;
  }
  size_t capacity() const { return permits_; }

  // Waits until no permit is held; false on timeout.
  bool wait_idle(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return idle_.wait_for(lock, timeout, [this] { return in_use_ == 0; });
  }

 private:
  void release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      --in_use_;
    }
    idle_.notify_all();
  }

  const size_t permits_;
  mutable std::mutex mu_;
  std::condition_variable idle_;
  size_t in_use_ = 0;
};

}  // namespace radix::server
