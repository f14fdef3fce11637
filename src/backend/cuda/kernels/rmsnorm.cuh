// RMSNorm, optionally adding a bf16 delta into the residual stream first.
#pragma once

#include <cstdint>

#include "backend/cuda/kernels/bf16.cuh"

namespace radix::cuda {

// x:     [rows, hidden] TX (fp32 residual stream or bf16 activations), row stride x_stride;
//        updated in place when delta is given
// delta: [rows, hidden] bf16, row stride delta_stride; nullptr adds nothing
// weight:[hidden] bf16
// out:   [rows, hidden] TO, row stride out_stride
// x += delta; out = x * rsqrt(mean(x^2) + eps) * weight, in fp32 with one rounding to TO; with
// unit_offset the factor is (1 + weight) in fp32 instead (Gemma's RMSNorm).
// The sum of delta into a bf16 x is rounded to bf16 before the norm reads it (as it is stored).
// TX, TO are float or bf16. rows may be 0.
template <typename TX, typename TO>
cudaError_t add_rmsnorm(TX* x, int64_t x_stride, const bf16* delta, int64_t delta_stride,
                        const bf16* weight, TO* out, int64_t out_stride, int64_t rows, int hidden,
                        float eps, cudaStream_t stream, bool unit_offset = false);

// As add_rmsnorm, but out is e4m3 ([rows, hidden] bytes, row stride out_stride) with one fp32
// scale per row in out_scale[rows]: the kernel takes each row's amax over the fp32 normed values
// and quantises them as quantize_e4m3_rows (kernels/fp8.cuh) would, with no bf16 rounding in
// between and no extra pass over memory (the fp8 forward's GEMM inputs).
template <typename TX>
cudaError_t add_rmsnorm_e4m3(TX* x, int64_t x_stride, const bf16* delta, int64_t delta_stride,
                             const bf16* weight, uint8_t* out, int64_t out_stride, float* out_scale,
                             int64_t rows, int hidden, float eps, cudaStream_t stream,
                             bool unit_offset = false);

}  // namespace radix::cuda
