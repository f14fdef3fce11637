// The CUDA backend: bf16 weights and activations, an fp32 residual stream, fp32 accumulation,
// cuBLASLt GEMMs and radix's own kernels (kernels/ and attention.cuh). One backend object per
// worker: it owns a CUDA stream, the cuBLASLt handle and workspace, and grow-only scratch for
// attention, so a steady-state forward allocates nothing and never synchronises the host.
//
// Environment, read at creation (docs/cuda.md): RADIX_CUDA_PROFILE=1 (per-op event timing, see
// take_cuda_profile), RADIX_CUDA_GEMM_AUTOTUNE=1 (time cuBLASLt candidates per shape),
// RADIX_CUDA_POISON=1 (new allocations filled with NaN bytes, for tests),
// RADIX_CUDA_REFERENCE_ATTENTION=1 (the simple reference attention kernel, for debugging).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "backend/backend.h"

namespace radix {

// options.device: "cuda" (device 0) or "cuda:N". Throws std::runtime_error when no such GPU is
// usable (no driver, no device, N out of range).
std::unique_ptr<Backend> make_cuda_backend(const BackendOptions& options);

// Device time per kind of op, measured with CUDA events around every op when the environment
// variable RADIX_CUDA_PROFILE=1 is set at backend creation (the events cost a little; leave it off
// for headline timings), and the memory high-water mark, always kept.
struct CudaProfile {
  bool timed = false;       // false: profiling off, the *_ms fields are 0
  double gemm_ms = 0;       // linear (cuBLASLt and the small-head kernel)
  double attention_ms = 0;  // attention, including the scatter mode's mask setup
  double other_ms = 0;      // the five below: everything but GEMMs and attention
  double norm_ms = 0;       //   rms_norm, add_rms_norm
  double rope_ms = 0;       //   qk_norm_rope
  double swiglu_ms = 0;     //   swiglu
  double gather_ms = 0;     //   embedding, gather_rows
  double quantize_ms = 0;   //   fp8: quantize_fp8_rows and linear_fp8's activation quantisation
  int64_t ops = 0;
  // Host milliseconds the ops took to queue their device work (kernel launches, cuBLASLt calls,
  // their set-up), by the same kinds: where a forward the host paces spends its time.
  double host_gemm_ms = 0;
  double host_attention_ms = 0;
  double host_other_ms = 0;
  int64_t peak_bytes = 0;  // peak bytes allocated through this backend (weights, arena, scratch)
};

// Totals since the previous call, then resets them (the peak restarts at the current use).
// Synchronises the backend's stream. nullopt for a non-CUDA backend.
std::optional<CudaProfile> take_cuda_profile(Backend& backend);

// Bytes free on the backend's GPU now (cudaMemGetInfo), for budgets sized after the model's
// allocations (the prefix cache's default). nullopt for a non-CUDA backend.
std::optional<int64_t> cuda_free_memory_bytes(Backend& backend);

}  // namespace radix
