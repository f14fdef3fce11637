// Gated activations (SwiGLU, GeGLU) on the output of the fused gate/up projection.
#pragma once

#include "backend/cuda/kernels/bf16.cuh"

namespace radix::cuda {

enum class GateActivation {
  kSilu,      // silu(x) = x / (1 + e^-x)                                  (SwiGLU)
  kGeluTanh,  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))       (GeGLU, gelu_pytorch_tanh)
};

// gate_up: [rows, 2*inter] bf16, row stride in_stride; columns [0, inter) are the gate
//          projection, [inter, 2*inter) the up projection
// out:     [rows, inter] bf16, row stride out_stride
// out = act(gate) * up in fp32, rounded once. rows may be 0.
cudaError_t gated_activation(GateActivation act, const bf16* gate_up, int64_t in_stride, bf16* out,
                             int64_t out_stride, int64_t rows, int inter, cudaStream_t stream);

// SwiGLU: gated_activation(GateActivation::kSilu, ...).
inline cudaError_t swiglu(const bf16* gate_up, int64_t in_stride, bf16* out, int64_t out_stride,
                          int64_t rows, int inter, cudaStream_t stream) {
  return gated_activation(GateActivation::kSilu, gate_up, in_stride, out, out_stride, rows, inter,
                          stream);
}

}  // namespace radix::cuda
