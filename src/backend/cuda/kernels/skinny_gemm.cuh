// y[M, N] = x[M, K] @ w[N, K]^T for few rows (M <= 128): bf16 operands, fp32 accumulation, the
// layout of radix::cuda::Gemm. At such M a projection is a stream of its weights (each weight
// byte serves only M rows), so the aim is to read w at the GPU's copy bandwidth (issue 14).
//
// The kernel: a CTA of 4 warps owns BN (64 or 128) output columns and one slice of K (split-K);
// w and x tiles stream through a multi-stage cp.async pipeline into swizzled shared memory (up to
// 112 KB a CTA, two CTAs an SM), the products are mma.sync m16n8k16 (bf16 in, fp32 accumulate).
// With split-K the CTAs of an N tile form one cluster: each leaves its fp32 tile in shared memory
// and sums a share of the tile over all of them, in slice order, through distributed shared
// memory, then applies the epilogue. No float atomics and no global workspace: the result is the
// same on every run.
//
// Measured on the H200 (docs/cuda.md, "Small-M GEMMs"): at parity with cuBLASLt on Qwen3-8B's
// shapes up to M = 16, 0.70-0.92x at M = 64 (mma.sync with ldmatrix fragments does not keep up
// with cuBLASLt's Hopper kernels once the tile has 64 rows), 1.16-1.88x on Qwen3-0.6B's shapes up
// to M = 16. So Gemm uses it only when asked (RADIX_CUDA_SKINNY_GEMM=1).
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/cuda/kernels/bf16.cuh"

namespace radix::cuda {

// The most rows skinny_gemm takes, and the most K slices (one cluster of CTAs per N tile).
constexpr int64_t kSkinnyGemmMaxRows = 128;
constexpr int kSkinnyGemmMaxSplits = 8;

// Whether skinny_gemm accepts these operands: 1 <= m <= kSkinnyGemmMaxRows, k, ldx and ldw
// multiples of 8 and x, w 16-byte aligned (every tile row is 16-byte cp.async copies). Otherwise
// the caller uses another GEMM.
bool skinny_gemm_supported(const void* x, int64_t ldx, const void* w, int64_t ldw, int64_t m,
                           int64_t n, int64_t k);

// Whether 17 to 64 rows take the warpgroup-MMA (wgmma) main loop: built for sm_90a (the CUDA
// build's default target) and RADIX_CUDA_SKINNY_WGMMA not "0". Decided once per process.
bool skinny_gemm_wgmma();

// The tiling skinny_gemm picks by itself: tile width (64 or 128 columns of w) and K slices.
struct SkinnyGemmTiling {
  int bn, splits;
};
SkinnyGemmTiling skinny_gemm_tiling(int64_t m, int64_t n, int64_t k);

// x: [m, k] bf16, row stride ldx; w: [n, k] bf16, row stride ldw; y: [m, n] TO (bf16 or float),
// row stride ldy; bias: optional [n] of TO. y = x @ w^T (+ bias) (+ y when accumulate), summed in
// fp32 and rounded once to TO. bn (64 or 128) and splits (1 to kSkinnyGemmMaxSplits) force the
// tiling; 0 takes skinny_gemm_tiling's (the benchmark forces them to compare). Returns
// cudaErrorInvalidValue, launching nothing, when the operands are not supported or the arguments
// are bad.
template <typename TO>
cudaError_t skinny_gemm(const bf16* x, int64_t ldx, const bf16* w, int64_t ldw, TO* y, int64_t ldy,
                        int64_t m, int64_t n, int64_t k, bool accumulate, const TO* bias,
                        cudaStream_t stream, int bn = 0, int splits = 0);

}  // namespace radix::cuda
