// Prefill attention on the GPU: FlashAttention-style kernels (bf16 tensor cores, fp32 online
// softmax) for head_dim 64, 128 and 256 with grouped-query heads, an optional logit soft-cap and
// an optional sliding window, under two masks:
//  - varlen causal: ragged sequences given by cu_seqlens, each attending causally to itself
//    (attention modes `off` and `scatter`), or bidirectionally (AttentionOptions::bidirectional);
//  - tree: compact rows of a fold plan in DFS pre-order, row k visible to query row q iff
//    k <= q < subtree_end[k] (attention mode `tree`).
// Design and numerics: docs/attention.md.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace radix::cuda {

inline constexpr int kAttentionHeadDim = 128;  // the default head dimension

// What the families beyond Qwen3 add (all off by default).
struct AttentionOptions {
  int head_dim = kAttentionHeadDim;  // D: 64, 128 or 256
  // > 0: the logit l = scale * q.k becomes softcap * tanh(l / softcap) before the softmax
  // (Gemma 2's attn_logit_softcapping).
  float softcap = 0.f;
  // > 0: key k is visible to query q only if pos(q) - pos(k) < window as well (a sliding window
  // in positions). Varlen: rows of a sequence are its consecutive positions. Tree: positions_dev.
  int window = 0;
  const int32_t* positions_dev = nullptr;  // tree with a window: [num_rows] int32, device
  // Varlen only: every row sees every row of its sequence (gte-Qwen2-style encoders); no window.
  bool bidirectional = false;
  // Tree only. -1: attention_tree computes the per-tile bounds of subtree_end (and of the
  // positions, with a window) into its workspace first, a small kernel of its own. >= 0: they are
  // there already, from attention_tree_bounds over the same subtree_end and positions with more
  // than tree_counter counters, and this call takes work counter tree_counter, which must still be
  // zero (unused since). A forward computes the bounds once and gives each layer its own counter.
  int tree_counter = -1;
};

// True when the default tile shapes of both masks have kernels for head_dim in this build (the
// warp-specialised ones need sm_90a); otherwise the caller needs another kernel.
bool attention_has_fast_kernels(int head_dim);

// q: [rows, Hq, D] bf16 at q + r*q_row_stride + h*D; k, v: [rows, Hkv, D] bf16 likewise with
// kv_row_stride; out: [rows, Hq, D] bf16 with out_row_stride. Strides are in elements, so Q/K/V
// can be read in place from a fused QKV projection ((Hq + 2*Hkv)*D per row). GQA: q head h reads
// kv head h / (Hq/Hkv). Pointers must be 16-byte aligned and strides multiples of 8 elements.
// cu_seqlens_dev: num_seqs + 1 non-decreasing row offsets starting at 0 (device memory);
// max_seqlen must be >= every sequence length (rows past it would be left unwritten). Rows of a
// sequence past total_rows are ignored. Returns cudaErrorInvalidValue on bad arguments (nothing is
// launched), cudaErrorNotSupported for a head dimension this build has no kernel for, otherwise
// the launch status.
cudaError_t attention_varlen_causal(const __nv_bfloat16* q, const __nv_bfloat16* k,
                                    const __nv_bfloat16* v, __nv_bfloat16* out,
                                    int64_t q_row_stride, int64_t kv_row_stride,
                                    int64_t out_row_stride, const int32_t* cu_seqlens_dev,
                                    int num_seqs, int max_seqlen, int total_rows, int num_q_heads,
                                    int num_kv_heads, float scale, cudaStream_t stream,
                                    const AttentionOptions& options = {});

// Bytes of device workspace attention_tree needs for num_rows rows (the per-kv-tile minimum and
// maximum of subtree_end and of the positions) and `counters` work counters (one per call that
// shares the bounds, see AttentionOptions::tree_counter). 8-byte aligned workspace required.
size_t attention_tree_workspace_bytes(int num_rows, int counters = 1);

// The per-tile bounds attention_tree reads, of subtree_end and, when positions_dev is not null, of
// the positions, into `workspace`, and `counters` zeroed work counters after them: computed once
// for calls that share a mask (each then passes its own AttentionOptions::tree_counter < counters).
// Returns cudaErrorInvalidValue for bad arguments or a workspace smaller than
// attention_tree_workspace_bytes(num_rows, counters).
cudaError_t attention_tree_bounds(const int32_t* subtree_end_dev, const int32_t* positions_dev,
                                  int num_rows, int counters, void* workspace,
                                  size_t workspace_bytes, cudaStream_t stream);

// Tree mask over compact rows in DFS pre-order: row k is visible to query q iff
// k <= q < subtree_end[k] (subtree_end_dev: num_rows entries, device memory). Same tensors and
// strides as attention_varlen_causal. Tiles of keys that no query of a query tile can see are
// skipped; tiles every query sees are computed without a mask. Any subtree_end contents are
// memory-safe; a row that sees nothing (not possible in a valid plan) gets zeros.
// mean_visible_keys (optional, 0 = unknown): the mean number of keys a row sees; it picks the
// key-tile size (docs/attention.md) and never changes the result. With a window, key tiles whose
// every (query, key) pair is out of it are skipped too.
cudaError_t attention_tree(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v,
                           __nv_bfloat16* out, int64_t q_row_stride, int64_t kv_row_stride,
                           int64_t out_row_stride, const int32_t* subtree_end_dev, int num_rows,
                           int num_q_heads, int num_kv_heads, float scale, void* workspace,
                           size_t workspace_bytes, cudaStream_t stream,
                           double mean_visible_keys = 0, const AttentionOptions& options = {});

}  // namespace radix::cuda
