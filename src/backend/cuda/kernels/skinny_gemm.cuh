// y[M, N] = x[M, K] @ w[N, K]^T for few rows (M <= 128): bf16 operands, fp32 accumulation, the
// layout of radix::cuda::Gemm. At such M a projection is a weight stream: every weight byte is
// used by only M rows, so the GEMM should read w at the GPU's copy bandwidth. cuBLASLt does not
// at M = 64 on the H200 (2-3 TB/s on Qwen3-8B's shapes, under 1 TB/s on Qwen3-0.6B's, against
// ~4.3 TB/s device-to-device; issue 14), mostly because its tiles leave too few bytes in flight.
//
// The kernel: a CTA of 4 warps owns BN (64 or 128) output columns and one slice of K (split-K,
// chosen so that the grid holds about two CTAs per SM); w and x tiles stream through a multi-stage
// cp.async pipeline into swizzled shared memory (~96 KB a CTA), the products are mma.sync
// m16n8k16 (bf16 in, fp32 accumulate). With split-K each CTA writes its fp32 partial tile to the
// workspace and the last CTA of an N tile (an atomic ticket it resets) sums the slices in slice
// order and applies the epilogue: no float atomics, so the result is the same on every run.
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/cuda/kernels/bf16.cuh"

namespace radix::cuda {

// The most rows skinny_gemm takes.
constexpr int64_t kSkinnyGemmMaxRows = 128;
// Ticket counters at the start of the workspace: one per N tile of a split-K call (more tiles
// run unsplit). They must be zero before the first call (cudaMemset) and every call leaves them
// zero.
constexpr int64_t kSkinnyGemmCounters = 4096;
constexpr size_t kSkinnyGemmCounterBytes = kSkinnyGemmCounters * sizeof(int);

// Whether skinny_gemm accepts these operands: 1 <= m <= kSkinnyGemmMaxRows, k, ldx and ldw
// multiples of 8 and x, w 16-byte aligned (every tile row is 16-byte cp.async copies). Otherwise
// the caller uses another GEMM.
bool skinny_gemm_supported(const void* x, int64_t ldx, const void* w, int64_t ldw, int64_t m,
                           int64_t n, int64_t k);

// The workspace bytes a call with this split needs (counters included).
size_t skinny_gemm_workspace_bytes(int64_t m, int64_t n, int bn, int splits);

// x: [m, k] bf16, row stride ldx; w: [n, k] bf16, row stride ldw; y: [m, n] TO (bf16 or float),
// row stride ldy; bias: optional [n] of TO. y = x @ w^T (+ bias) (+ y when accumulate), summed in
// fp32 and rounded once to TO. workspace: see kSkinnyGemmCounters; a call reduces its split to
// what workspace_bytes holds. Calls sharing a workspace must be ordered (one stream).
// bn (64 or 128) and splits (>= 1) pick the tiling; 0 lets the kernel choose (the benchmark
// passes them to compare tilings). Returns cudaErrorInvalidValue, launching nothing, when the
// operands are not supported or the arguments are bad.
template <typename TO>
cudaError_t skinny_gemm(const bf16* x, int64_t ldx, const bf16* w, int64_t ldw, TO* y,
                        int64_t ldy, int64_t m, int64_t n, int64_t k, bool accumulate,
                        const TO* bias, void* workspace, size_t workspace_bytes,
                        cudaStream_t stream, int bn = 0, int splits = 0);

}  // namespace radix::cuda
