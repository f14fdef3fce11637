// Element type conversion on the device.
#pragma once

#include "backend/cuda/kernels/bf16.cuh"

namespace radix::cuda {

// dst[i] = float(src[i]) for i < n (exact: every bf16 is an fp32). Used for the bias of a GEMM
// with fp32 output, whose epilogue takes the bias in the output's type. n may be 0.
cudaError_t bf16_to_f32(const bf16* src, float* dst, int64_t n, cudaStream_t stream);

}  // namespace radix::cuda
