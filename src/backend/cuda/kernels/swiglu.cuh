// SwiGLU on the output of the fused gate/up projection.
#pragma once

#include "backend/cuda/kernels/bf16.cuh"

namespace radix::cuda {

// gate_up: [rows, 2*inter] bf16, row stride in_stride; columns [0, inter) are the gate
//          projection, [inter, 2*inter) the up projection
// out:     [rows, inter] bf16, row stride out_stride
// out = silu(gate) * up in fp32, rounded once. rows may be 0.
cudaError_t swiglu(const bf16* gate_up, int64_t in_stride, bf16* out, int64_t out_stride,
                   int64_t rows, int inter, cudaStream_t stream);

}  // namespace radix::cuda
