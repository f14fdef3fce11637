// The Hopper (sm_90a) instructions of the warp-specialised attention kernel
// (attention_wgmma_ws.cuh): shared-memory mbarriers, TMA tile loads that complete on them, named
// barriers between warpgroups and the per-warpgroup register reallocation.
#pragma once

#include <cstdint>

namespace radix::cuda::ptx {

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define RADIX_SM90A_ASM(...) asm volatile(__VA_ARGS__)
#else
// As in attention_wgmma_ptx.cuh: never launched without sm_90a, so a trap stands in.
#define RADIX_SM90A_ASM(...) asm volatile("trap;")
#endif

// mbarrier at shared address `bar` expecting `count` arrivals per phase.
__device__ __forceinline__ void mbarrier_init(uint32_t bar, uint32_t count) {
  RADIX_SM90A_ASM("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}

// Makes the initialised barriers visible to the TMA unit; a __syncthreads follows it.
__device__ __forceinline__ void fence_mbarrier_init() {
  RADIX_SM90A_ASM("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}

__device__ __forceinline__ void mbarrier_arrive(uint32_t bar) {
  RADIX_SM90A_ASM("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}

// One arrival that also announces `bytes` of TMA data: the phase completes once they have landed.
__device__ __forceinline__ void mbarrier_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  RADIX_SM90A_ASM("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes)
                  : "memory");
}

// Blocks until the phase of parity `parity` has completed. A fresh barrier is in phase 0, so
// waiting for parity 1 returns at once (the producer's first pass over empty slots).
__device__ __forceinline__ void mbarrier_wait(uint32_t bar, uint32_t parity) {
  uint32_t done = 0;
  do {
    RADIX_SM90A_ASM(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
        "selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  } while (done == 0);
}

// TMA: the box at coordinates (c0, c1, c2) of the tensor `tensor_map` (the address of a
// __grid_constant__ CUtensorMap) to shared address dst; completes `bytes` on barrier bar.
__device__ __forceinline__ void tma_load_3d(uint32_t dst, const void* tensor_map, uint32_t bar,
                                            int c0, int c1, int c2) {
  RADIX_SM90A_ASM(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%3, %4, %5}], [%2];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(tensor_map)), "r"(bar), "r"(c0), "r"(c1), "r"(c2)
      : "memory");
}

// Hardware barrier `id` (1..15; 0 is __syncthreads) over `threads` threads: sync waits for all of
// them, arrive counts this warp without waiting.
__device__ __forceinline__ void named_barrier_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
__device__ __forceinline__ void named_barrier_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// Per-warpgroup register budget, executed by all threads of a warpgroup: the producer gives
// registers back, the consumers take them.
template <int kRegs>
__device__ __forceinline__ void setmaxnreg_dec() {
  RADIX_SM90A_ASM("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}
template <int kRegs>
__device__ __forceinline__ void setmaxnreg_inc() {
  RADIX_SM90A_ASM("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}

#undef RADIX_SM90A_ASM

}  // namespace radix::cuda::ptx
