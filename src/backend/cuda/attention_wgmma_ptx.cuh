// Hopper warpgroup MMA (wgmma, sm_90a only) and the shared-memory descriptors it reads, for the
// attention kernel in attention_wgmma.cuh. Operand tiles use the 128-byte swizzle: 8 rows of 128
// bytes form a 1024-byte atom whose 16-byte chunk c of row r sits at chunk c ^ (r % 8).
#pragma once

#include <cstdint>

namespace radix::cuda::ptx {

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define RADIX_WGMMA_ASM(...) asm volatile(__VA_ARGS__)
#else
// Built for a target without wgmma: the kernels using it are never launched there
// (attention.cu refuses them), so the instructions become a trap.
#define RADIX_WGMMA_ASM(...) asm volatile("trap;")
#endif

// Descriptor of a 128B-swizzled operand at shared address `addr` (atoms 1024-byte aligned).
// K-major operands: lbo unused (16), sbo = bytes between 8-row groups. MN-major operands: lbo =
// bytes between 64-element blocks along M/N, sbo = bytes between 8-row groups along K.
__device__ __forceinline__ uint64_t wgmma_desc_sw128(uint32_t addr, uint32_t lbo, uint32_t sbo) {
  return static_cast<uint64_t>((addr & 0x3FFFF) >> 4) |
         (static_cast<uint64_t>((lbo & 0x3FFFF) >> 4) << 16) |
         (static_cast<uint64_t>((sbo & 0x3FFFF) >> 4) << 32) | (uint64_t{1} << 62);
}

__device__ __forceinline__ void wgmma_fence() {
  RADIX_WGMMA_ASM("wgmma.fence.sync.aligned;\n" ::: "memory");
}

__device__ __forceinline__ void wgmma_commit() {
  RADIX_WGMMA_ASM("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}

template <int kPending>
__device__ __forceinline__ void wgmma_wait() {
  RADIX_WGMMA_ASM("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}

// Orders ordinary shared-memory writes (cp.async included) before later reads by the tensor
// cores' async proxy; each writing thread runs it before the barrier.
__device__ __forceinline__ void fence_proxy_async_shared() {
  RADIX_WGMMA_ASM("fence.proxy.async.shared::cta;\n" ::: "memory");
}

// Pins a register between asynchronous MMAs and their waits: the compiler may not move its reads
// or writes across this point (the wgmma asm statements themselves do not say when they finish).
__device__ __forceinline__ void fence_operand(float& x) { asm volatile("" : "+f"(x)::"memory"); }
__device__ __forceinline__ void fence_operand(uint32_t& x) { asm volatile("" : "+r"(x)::"memory"); }

// The accumulator operands: d[n][4] of an m64nN product, as N / 2 "+f" operands numbered from %0
// (RADIX_WGMMA_D32 for N = 64, RADIX_WGMMA_D64 for N = 128), and their register list in the
// instruction text. Spelled out once here instead of in every wrapper.
#define RADIX_WGMMA_D4(d, n) "+f"(d[n][0]), "+f"(d[n][1]), "+f"(d[n][2]), "+f"(d[n][3])
#define RADIX_WGMMA_D32(d)                                                                \
  RADIX_WGMMA_D4(d, 0), RADIX_WGMMA_D4(d, 1), RADIX_WGMMA_D4(d, 2), RADIX_WGMMA_D4(d, 3), \
      RADIX_WGMMA_D4(d, 4), RADIX_WGMMA_D4(d, 5), RADIX_WGMMA_D4(d, 6), RADIX_WGMMA_D4(d, 7)
#define RADIX_WGMMA_D64(d)                                                                        \
  RADIX_WGMMA_D32(d), RADIX_WGMMA_D4(d, 8), RADIX_WGMMA_D4(d, 9), RADIX_WGMMA_D4(d, 10),          \
      RADIX_WGMMA_D4(d, 11), RADIX_WGMMA_D4(d, 12), RADIX_WGMMA_D4(d, 13), RADIX_WGMMA_D4(d, 14), \
      RADIX_WGMMA_D4(d, 15)
// clang-format off
#define RADIX_WGMMA_D32_TEXT \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define RADIX_WGMMA_D64_TEXT \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"
// clang-format on

// d (+)= A * B for a 64x64x16 step: A and B K-major in shared memory; scale_d 0 overwrites d.
__device__ __forceinline__ void wgmma_m64n64k16_ss(float (&d)[8][4], uint64_t desc_a,
                                                   uint64_t desc_b, int scale_d) {
  RADIX_WGMMA_ASM(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " RADIX_WGMMA_D32_TEXT
      ", %32, %33, p, 1, 1, 0, 0;\n}\n"
      : RADIX_WGMMA_D32(d)
      : "l"(desc_a), "l"(desc_b), "r"(scale_d));
}

// d (+)= A * B for a 64x128x16 step: A and B K-major in shared memory; scale_d 0 overwrites d.
__device__ __forceinline__ void wgmma_m64n128k16_ss(float (&d)[16][4], uint64_t desc_a,
                                                    uint64_t desc_b, int scale_d) {
  RADIX_WGMMA_ASM(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " RADIX_WGMMA_D64_TEXT
      ", %64, %65, p, 1, 1, 0, 0;\n}\n"
      : RADIX_WGMMA_D64(d)
      : "l"(desc_a), "l"(desc_b), "r"(scale_d));
}

// d += A * B for a 64x64x16 step: A in registers (the m16n8k16 A fragment per warp), B MN-major
// in shared memory (imm-trans-b = 1).
__device__ __forceinline__ void wgmma_m64n64k16_rs_mn(float (&d)[8][4], const uint32_t (&a)[4],
                                                      uint64_t desc_b) {
  RADIX_WGMMA_ASM(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " RADIX_WGMMA_D32_TEXT
      ", {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n"
      : RADIX_WGMMA_D32(d)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(1));
}

// d += A * B for a 64x128x16 step: A in registers (the m16n8k16 A fragment per warp), B MN-major
// in shared memory (imm-trans-b = 1).
__device__ __forceinline__ void wgmma_m64n128k16_rs_mn(float (&d)[16][4], const uint32_t (&a)[4],
                                                       uint64_t desc_b) {
  RADIX_WGMMA_ASM(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " RADIX_WGMMA_D64_TEXT
      ", {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
      : RADIX_WGMMA_D64(d)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(1));
}

#undef RADIX_WGMMA_D64_TEXT
#undef RADIX_WGMMA_D32_TEXT
#undef RADIX_WGMMA_D64
#undef RADIX_WGMMA_D32
#undef RADIX_WGMMA_D4
#undef RADIX_WGMMA_ASM

}  // namespace radix::cuda::ptx
