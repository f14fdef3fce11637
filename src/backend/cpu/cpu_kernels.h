// The CPU backend's kernels: plain functions over raw fp32 pointers with explicit row strides (in
// elements), parallel over rows with OpenMP using `threads` (>= 1) threads.
#pragma once

#include <cstdint>

#include "backend/backend.h"

namespace radix::cpu {

// dst[i] = float(src[i]) for a contiguous array of `count` elements of `src_dtype` (f32/bf16/f16).
void convert_to_f32(const void* src, DType src_dtype, float* dst, int64_t count);

// out = x * rsqrt(mean(x^2) + eps) * w (or * (1 + w) with plus_one).  x: [n, h] (stride sx);
// w: [h]; out: [n, h] (stride so).
void rms_norm(const float* x, int64_t sx, const float* w, float* out, int64_t so, int64_t n,
              int64_t h, float eps, bool plus_one, int threads);

// residual += delta; normed = rms_norm(residual) as above.  All [n, h] with their own strides.
void add_rms_norm(float* residual, int64_t sr, const float* delta, int64_t sd, const float* w,
                  float* normed, int64_t sn, int64_t n, int64_t h, float eps, bool plus_one,
                  int threads);

// In place on qkv: [n, (hq + 2 hkv) * d] (stride s): per-head RMSNorm of the hq q heads (weight
// qw [d]) and hkv k heads (kw [d]), then rotate-half RoPE at positions[r]. d is even.
void qk_norm_rope(float* qkv, int64_t s, int64_t n, int hq, int hkv, int d, const float* qw,
                  const float* kw, const int32_t* positions, float eps, float theta, int threads);

// In place on qkv (layout as above): rotate-half RoPE of the hq q heads and hkv k heads at angle
// fp32(positions[r]) * inv_freq[i] (inv_freq: [d/2]). d is even.
void rope(float* qkv, int64_t s, int64_t n, int hq, int hkv, int d, const int32_t* positions,
          const float* inv_freq, int threads);

// The interval mask: key row k is visible to the query rows q with visible_begin[k] <= q <
// visible_end[k] (visible_begin == nullptr: visible_begin[k] = k, the causal rule), and, with
// window > 0, positions[q] - positions[k] < window. Tree: visible_end = subtree_end; varlen
// causal: the end of k's sequence; bidirectional: k's sequence [begin, end).
struct IntervalMask {
  const int32_t* visible_begin = nullptr;
  const int32_t* visible_end = nullptr;
  const int32_t* positions = nullptr;  // read only when window > 0
  int32_t window = 0;
};

// Keys from earlier batches (the prefix cache): p rows of [k heads | v heads] (stride s), a trie
// of their own; query row q also sees prefix row k iff k <= anchor[q] < subtree_end[k] (and,
// with the mask's window, mask.positions[q] - positions[k] < window).
struct PrefixKeysCpu {
  const float* kv = nullptr;
  int64_t stride = 0;
  int64_t rows = 0;
  const int32_t* subtree_end = nullptr;
  const int32_t* positions = nullptr;  // read only when the mask has a window
  const int32_t* anchor = nullptr;     // [n], -1: none
};

// Attention over an interval mask, scores = scale * q.k, soft-capped (softcap * tanh(s /
// softcap)) when softcap > 0.  qkv as above; out: [n, hq * d] (stride so). Tiles of keys no
// query of a query tile can see are skipped. With `prefix`, each query row's softmax also runs
// over the prefix keys it sees (before its own keys: they are its ancestors).
void attention_interval(const float* qkv, int64_t s, int64_t n, int hq, int hkv, int d, float scale,
                        float softcap, const IntervalMask& mask, float* out, int64_t so,
                        int threads, const PrefixKeysCpu* prefix = nullptr);

// out[index[r]] = src[r] for index[r] >= 0; 4-byte elements, `cols` per row. Throws BackendError
// for an index >= out_rows.
void scatter_rows(const void* src, int64_t ss, const int32_t* index, int64_t n, void* out,
                  int64_t so, int64_t out_rows, int64_t cols, int threads);

// out = x @ w^T (+ out if accumulate).  x: [n, k]; w: [m, k]; out: [n, m]. OpenBLAS sgemm on
// blocks of rows (or of output columns when n is small), one block per OpenMP thread.
void linear(const float* x, int64_t sx, const float* w, int64_t sw, float* out, int64_t so,
            int64_t n, int64_t m, int64_t k, bool accumulate, int threads);

// out = act(gate_up[:, :i]) * gate_up[:, i:].  gate_up: [n, 2i] (stride sg); out: [n, i].
void gated_activation(const float* gate_up, int64_t sg, Activation act, float* out, int64_t so,
                      int64_t n, int64_t i, int threads);

// x[r, :] *= scale.  x: [n, c] (stride sx).
void scale_rows(float* x, int64_t sx, int64_t n, int64_t c, float scale, int threads);

// out[r, :] = bias (a [m] row) for the n rows of out, or out[r, :] += bias with accumulate.
void broadcast_bias(const float* bias, float* out, int64_t so, int64_t n, int64_t m,
                    bool accumulate, int threads);

// out[r] = src[index[r]] (or zeros where index[r] < 0); 4-byte elements, `cols` per row.
// Throws BackendError for an index >= src_rows.
void gather_rows(const void* src, int64_t ss, int64_t src_rows, const int32_t* index, void* out,
                 int64_t so, int64_t n, int64_t cols, int threads);

}  // namespace radix::cpu
