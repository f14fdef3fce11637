// The CUDA backend's fp8 ops (Backend::quantize_fp8_rows and Backend::linear_fp8): argument
// checks and the launches, kept apart from cuda_backend.cc, which forwards to them.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <functional>

#include "backend/backend.h"
#include "backend/cuda/gemm.h"

namespace radix::cuda {

// Grow-only device scratch by slot, from the backend (which counts the bytes).
enum class Fp8Slot { kActivation, kActivationScale, kProduct };
using Fp8ScratchFn = std::function<void*(Fp8Slot slot, size_t bytes)>;

// Throws BackendError naming the op for bad arguments, CudaError for a failed launch.
void quantize_fp8_rows(const Tensor& src, const Tensor& dst, const Tensor& scale,
                       cudaStream_t stream);

// Runs `launch` timed as the activation quantisation (quantize true) or as the GEMM (false).
using Fp8TimedFn = std::function<void(bool quantize, const std::function<void()>& launch)>;

void linear_fp8(Gemm& gemm, const Fp8ScratchFn& scratch, const Fp8TimedFn& timed,
                const Tensor& x, const Tensor& x_scale, const Tensor& w, const Tensor& w_scale,
                const Tensor& out, bool accumulate, const Tensor& bias, cudaStream_t stream);

}  // namespace radix::cuda
