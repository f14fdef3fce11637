// Row gathers between the compact (trie) layout and the flat ragged layout, and the embedding
// lookup that starts the residual stream.
#pragma once

#include "backend/cuda/kernels/bf16.cuh"

namespace radix::cuda {

// src: [*, >=cols] bf16, row stride src_stride
// idx: [n] int32 device; a negative index writes a zero row (padding rows of the fold plan)
// dst: [n, >=cols] bf16, row stride dst_stride
// dst[i, :cols] = src[idx[i], :cols]. Used for scatter mode (compact -> flat by plan.scatter,
// flat -> compact by plan.gather) and for picking last-token rows. n may be 0.
cudaError_t gather_rows(const bf16* src, int64_t src_stride, const int32_t* idx, int64_t n,
                        int cols, bf16* dst, int64_t dst_stride, cudaStream_t stream);

// The same for fp32 rows (the residual stream).
cudaError_t gather_rows_f32(const float* src, int64_t src_stride, const int32_t* idx, int64_t n,
                            int cols, float* dst, int64_t dst_stride, cudaStream_t stream);

// table: [vocab, hidden] bf16, row stride table_stride (the embedding matrix)
// ids:   [rows] int32 device
// out:   [rows, hidden] TO (float: the fp32 residual stream, or bf16), row stride out_stride
// An id outside [0, vocab) gets a zero row and sets *bad_id (device int32, may be nullptr) to 1,
// so the caller can report it at its next synchronisation instead of reading out of bounds.
// scale != 1 (Gemma's sqrt(hidden), passed already rounded to bf16): each element becomes
// bf16(e * scale), the product transformers takes in the model's dtype.
template <typename TO>
cudaError_t embedding_gather(const bf16* table, int64_t table_stride, int64_t vocab,
                             const int32_t* ids, int64_t rows, int hidden, TO* out,
                             int64_t out_stride, int32_t* bad_id, cudaStream_t stream,
                             float scale = 1.0f);

}  // namespace radix::cuda
