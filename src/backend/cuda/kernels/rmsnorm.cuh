// RMSNorm, optionally adding a bf16 delta into the residual stream first.
#pragma once

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

}  // namespace radix::cuda
