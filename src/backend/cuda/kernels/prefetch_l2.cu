#include <cstdint>

#include "backend/cuda/kernels/launch.cuh"
#include "backend/cuda/kernels/prefetch_l2.cuh"

namespace radix::cuda {
namespace {

// One block a share of the range, one thread of it issuing the share as bulk prefetches, which
// the copy engine of the block's SM turns into L2 requests on its own: a few instructions per
// share, and the requests of many SMs in flight at once.
constexpr size_t kShareBytes = size_t{256} << 10;
constexpr size_t kRequestBytes = size_t{32} << 10;

__global__ void prefetch_l2_kernel(const char* base, size_t bytes) {
  // Issued before waiting for the predecessor: nothing here reads a value (prefetch_l2.cuh), and
  // the earlier the requests go out, the more of the transfer the next kernels hide.
  const size_t begin = static_cast<size_t>(blockIdx.x) * kShareBytes;
  if (threadIdx.x == 0 && begin < bytes) {
    const size_t end = begin + kShareBytes < bytes ? begin + kShareBytes : bytes;
    for (size_t off = begin; off < end; off += kRequestBytes) {
      const size_t n = end - off < kRequestBytes ? end - off : kRequestBytes;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
      asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(base + off),
                   "r"(static_cast<uint32_t>(n))
                   : "memory");
#endif
    }
  }
  begin_kernel();
}

}  // namespace

cudaError_t prefetch_l2(const void* p, size_t bytes, cudaStream_t stream) {
  const uintptr_t first = (reinterpret_cast<uintptr_t>(p) + 15) & ~uintptr_t{15};
  const uintptr_t last = (reinterpret_cast<uintptr_t>(p) + bytes) & ~uintptr_t{15};
  if (p == nullptr || last <= first) return cudaSuccess;
  const size_t n = last - first;
  const unsigned blocks = static_cast<unsigned>((n + kShareBytes - 1) / kShareBytes);
  launch_kernel(prefetch_l2_kernel, blocks, 32, 0, stream, reinterpret_cast<const char*>(first), n);
  return cudaGetLastError();
}

}  // namespace radix::cuda
