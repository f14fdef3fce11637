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

}  // namespace

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
