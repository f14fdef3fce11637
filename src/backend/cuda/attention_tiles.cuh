// Tile shapes of the attention kernels, exposed so that tests cover each one and the benchmark
// can compare them. attention.cuh's functions use kAttentionDefaultTiles.
#pragma once

#include "backend/cuda/attention.cuh"

namespace radix::cuda {

// Three shapes: the two warp-specialised ones the sm_90a defaults pick, and the mma.sync one
// every other build uses. Six more (fa2_q128, wgmma_q64_n64, wgmma_q128_n64, wgmma_q128_n128 and
// the register-Q wgmma_q64_n64_rq / wgmma_q128_n64_rq) were retired once no default reached them
// (docs/attention.md, "Retired tile shapes").
enum class AttentionTiles {
  // mma.sync (FlashAttention-2 structure), 4 warps, 64 query and 64 key rows per step, 80 KB
  // shared memory, 2 blocks per SM; any sm_80+ build, head_dim 128.
  kFa2Q64 = 0,
  // Warp-specialised (FlashAttention-3 structure, sm_90a): a TMA producer warpgroup and two
  // consumer warpgroups of 64 query rows in ping-pong, 128 query rows, 1 block per SM.
  kWgmmaWsQ128N128 = 1,  // 128 key rows per step, 193 KB
  kWgmmaWsQ128N64 = 2,   // 64 key rows per step, 129 KB
};

// The shapes attention_varlen_causal and attention_tree use, among those this build supports:
// the fastest in bench/attention_bench.cc on the H200 (bench/RESULTS.md, "CUDA attention") that
// is nowhere slower than the previous default. The tree's depends on the mean number of keys a
// row sees (attention_tree's hint; 0 = unknown): 128-key tiles from kTreeWideTilesMinKeys on.
// Head dimension 256 uses the 64-key warp-specialised shape for both.
AttentionTiles attention_varlen_default_tiles(int head_dim = kAttentionHeadDim);
inline constexpr double kTreeWideTilesMinKeys = 256;
AttentionTiles attention_tree_default_tiles(double mean_visible_keys = 0,
                                            int head_dim = kAttentionHeadDim);

// False for the warp-specialised shapes when attention.cu was built without sm_90a
// (RADIX_ATTENTION_SM90A), and for shapes without kernels of that head dimension (128: all; 64:
// the warp-specialised ones; 256: kWgmmaWsQ128N64); the *_tiles functions then return
// cudaErrorNotSupported. Every shape runs with and without options (soft-cap, window,
// bidirectional).
bool attention_tiles_supported(AttentionTiles tiles, int head_dim = kAttentionHeadDim);

inline constexpr AttentionTiles kAttentionAllTiles[] = {
    AttentionTiles::kFa2Q64, AttentionTiles::kWgmmaWsQ128N128, AttentionTiles::kWgmmaWsQ128N64};

const char* attention_tiles_name(AttentionTiles tiles);

cudaError_t attention_varlen_causal_tiles(
    AttentionTiles tiles, const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v,
    __nv_bfloat16* out, int64_t q_row_stride, int64_t kv_row_stride, int64_t out_row_stride,
    const int32_t* cu_seqlens_dev, int num_seqs, int max_seqlen, int total_rows, int num_q_heads,
    int num_kv_heads, float scale, cudaStream_t stream, const AttentionOptions& options = {});

cudaError_t attention_tree_tiles(AttentionTiles tiles, const __nv_bfloat16* q,
                                 const __nv_bfloat16* k, const __nv_bfloat16* v, __nv_bfloat16* out,
                                 int64_t q_row_stride, int64_t kv_row_stride,
                                 int64_t out_row_stride, const int32_t* subtree_end_dev,
                                 int num_rows, int num_q_heads, int num_kv_heads, float scale,
                                 void* workspace, size_t workspace_bytes, cudaStream_t stream,
                                 const AttentionOptions& options = {});

}  // namespace radix::cuda
