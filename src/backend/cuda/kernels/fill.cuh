// Filling device tensors: random weights made on the device (an 8B model's 8e9 normals would take
// minutes on the host and 32 GB of fp32) and constants.
#pragma once

#include "backend/cuda/kernels/bf16.cuh"

namespace radix::cuda {

// dst: [rows, cols] T (float or bf16), row stride `stride`.
// dst[r, c] = std * radix::random_normal(seed, first_index + r * cols + c)
// (backend/random_fill.h), the same stream every backend draws, whatever the launch shape.
template <typename T>
cudaError_t fill_random_normal(T* dst, int64_t rows, int64_t cols, int64_t stride, uint64_t seed,
                               float std, uint64_t first_index, cudaStream_t stream);

// dst: [rows, cols] T (float, bf16 or int32), row stride `stride`; every element = value.
template <typename T>
cudaError_t fill_constant(T* dst, int64_t rows, int64_t cols, int64_t stride, T value,
                          cudaStream_t stream);

}  // namespace radix::cuda
