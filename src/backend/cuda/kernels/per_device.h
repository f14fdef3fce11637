// Host-side settings the CUDA driver keeps per device (kernel attributes such as the dynamic
// shared-memory limit, the SM count), made once per device a process uses rather than once per
// process: a server with one worker per GPU launches the same kernels on every device.
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>

namespace radix::cuda::detail {

// Runs set(device) for the current device unless it already succeeded there (bit d of `done`;
// devices past 63 run it on every call). A failure is returned and retried on the next call.
template <typename Set>
cudaError_t once_per_device(std::atomic<uint64_t>& done, Set&& set) {
  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) return err;
  const uint64_t bit = device < 64 ? uint64_t{1} << device : 0;
  if (bit != 0 && (done.load(std::memory_order_relaxed) & bit) != 0) return cudaSuccess;
  err = set(device);
  if (err == cudaSuccess && bit != 0) done.fetch_or(bit, std::memory_order_relaxed);
  return err;
}

// The current device's multiprocessor count, asked once per device (0 when it cannot be read).
inline int sm_count_of_current_device() {
  static std::atomic<int> counts[64] = {};
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return 0;
  int sms = device < 64 ? counts[device].load(std::memory_order_relaxed) : 0;
  if (sms > 0) return sms;
  if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) return 0;
  if (device < 64) counts[device].store(sms, std::memory_order_relaxed);
  return sms;
}

}  // namespace radix::cuda::detail
