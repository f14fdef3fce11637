// Gated activations (SwiGLU, GeGLU) on the output of the fused gate/up projection.
#pragma once

#include <cstdint>

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

// As gated_activation, but out is e4m3 ([rows, inter] bytes, row stride out_stride) with one fp32
// scale per row in out_scale[rows], quantised from the fp32 products as quantize_e4m3_rows
// (kernels/fp8.cuh) would: the input of the fp8 down projection, without an extra pass. NaN
// products are left out of the amax and become e4m3 NaN. Where inter, the strides and the
// pointers allow 16-byte chunks (inter and strides multiples of 8, gate_up 16-byte and out 8-byte
// aligned) and a row fits the fast path (inter up to ~32,000), the products are computed once and
// held in registers; other shapes take the fallback below.
cudaError_t gated_activation_e4m3(GateActivation act, const bf16* gate_up, int64_t in_stride,
                                  uint8_t* out, int64_t out_stride, float* out_scale, int64_t rows,
                                  int inter, cudaStream_t stream);

// The fast path's shared memory for stages of prefetched rows, bytes a block (the default; the
// benchmark times others through gated_activation_e4m3_staged). On the H200 (bench/RESULTS.md)
// 48 KB ran inter 3072 at 2,720 GB/s against 2,495 with 100 KB and 2,497 with 200 KB, and inter
// 12288 at 3,400 against 3,399 and 2,810.
inline constexpr int kE4m3StageBudget = 48 * 1024;

// The fast path alone with stages of up to stage_budget bytes a block (at least two stages):
// cudaErrorNotSupported, nothing launched, where the shape or the GPU needs the fallback.
cudaError_t gated_activation_e4m3_staged(GateActivation act, const bf16* gate_up, int64_t in_stride,
                                         uint8_t* out, int64_t out_stride, float* out_scale,
                                         int64_t rows, int inter, int stage_budget,
                                         cudaStream_t stream);

// The same result (bit for bit) from the fallback kernel alone (any shape and alignment: one
// block per row, the products computed in two passes): what the fast path is tested and
// benchmarked against (tests/backend/cuda/gated_activation_test.cc, bench/fp8_kernels_bench.cu).
cudaError_t gated_activation_e4m3_fallback(GateActivation act, const bf16* gate_up,
                                           int64_t in_stride, uint8_t* out, int64_t out_stride,
                                           float* out_scale, int64_t rows, int inter,
                                           cudaStream_t stream);

// SwiGLU: gated_activation(GateActivation::kSilu, ...).
inline cudaError_t swiglu(const bf16* gate_up, int64_t in_stride, bf16* out, int64_t out_stride,
                          int64_t rows, int inter, cudaStream_t stream) {
  return gated_activation(GateActivation::kSilu, gate_up, in_stride, out, out_stride, rows, inter,
                          stream);
}

}  // namespace radix::cuda
