// Host side of the attention kernels (docs/attention.md): argument checks, the tile-shape
// dispatch, the TMA descriptors and the tree workspace pre-kernel. The kernels:
// attention_fa2.cuh (mma.sync) and attention_wgmma_ws.cuh (warp-specialised Hopper wgmma with
// TMA, built from attention_wgmma.cuh's pieces); this file is built for sm_90a.
#include <cuda.h>  // CUtensorMap and cuTensorMapEncodeTiled's types; the function comes from
                   // cudaGetDriverEntryPointByVersion, so there is no -lcuda
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <cstdint>

#include "backend/cuda/attention.cuh"
#include "backend/cuda/attention_fa2.cuh"
#include "backend/cuda/attention_masks.cuh"
#include "backend/cuda/attention_params.cuh"
#include "backend/cuda/attention_tiles.cuh"
#include "backend/cuda/attention_wgmma_ws.cuh"
#include "backend/cuda/kernels/launch.cuh"
#include "backend/cuda/kernels/per_device.h"

namespace radix::cuda {
namespace attention_detail {
namespace {

using bf16 = __nv_bfloat16;

#if defined(RADIX_ATTENTION_SM90A)
constexpr bool kHaveWgmma = true;
#else
constexpr bool kHaveWgmma = false;  // the wgmma instructions were compiled as traps
#endif

constexpr int kMaxGridY = 65535;
constexpr int kMaxGridZ = 65535;

// tile_minmax[j] = (min, max) of subtree_end over key tile j, and pos_minmax[j] the same of
// positions when there are any; one warp per tile. Also zeroes the `counters` work counters of the
// warp-specialised kernel (one per attention call that reads these bounds).
__global__ void tile_minmax_kernel(const int32_t* __restrict__ subtree_end,
                                   const int32_t* __restrict__ positions, int num_rows,
                                   int2* __restrict__ tile_minmax, int2* __restrict__ pos_minmax,
                                   int num_tiles, int* __restrict__ item_counters, int counters) {
  begin_kernel();
  if (blockIdx.x == 0) {
    for (int i = threadIdx.x; i < counters; i += blockDim.x) item_counters[i] = 0;
  }
  const int tile = static_cast<int>((blockIdx.x * blockDim.x + threadIdx.x) / 32);
  const int lane = static_cast<int>(threadIdx.x % 32);
  if (tile >= num_tiles) return;
  int lo = INT_MAX;
  int hi = INT_MIN;
  for (int i = lane; i < kMinmaxTile; i += 32) {
    const int row = tile * kMinmaxTile + i;
    if (row < num_rows) {
      const int e = subtree_end[row];
      lo = min(lo, e);
      hi = max(hi, e);
    }
  }
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) {
    lo = min(lo, __shfl_xor_sync(0xffffffffu, lo, offset));
    hi = max(hi, __shfl_xor_sync(0xffffffffu, hi, offset));
  }
  if (lane == 0) tile_minmax[tile] = make_int2(lo, hi);
  if (positions == nullptr) return;
  lo = INT_MAX;
  hi = INT_MIN;
  for (int i = lane; i < kMinmaxTile; i += 32) {
    const int row = tile * kMinmaxTile + i;
    if (row < num_rows) {
      const int pos = positions[row];
      lo = min(lo, pos);
      hi = max(hi, pos);
    }
  }
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) {
    lo = min(lo, __shfl_xor_sync(0xffffffffu, lo, offset));
    hi = max(hi, __shfl_xor_sync(0xffffffffu, hi, offset));
  }
  if (lane == 0) pos_minmax[tile] = make_int2(lo, hi);
}

template <class Kernel, class Mask>
cudaError_t launch(Kernel* kernel, int threads, int shared_bytes, const AttentionParams& p,
                   const Mask& mask, dim3 grid, cudaStream_t stream) {
  // Per call rather than cached: the attribute belongs to the current device.
  const cudaError_t err =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, shared_bytes);
  if (err != cudaSuccess) return err;
  launch_kernel(kernel, grid, threads, shared_bytes, stream, p, mask);
  return cudaGetLastError();
}

// Masks for a given key-tile size, from the arguments of one call. kOptions: the call has a
// soft-cap, a window or a bidirectional mask; without, the kernels compile to the plain path.
template <bool kOptions>
struct VarlenSpec {
  const int32_t* cu_seqlens;
  int total_rows;
  int window;
  bool causal;
  int tensor_rows() const { return total_rows; }
  // No workspace here: the warp-specialised kernel's blocks take their items in a fixed order.
  int* work_counter() const { return nullptr; }
  template <int kTileN>
  VarlenCausalMask<kTileN, kOptions> make() const {
    return {cu_seqlens, total_rows, window, causal};
  }
};

template <bool kOptions>
struct TreeSpec {
  const int32_t* subtree_end;
  const int2* tile_minmax;
  int num_rows;
  int* item_counter;  // zeroed by tile_minmax_kernel
  int window;
  const int32_t* positions;
  const int2* pos_minmax;
  int tensor_rows() const { return num_rows; }
  int* work_counter() const { return item_counter; }
  template <int kTileN>
  TreeMask<kTileN, kOptions> make() const {
    return {subtree_end, tile_minmax, num_rows, window, positions, pos_minmax};
  }
};

template <int kWarps, int kMinBlocks, int kD, class Spec>
cudaError_t launch_fa2(const AttentionParams& p, const Spec& spec, int rows, int grid_z,
                       int num_q_heads, cudaStream_t stream) {
  const int y = (rows + kWarps * 16 - 1) / (kWarps * 16);
  if (y > kMaxGridY) return cudaErrorInvalidValue;
  using Mask = decltype(spec.template make<kFa2TileN>());
  return launch(attention_fa2_kernel<kWarps, kMinBlocks, kD, Mask>, kWarps * 32,
                fa2_shared_bytes<kWarps, kD>(), p, spec.template make<kFa2TileN>(),
                dim3(num_q_heads, y, grid_z), stream);
}

using EncodeTiledFn = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*,
                                   const cuuint64_t*, const cuuint64_t*, const cuuint32_t*,
                                   const cuuint32_t*, CUtensorMapInterleave, CUtensorMapSwizzle,
                                   CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

// The driver's cuTensorMapEncodeTiled through the runtime (no link against libcuda), or null.
EncodeTiledFn encode_tiled() {
  static const EncodeTiledFn fn = [] {
    void* entry = nullptr;
    cudaDriverEntryPointQueryResult found{};
#if CUDART_VERSION >= 12050
    const cudaError_t err = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &entry,
                                                             12000, cudaEnableDefault, &found);
#else
    const cudaError_t err =
        cudaGetDriverEntryPoint("cuTensorMapEncodeTiled", &entry, cudaEnableDefault, &found);
#endif
    return err == cudaSuccess && found == cudaDriverEntryPointSuccess
               ? reinterpret_cast<EncodeTiledFn>(entry)
               : nullptr;
  }();
  return fn;
}

// TMA descriptor of [rows, heads, head_dim] bf16 at `base` (row stride in elements) read in boxes
// of 64 head dimensions x 1 head x box_rows rows, 128B-swizzled (the layout of Sw128Layout's
// column blocks). Rows at or past `rows` read as zeros.
bool encode_head_tensor_map(CUtensorMap* map, const bf16* base, int head_dim, int heads, int rows,
                            int64_t row_stride, int box_rows) {
  const EncodeTiledFn encode = encode_tiled();
  if (encode == nullptr) return false;
  const cuuint64_t dims[3] = {static_cast<cuuint64_t>(head_dim), static_cast<cuuint64_t>(heads),
                              static_cast<cuuint64_t>(rows)};
  const cuuint64_t strides[2] = {head_dim * sizeof(bf16),  // bytes between heads, then rows
                                 static_cast<cuuint64_t>(row_stride) * sizeof(bf16)};
  const cuuint32_t box[3] = {64, 1, static_cast<cuuint32_t>(box_rows)};
  const cuuint32_t element_strides[3] = {1, 1, 1};
  return encode(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, const_cast<bf16*>(base), dims, strides,
                box, element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

// make_head_tensor_map's descriptors, remembered per thread: a forward asks for the same q, k and
// v maps in every layer and batch after batch (the activations live in a grow-only arena), and
// encoding one costs the host a few microseconds, three a launch.
struct TensorMapKey {
  const bf16* base;
  int head_dim, heads, rows, box_rows;
  int64_t row_stride;
  // (C++17 here: no defaulted comparison.)
  bool operator==(const TensorMapKey& o) const {
    return base == o.base && head_dim == o.head_dim && heads == o.heads && rows == o.rows &&
           box_rows == o.box_rows && row_stride == o.row_stride;
  }
};

bool make_head_tensor_map(CUtensorMap* map, const bf16* base, int head_dim, int heads, int rows,
                          int64_t row_stride, int box_rows) {
  constexpr int kEntries = 16;
  struct Entry {
    TensorMapKey key;
    CUtensorMap map;
  };
  thread_local Entry entries[kEntries];
  thread_local int used = 0, next = 0;
  const TensorMapKey key{base, head_dim, heads, rows, box_rows, row_stride};
  for (int i = 0; i < used; ++i) {
    if (entries[i].key == key) {
      *map = entries[i].map;
      return true;
    }
  }
  if (!encode_head_tensor_map(map, base, head_dim, heads, rows, row_stride, box_rows)) return false;
  entries[next] = Entry{key, *map};  // the oldest entry makes room
  next = (next + 1) % kEntries;
  used = used < kEntries ? used + 1 : kEntries;
  return true;
}

template <int kTileN, int kD, class Spec>
cudaError_t launch_ws(const AttentionParams& p, const Spec& spec, int rows, int grid_z,
                      int num_q_heads, cudaStream_t stream) {
  const int y = (rows + kWsBlockM - 1) / kWsBlockM;
  if (y > kMaxGridY) return cudaErrorInvalidValue;
  const int num_kv_heads = num_q_heads / p.group;
  const int tensor_rows = spec.tensor_rows();
  AttentionTensorMaps maps;
  if (!make_head_tensor_map(&maps.q, p.q, kD, num_q_heads, tensor_rows, p.q_row_stride,
                            kWsBlockM) ||
      !make_head_tensor_map(&maps.k, p.k, kD, num_kv_heads, tensor_rows, p.kv_row_stride, kTileN) ||
      !make_head_tensor_map(&maps.v, p.v, kD, num_kv_heads, tensor_rows, p.kv_row_stride, kTileN)) {
    return cudaErrorNotSupported;
  }
  using Mask = decltype(spec.template make<kTileN>());
  auto* kernel = attention_ws_kernel<kTileN, kD, Mask>;
  constexpr int kSharedBytes = ws_shared_bytes<kTileN, kD>();
  static std::atomic<uint64_t> configured{0};
  const cudaError_t err = detail::once_per_device(configured, [kernel](int) {
    return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSharedBytes);
  });
  if (err != cudaSuccess) return err;
  // Persistent: one block per SM (shared memory and registers allow no more), each walking the
  // work list.
  const int sms = detail::sm_count_of_current_device();
  if (sms <= 0) return cudaErrorInvalidDevice;
  const WsWorkList list{num_q_heads, grid_z, y, int64_t{num_q_heads} * y * grid_z,
                        spec.work_counter()};
  const int blocks = static_cast<int>(std::min<int64_t>(list.items, sms));
  launch_kernel(kernel, blocks, kWsThreads, kSharedBytes, stream, maps, p,
                spec.template make<kTileN>(), list);
  return cudaGetLastError();
}

// Whether a tile shape has kernels for a head dimension: every shape for 128, the
// warp-specialised ones for 64, and only the 64-key one for 256 (a 128-key K/V ring of head
// dimension 256 does not fit in shared memory). Options change nothing here: every shape has a
// variant with them.
constexpr bool tiles_have_head_dim(AttentionTiles tiles, int head_dim) {
  switch (head_dim) {
    case 128:
      return true;
    case 64:
      return tiles == AttentionTiles::kWgmmaWsQ128N128 || tiles == AttentionTiles::kWgmmaWsQ128N64;
    case 256:
      return tiles == AttentionTiles::kWgmmaWsQ128N64;
    default:
      return false;
  }
}

// rows: query rows per grid column (the longest sequence, or all rows of the tree).
template <int kD, class Spec>
cudaError_t launch_tiles_d(AttentionTiles tiles, const AttentionParams& p, const Spec& spec,
                           int rows, int grid_z, int num_q_heads, cudaStream_t stream) {
  if constexpr (kD == 128) {
    if (tiles == AttentionTiles::kFa2Q64) {
      return launch_fa2<4, 2, kD>(p, spec, rows, grid_z, num_q_heads, stream);
    }
  }
  if constexpr (kD <= 128) {
    if (tiles == AttentionTiles::kWgmmaWsQ128N128) {
      return launch_ws<128, kD>(p, spec, rows, grid_z, num_q_heads, stream);
    }
  }
  if (tiles == AttentionTiles::kWgmmaWsQ128N64) {
    return launch_ws<64, kD>(p, spec, rows, grid_z, num_q_heads, stream);
  }
  return cudaErrorNotSupported;
}

template <class Spec>
cudaError_t launch_tiles(AttentionTiles tiles, int head_dim, const AttentionParams& p,
                         const Spec& spec, int rows, int grid_z, int num_q_heads,
                         cudaStream_t stream) {
  if (!attention_tiles_supported(tiles, head_dim)) {
    return cudaErrorNotSupported;
  }
  switch (head_dim) {
    case 64:
      return launch_tiles_d<64>(tiles, p, spec, rows, grid_z, num_q_heads, stream);
    case 128:
      return launch_tiles_d<128>(tiles, p, spec, rows, grid_z, num_q_heads, stream);
    case 256:
      return launch_tiles_d<256>(tiles, p, spec, rows, grid_z, num_q_heads, stream);
    default:
      return cudaErrorNotSupported;
  }
}

bool aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

// Shared argument checks; fills params on success.
bool check_tensors(const bf16* q, const bf16* k, const bf16* v, bf16* out, int64_t q_row_stride,
                   int64_t kv_row_stride, int64_t out_row_stride, int num_q_heads, int num_kv_heads,
                   float scale, const AttentionOptions& options, AttentionParams& params) {
  const int64_t d = options.head_dim;
  if (d != 64 && d != 128 && d != 256) return false;
  if (q == nullptr || k == nullptr || v == nullptr || out == nullptr) return false;
  if (!aligned16(q) || !aligned16(k) || !aligned16(v) || !aligned16(out)) return false;
  if (num_q_heads < 1 || num_kv_heads < 1 || num_q_heads % num_kv_heads != 0) return false;
  if (q_row_stride % 8 != 0 || kv_row_stride % 8 != 0 || out_row_stride % 8 != 0) return false;
  if (q_row_stride < num_q_heads * d || kv_row_stride < num_kv_heads * d ||
      out_row_stride < num_q_heads * d) {
    return false;
  }
  // The kernel takes the row max before scaling, which needs a positive scale.
  if (!(scale > 0.f) || !std::isfinite(scale)) return false;
  if (!(options.softcap >= 0.f) || !std::isfinite(options.softcap) || options.window < 0) {
    return false;
  }
  if (options.bidirectional && options.window > 0) return false;
  constexpr float kLog2e = 1.4426950408889634f;
  const bool softcap = options.softcap > 0.f;
  params = AttentionParams{q,
                           k,
                           v,
                           out,
                           q_row_stride,
                           kv_row_stride,
                           out_row_stride,
                           num_q_heads / num_kv_heads,
                           softcap ? options.softcap * kLog2e : scale * kLog2e,
                           softcap,
                           softcap ? 2.f * kLog2e * scale / options.softcap : 0.f};
  // A tiny cap could overflow the exponent's factor; tanh is then a sign function anyway.
  if (softcap && !std::isfinite(params.softcap_exp2)) return false;
  return true;
}

int window_or_none(const AttentionOptions& options) {
  return options.window > 0 ? options.window : INT_MAX;
}

bool any_option(const AttentionOptions& options) {
  return options.softcap > 0.f || options.window > 0 || options.bidirectional;
}

}  // namespace
}  // namespace attention_detail

using attention_detail::AttentionParams;
using attention_detail::kMinmaxTile;

bool attention_tiles_supported(AttentionTiles tiles, int head_dim) {
  if (!attention_detail::tiles_have_head_dim(tiles, head_dim)) return false;
  switch (tiles) {
    case AttentionTiles::kFa2Q64:
      return true;
    case AttentionTiles::kWgmmaWsQ128N128:
    case AttentionTiles::kWgmmaWsQ128N64:
      return attention_detail::kHaveWgmma;
  }
  return false;
}

// Measured on the H200 (bench/RESULTS.md, "CUDA attention"); mma.sync where wgmma is not built.
// Varlen: the warp-specialised 128 x 128 tiles are the fastest on every workload.
// Head dimension 256 has only the 64-key shape.
AttentionTiles attention_varlen_default_tiles(int head_dim) {
  if (!attention_detail::kHaveWgmma) return AttentionTiles::kFa2Q64;
  return head_dim > 128 ? AttentionTiles::kWgmmaWsQ128N64 : AttentionTiles::kWgmmaWsQ128N128;
}

// Tree: 128-key tiles are the fastest on long shared prefixes (syn P512 / P2048: 600-1900 keys
// per row) but lose to the 64-key ones where branches are short (rerank-like, ~110 keys per row:
// a 128-key tile is then mostly masked). Without a hint the 64-key shape, which beats the
// previous default everywhere.
AttentionTiles attention_tree_default_tiles(double mean_visible_keys, int head_dim) {
  if (!attention_detail::kHaveWgmma) return AttentionTiles::kFa2Q64;
  return mean_visible_keys >= kTreeWideTilesMinKeys && head_dim <= 128
             ? AttentionTiles::kWgmmaWsQ128N128
             : AttentionTiles::kWgmmaWsQ128N64;
}

bool attention_has_fast_kernels(int head_dim) {
  return attention_tiles_supported(attention_varlen_default_tiles(head_dim), head_dim) &&
         attention_tiles_supported(attention_tree_default_tiles(0, head_dim), head_dim) &&
         attention_tiles_supported(attention_tree_default_tiles(kTreeWideTilesMinKeys, head_dim),
                                   head_dim);
}

const char* attention_tiles_name(AttentionTiles tiles) {
  switch (tiles) {
    case AttentionTiles::kFa2Q64:
      return "fa2_q64";
    case AttentionTiles::kWgmmaWsQ128N128:
      return "wgmma_ws_q128_n128";
    case AttentionTiles::kWgmmaWsQ128N64:
      return "wgmma_ws_q128_n64";
  }
  return "unknown";
}

cudaError_t attention_varlen_causal_tiles(
    AttentionTiles tiles, const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v,
    __nv_bfloat16* out, int64_t q_row_stride, int64_t kv_row_stride, int64_t out_row_stride,
    const int32_t* cu_seqlens_dev, int num_seqs, int max_seqlen, int total_rows, int num_q_heads,
    int num_kv_heads, float scale, cudaStream_t stream, const AttentionOptions& options) {
  AttentionParams params;
  if (!attention_detail::check_tensors(q, k, v, out, q_row_stride, kv_row_stride, out_row_stride,
                                       num_q_heads, num_kv_heads, scale, options, params)) {
    return cudaErrorInvalidValue;
  }
  if (cu_seqlens_dev == nullptr || num_seqs < 0 || max_seqlen < 0 || total_rows < 0) {
    return cudaErrorInvalidValue;
  }
  if (num_seqs > attention_detail::kMaxGridZ) return cudaErrorInvalidValue;
  if (num_seqs == 0 || max_seqlen == 0 || total_rows == 0) return cudaSuccess;
  const int window = attention_detail::window_or_none(options);
  if (attention_detail::any_option(options)) {
    const attention_detail::VarlenSpec<true> spec{cu_seqlens_dev, total_rows, window,
                                                  !options.bidirectional};
    return attention_detail::launch_tiles(tiles, options.head_dim, params, spec, max_seqlen,
                                          num_seqs, num_q_heads, stream);
  }
  const attention_detail::VarlenSpec<false> spec{cu_seqlens_dev, total_rows, window, true};
  return attention_detail::launch_tiles(tiles, options.head_dim, params, spec, max_seqlen, num_seqs,
                                        num_q_heads, stream);
}

// The per-tile (min, max) of subtree_end, the same of the positions, then the work counters
// (rounded up to 8 bytes, so the size stays a multiple of 8).
size_t attention_tree_workspace_bytes(int num_rows, int counters) {
  if (num_rows <= 0 || counters <= 0) return 0;
  const size_t counter_bytes = (static_cast<size_t>(counters) * sizeof(int) + 7) / 8 * 8;
  return 2 * static_cast<size_t>((num_rows + kMinmaxTile - 1) / kMinmaxTile) * sizeof(int2) +
         counter_bytes;
}

namespace {

int tree_tiles(int num_rows) { return (num_rows + kMinmaxTile - 1) / kMinmaxTile; }

cudaError_t launch_tree_bounds(const int32_t* subtree_end_dev, const int32_t* positions_dev,
                               int num_rows, int counters, void* workspace, cudaStream_t stream) {
  const int num_tiles = tree_tiles(num_rows);
  auto* tile_minmax = static_cast<int2*>(workspace);
  auto* pos_minmax = tile_minmax + num_tiles;
  auto* item_counters = reinterpret_cast<int*>(pos_minmax + num_tiles);
  constexpr int kMinmaxThreads = 256;
  const int blocks = (num_tiles * 32 + kMinmaxThreads - 1) / kMinmaxThreads;
  launch_kernel(attention_detail::tile_minmax_kernel, blocks, kMinmaxThreads, 0, stream,
                subtree_end_dev, positions_dev, num_rows, tile_minmax, pos_minmax, num_tiles,
                item_counters, counters);
  return cudaGetLastError();
}

bool tree_workspace_ok(const void* workspace, size_t workspace_bytes, int num_rows, int counters) {
  return workspace != nullptr &&
         workspace_bytes >= attention_tree_workspace_bytes(num_rows, counters) &&
         reinterpret_cast<uintptr_t>(workspace) % alignof(int2) == 0;
}

}  // namespace

cudaError_t attention_tree_bounds(const int32_t* subtree_end_dev, const int32_t* positions_dev,
                                  int num_rows, int counters, void* workspace,
                                  size_t workspace_bytes, cudaStream_t stream) {
  if (subtree_end_dev == nullptr || num_rows < 0 || counters <= 0) return cudaErrorInvalidValue;
  if (num_rows == 0) return cudaSuccess;
  if (!tree_workspace_ok(workspace, workspace_bytes, num_rows, counters)) {
    return cudaErrorInvalidValue;
  }
  return launch_tree_bounds(subtree_end_dev, positions_dev, num_rows, counters, workspace, stream);
}

cudaError_t attention_tree_tiles(AttentionTiles tiles, const __nv_bfloat16* q,
                                 const __nv_bfloat16* k, const __nv_bfloat16* v, __nv_bfloat16* out,
                                 int64_t q_row_stride, int64_t kv_row_stride,
                                 int64_t out_row_stride, const int32_t* subtree_end_dev,
                                 int num_rows, int num_q_heads, int num_kv_heads, float scale,
                                 void* workspace, size_t workspace_bytes, cudaStream_t stream,
                                 const AttentionOptions& options) {
  AttentionParams params;
  if (!attention_detail::check_tensors(q, k, v, out, q_row_stride, kv_row_stride, out_row_stride,
                                       num_q_heads, num_kv_heads, scale, options, params)) {
    return cudaErrorInvalidValue;
  }
  if (subtree_end_dev == nullptr || num_rows < 0) return cudaErrorInvalidValue;
  if (options.window > 0 && options.positions_dev == nullptr) return cudaErrorInvalidValue;
  if (options.bidirectional) return cudaErrorInvalidValue;  // a trie is causal by construction
  if (num_rows == 0) return cudaSuccess;
  const int counter = options.tree_counter;
  if (counter < -1 ||
      !tree_workspace_ok(workspace, workspace_bytes, num_rows, std::max(counter + 1, 1))) {
    return cudaErrorInvalidValue;
  }
  const int num_tiles = tree_tiles(num_rows);
  auto* tile_minmax = static_cast<int2*>(workspace);
  auto* pos_minmax = tile_minmax + num_tiles;
  int* item_counter = reinterpret_cast<int*>(pos_minmax + num_tiles) + std::max(counter, 0);
  const int32_t* positions = options.window > 0 ? options.positions_dev : nullptr;
  if (counter < 0) {  // the bounds are this call's to compute
    const cudaError_t err =
        launch_tree_bounds(subtree_end_dev, positions, num_rows, 1, workspace, stream);
    if (err != cudaSuccess) return err;
  }
  const int window = attention_detail::window_or_none(options);
  if (attention_detail::any_option(options)) {
    const attention_detail::TreeSpec<true> spec{
        subtree_end_dev, tile_minmax, num_rows, item_counter, window, positions, pos_minmax};
    return attention_detail::launch_tiles(tiles, options.head_dim, params, spec, num_rows, 1,
                                          num_q_heads, stream);
  }
  const attention_detail::TreeSpec<false> spec{
      subtree_end_dev, tile_minmax, num_rows, item_counter, window, positions, pos_minmax};
  return attention_detail::launch_tiles(tiles, options.head_dim, params, spec, num_rows, 1,
                                        num_q_heads, stream);
}

cudaError_t attention_varlen_causal(const __nv_bfloat16* q, const __nv_bfloat16* k,
                                    const __nv_bfloat16* v, __nv_bfloat16* out,
                                    int64_t q_row_stride, int64_t kv_row_stride,
                                    int64_t out_row_stride, const int32_t* cu_seqlens_dev,
                                    int num_seqs, int max_seqlen, int total_rows, int num_q_heads,
                                    int num_kv_heads, float scale, cudaStream_t stream,
                                    const AttentionOptions& options) {
  return attention_varlen_causal_tiles(attention_varlen_default_tiles(options.head_dim), q, k, v,
                                       out, q_row_stride, kv_row_stride, out_row_stride,
                                       cu_seqlens_dev, num_seqs, max_seqlen, total_rows,
                                       num_q_heads, num_kv_heads, scale, stream, options);
}

cudaError_t attention_tree(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v,
                           __nv_bfloat16* out, int64_t q_row_stride, int64_t kv_row_stride,
                           int64_t out_row_stride, const int32_t* subtree_end_dev, int num_rows,
                           int num_q_heads, int num_kv_heads, float scale, void* workspace,
                           size_t workspace_bytes, cudaStream_t stream, double mean_visible_keys,
                           const AttentionOptions& options) {
  return attention_tree_tiles(attention_tree_default_tiles(mean_visible_keys, options.head_dim), q,
                              k, v, out, q_row_stride, kv_row_stride, out_row_stride,
                              subtree_end_dev, num_rows, num_q_heads, num_kv_heads, scale,
                              workspace, workspace_bytes, stream, options);
}

}  // namespace radix::cuda
