// y = x @ w^T for a weight of a few rows: the reranker's head (the "yes" and "no" rows of the LM
// head) and small classifiers. Two output columns do not fill a GEMM tile, so one warp computes
// each output element.
#pragma once

#include "backend/cuda/kernels/bf16.cuh"

namespace radix::cuda {

// x:   [n, k] TX (bf16 or float), row stride x_stride
// w:   [m, k] bf16, row stride w_stride
// out: [n, m] TO (float or bf16), row stride out_stride
// bias: optional [m] bf16
// out = x @ w^T + bias (+ out when accumulate), fp32 accumulation and sum, one rounding to TO.
// n or m may be 0.
template <typename TX, typename TO>
cudaError_t small_linear(const TX* x, int64_t x_stride, const bf16* w, int64_t w_stride, TO* out,
                         int64_t out_stride, int64_t n, int64_t m, int k, bool accumulate,
                         cudaStream_t stream, const bf16* bias = nullptr);

}  // namespace radix::cuda
