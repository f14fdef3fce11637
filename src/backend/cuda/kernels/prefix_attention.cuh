// Attention with the prefix cache's keys (docs/prefix_cache.md): every query row sees its own
// batch's keys under the batch's mask and, in the same softmax, the cached keys its anchor reaches.
// A bf16 tensor-core (wmma) flash kernel over (row, head) pairs of one kv head, split over the key
// blocks when the batch is small (a 64-row request against a 2,048-key cached prefix), with a
// combine step for the splits.
#pragma once

#include "backend/cuda/kernels/bf16.cuh"

namespace radix::cuda {

struct PrefixAttentionArgs {
  // The batch: q, k, v heads read in place ([rows, H*d] at row stride qkv_stride), out [rows,
  // Hq*d]. Batch key k is visible to query row r iff k <= r < visible_end[k] (the tree's
  // subtree_end; for a flat batch each row's sequence end, see causal_subtree_end), and with a
  // window also positions[r] - positions[k] < window unless k == r.
  const bf16* q = nullptr;
  const bf16* k = nullptr;
  const bf16* v = nullptr;
  int64_t qkv_stride = 0;
  bf16* out = nullptr;
  int64_t out_stride = 0;
  const int32_t* visible_end = nullptr;  // [rows]
  const int32_t* positions = nullptr;    // [rows], read only with a window
  int rows = 0;
  // The cached keys, a trie of their own in DFS pre-order: prefix key k is visible to query row r
  // iff k <= anchor[r] < prefix_end[k] (anchor -1: none), and with a window also
  // positions[r] - prefix_positions[k] < window.
  const bf16* prefix_k = nullptr;  // [prefix_rows, Hkv*d] at prefix_stride
  const bf16* prefix_v = nullptr;
  int64_t prefix_stride = 0;
  const int32_t* prefix_end = nullptr;        // [prefix_rows]
  const int32_t* prefix_positions = nullptr;  // [prefix_rows], read only with a window
  const int32_t* anchor = nullptr;            // [rows]
  int prefix_rows = 0;
  int num_q_heads = 0;
  int num_kv_heads = 0;  // divides num_q_heads (GQA)
  int head_dim = 0;      // even, <= 256
  float scale = 0;
  float softcap = 0;  // > 0: logit = softcap * tanh(logit / softcap)
  int window = 0;     // > 0: sliding window in positions
  // true: the wmma kernel whatever the shape (benchmarks and tests compare the two); otherwise it
  // runs only where the mma.sync kernel cannot (head_dim > 128, rows not 16-byte aligned).
  bool force_wmma = false;
};

// How many ways the key blocks are split (1: no workspace, no combine) for this shape on a GPU of
// `sm_count` multiprocessors.
int prefix_attention_splits(int rows, int prefix_rows, int num_q_heads, int num_kv_heads,
                            int sm_count);
// Workspace for `splits` (0 for 1).
size_t prefix_attention_workspace_bytes(int rows, int num_q_heads, int head_dim, int splits);

// Softmax in fp32, P rounded to bf16 for the P.V product (as the fast tree kernels). Every valid
// row sees itself, so no row's sum is zero. Returns cudaErrorInvalidValue for a shape outside the
// contract or a workspace smaller than prefix_attention_workspace_bytes.
cudaError_t prefix_attention(const PrefixAttentionArgs& args, int splits, void* workspace,
                             size_t workspace_bytes, cudaStream_t stream);

}  // namespace radix::cuda
