// Page-locked host memory for a batch's small uploads (the fold plan's index arrays, the prefix
// cache's). A copy from ordinary (pageable) memory costs the host 4-14 µs, one from page-locked
// memory ~2 µs (bench/RESULTS.md, stop 21 call Y7), and a small batch's forward is paced by its
// host (docs/cuda.md).
//
// A bump region: take() hands out the next bytes, which the caller fills and copies from on the
// stream; the region empties only at a stream synchronisation, when every copy out of it has
// finished (after_synchronize). An upload that does not fit gets nullptr and goes through
// pageable memory as before.
#pragma once

#include <cstddef>
#include <mutex>

namespace radix::cuda {

class PinnedStaging {
 public:
  explicit PinnedStaging(size_t capacity = size_t{4} << 20) : capacity_(capacity) {}
  ~PinnedStaging();
  PinnedStaging(const PinnedStaging&) = delete;
  PinnedStaging& operator=(const PinnedStaging&) = delete;

  // `bytes` of page-locked memory (16-byte aligned) no copy still reads, or nullptr when they do
  // not fit before the next synchronisation (or page-locked memory cannot be had). The caller
  // must enqueue its copy out of them before it calls before_synchronize().
  void* take(size_t bytes);

  // Around every synchronisation of the stream the copies were enqueued on: the mark taken
  // before it, given back after it succeeded, empties the region if nothing was taken meanwhile
  // (a copy taken during the synchronisation may still be in flight).
  size_t before_synchronize();
  void after_synchronize(size_t mark);

 private:
  std::mutex mutex_;
  size_t capacity_;
  unsigned char* base_ = nullptr;
  bool unavailable_ = false;  // cudaMallocHost failed once: stay on pageable copies
  size_t used_ = 0;
  size_t taken_ = 0;  // how many take()s ever succeeded: tells a sync's mark from later ones
};

}  // namespace radix::cuda
