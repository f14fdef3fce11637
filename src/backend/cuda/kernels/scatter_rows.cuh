// The inverse of gather_rows: rows written to given destinations (the prefix cache stores each
// new row's K/V in its slot, docs/prefix_cache.md).
#pragma once

#include <cstdint>

#include "backend/cuda/kernels/bf16.cuh"

namespace radix::cuda {

// src:  [n, >=cols] of elem_bytes-sized elements (2 or 4), row stride src_stride (elements)
// idx:  [n] int32 device
// dst:  [dst_rows, >=cols], row stride dst_stride
// dst[idx[i], :cols] = src[i, :cols] for every i with 0 <= idx[i] < dst_rows; rows with a
// negative index are skipped, and so are indices >= dst_rows (the device cannot throw: such an
// index is a caller bug that the CPU backend reports, here it never writes out of bounds).
// Indices must be distinct. n may be 0.
cudaError_t scatter_rows(const void* src, int64_t src_stride, const int32_t* idx, int64_t n,
                         int cols, int elem_bytes, void* dst, int64_t dst_stride, int64_t dst_rows,
                         cudaStream_t stream);

}  // namespace radix::cuda
