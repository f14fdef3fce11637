// A gate that a test's fake holds its calls at: the test closes it, waits until the calls it
// expects are held there, checks what it wants while they are, then opens it.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>

namespace radix::testing {

class CallGate {
 public:
  void close() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = false;
  }
  void open() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  // Waits until at least `n` calls are held at the gate; a test failure after 10 s.
  void wait_held(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    ASSERT_TRUE(cv_.wait_for(lock, std::chrono::seconds(10), [&] { return held_ >= n; }));
  }

  // Called by the fake: blocks while the gate is closed. With `gone`, polls it every 20 ms while
  // held and returns false as soon as it says the caller went away; true once the gate is open.
  bool pass(const std::function<bool()>& gone = nullptr) {
    std::unique_lock<std::mutex> lock(mu_);
    ++held_;
    cv_.notify_all();
    while (!open_) {
      if (!gone) {
        cv_.wait(lock);
        continue;
      }
      cv_.wait_for(lock, std::chrono::milliseconds(20));
      if (gone()) {
        --held_;
        return false;
      }
    }
    --held_;
    return true;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  int held_ = 0;
};

}  // namespace radix::testing
