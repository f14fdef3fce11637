// Helpers for the GPU tests: skipping where no GPU is present, device buffers, bf16 rounding on
// the host, and output poisoning to prove every element was written.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/cuda_check.h"

namespace radix::cuda::testing {

using bf16 = __nv_bfloat16;

// Empty when a GPU is usable, else why not (the skip message).
inline std::string gpu_missing_reason() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) return std::string("no CUDA GPU: ") + cudaGetErrorString(err);
  if (count == 0) return "no CUDA GPU: the driver reports 0 devices";
  return {};
}

#define RADIX_REQUIRE_GPU()                                                         \
  do {                                                                              \
    const std::string radix_reason_ = ::radix::cuda::testing::gpu_missing_reason(); \
    if (!radix_reason_.empty()) GTEST_SKIP() << radix_reason_;                      \
  } while (0)

template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t n) : n_(n) {
    if (n) RADIX_CUDA_CHECK(cudaMalloc(&p_, n * sizeof(T)));
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
  ~DeviceBuffer() {
    if (p_) cudaFree(p_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }

  T* get() const { return p_; }
  size_t size() const { return n_; }
  void upload(const std::vector<T>& host) {
    EXPECT_LE(host.size(), n_);
    RADIX_CUDA_CHECK(cudaMemcpy(p_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    RADIX_CUDA_CHECK(cudaDeviceSynchronize());
    if (n_) RADIX_CUDA_CHECK(cudaMemcpy(host.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }
  // All bytes 0xFF: NaN in both bf16 and fp32, so an unwritten element cannot pass a comparison.
  void poison() {
    if (n_) RADIX_CUDA_CHECK(cudaMemset(p_, 0xFF, n_ * sizeof(T)));
  }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

inline float to_float(bf16 v) { return __bfloat162float(v); }
inline bf16 to_bf16(float v) { return __float2bfloat16(v); }
inline float round_bf16(float v) { return to_float(to_bf16(v)); }

inline std::vector<bf16> random_bf16(size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<bf16> v(n);
  for (auto& x : v) x = to_bf16(dist(rng));
  return v;
}

inline std::vector<float> random_f32(size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

inline bool is_poison(bf16 v) {
  uint16_t bits;
  std::memcpy(&bits, &v, 2);
  return bits == 0xFFFF;
}
inline bool is_poison(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  return bits == 0xFFFFFFFFu;
}

// bf16 outputs: one rounding of an fp32 result (relative 2^-8) plus fp32 noise.
inline float bf16_tolerance(double ref) {
  return static_cast<float>(std::fabs(ref) / 128.0 + 1e-3);
}

}  // namespace radix::cuda::testing
