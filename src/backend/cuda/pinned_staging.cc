#include "backend/cuda/pinned_staging.h"

#include <cuda_runtime.h>

namespace radix::cuda {

PinnedStaging::~PinnedStaging() {
  if (base_ != nullptr) cudaFreeHost(base_);
}

void* PinnedStaging::take(size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  const size_t rounded = (bytes + 15) / 16 * 16;
  if (unavailable_ || rounded > capacity_ - used_) return nullptr;
  if (base_ == nullptr && cudaMallocHost(&base_, capacity_) != cudaSuccess) {
    cudaGetLastError();  // not sticky: clear it so that the next call does not report it
    base_ = nullptr;
    unavailable_ = true;
    return nullptr;
  }
  void* p = base_ + used_;
  used_ += rounded;
  ++taken_;
  return p;
}

size_t PinnedStaging::before_synchronize() {
  std::lock_guard<std::mutex> lock(mutex_);
  return taken_;
}

void PinnedStaging::after_synchronize(size_t mark) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (taken_ == mark) used_ = 0;
}

}  // namespace radix::cuda
