#include <cuda_bf16.h>

#include "bench_fill.cuh"
#include "l2_prefetch_kernels.cuh"

namespace radix::bench {
namespace {

__global__ void fill(__nv_bfloat16* p, int64_t n, uint32_t seed) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    p[i] = __float2bfloat16(hashed_uniform(i, seed) * 0.1f);
  }
}

__global__ void wait_kernel(long long cycles) {
  const long long start = clock64();
  while (clock64() - start < cycles) {
  }
}

__global__ void line_prefetch_kernel(const char* p, int64_t bytes) {
  for (int64_t i = (blockIdx.x * int64_t{blockDim.x} + threadIdx.x) * 128; i < bytes;
       i += int64_t{gridDim.x} * blockDim.x * 128) {
    asm volatile("prefetch.global.L2 [%0];" ::"l"(p + i));
  }
}

__global__ void touch_kernel(const uint4* p, int64_t n, unsigned* sink) {
  unsigned acc = 0;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const uint4 v = p[i];
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x9e3779b9u) *sink = acc;  // keeps the loads
}

constexpr int64_t kShareBytes = int64_t{256} << 10;
constexpr int64_t kRequestBytes = int64_t{32} << 10;

__global__ void bulk_prefetch_kernel(const char* base, int64_t bytes) {
  const int64_t begin = blockIdx.x * kShareBytes;
  if (threadIdx.x != 0 || begin >= bytes) return;
  const int64_t end = begin + kShareBytes < bytes ? begin + kShareBytes : bytes;
  for (int64_t off = begin; off < end; off += kRequestBytes) {
    const int64_t n = end - off < kRequestBytes ? end - off : kRequestBytes;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(base + off),
                 "r"(static_cast<uint32_t>(n))
                 : "memory");
#endif
  }
}

}  // namespace

void bulk_prefetch(const void* p, int64_t bytes, cudaStream_t s) {
  const auto blocks = static_cast<unsigned>((bytes + kShareBytes - 1) / kShareBytes);
  if (blocks > 0) bulk_prefetch_kernel<<<blocks, 32, 0, s>>>(static_cast<const char*>(p), bytes);
}

void fill_bf16(void* p, int64_t n, uint32_t seed, cudaStream_t s) {
  fill<<<1024, 256, 0, s>>>(static_cast<__nv_bfloat16*>(p), n, seed);
}
void wait_cycles(long long cycles, cudaStream_t s) { wait_kernel<<<1, 32, 0, s>>>(cycles); }
void line_prefetch(const void* p, int64_t bytes, int blocks, cudaStream_t s) {
  line_prefetch_kernel<<<blocks, 256, 0, s>>>(static_cast<const char*>(p), bytes);
}
void touch(const void* p, int64_t bytes, unsigned* sink, int blocks, cudaStream_t s) {
  touch_kernel<<<blocks, 256, 0, s>>>(static_cast<const uint4*>(p), bytes / 16, sink);
}

}  // namespace radix::bench
