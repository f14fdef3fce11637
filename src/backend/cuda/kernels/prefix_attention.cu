#include <mma.h>

#include <atomic>
#include <cmath>
#include <cstdio>

#include "backend/cuda/attention_ptx.cuh"
#include "backend/cuda/attention_softmax.cuh"
#include "backend/cuda/kernels/device_math.cuh"
#include "backend/cuda/kernels/launch.cuh"
#include "backend/cuda/kernels/per_device.h"
#include "backend/cuda/kernels/prefix_attention.cuh"

namespace radix::cuda {
namespace {

// A block holds kTileM (row, head) pairs of one kv head: with GQA the group's heads of a row are
// neighbours, so a 64-row request of Qwen3-0.6B (2 q heads per kv head) fills two tiles per kv
// head and every K/V block loaded is used by all of them.
constexpr int kTileM = 64;
constexpr int kTileK = 64;
constexpr int kWarps = 4;  // warp w owns pairs [16w, 16w + 16) of the tile
constexpr int kThreads = kWarps * 32;
constexpr int kMaxSplits = 16;

// Shared memory of one block for padded head dim kD. Leading dimensions are padded (wmma wants
// multiples of 16 bytes; the padding also spreads rows over the banks), every array starts on a
// 32-byte boundary as wmma's pointers must.
template <int kD>
struct Layout {
  static constexpr int kLdQ = kD + 8;      // bf16: q, k, v tiles
  static constexpr int kLdS = kTileK + 4;  // fp32 scores
  static constexpr int kLdP = kTileK + 8;  // bf16 probabilities
  static constexpr int kLdO = kD + 4;      // fp32 accumulator
  static constexpr size_t kQ = 0;
  static constexpr size_t kK = kQ + sizeof(bf16) * kTileM * kLdQ;
  static constexpr size_t kV = kK + sizeof(bf16) * kTileK * kLdQ;
  static constexpr size_t kS = kV + sizeof(bf16) * kTileK * kLdQ;
  static constexpr size_t kP = kS + sizeof(float) * kTileM * kLdS;
  static constexpr size_t kO = kP + sizeof(bf16) * kTileM * kLdP;
  static constexpr size_t kM = kO + sizeof(float) * kTileM * kLdO;
  static constexpr size_t kL = kM + sizeof(float) * kTileM;
  static constexpr size_t kRow = kL + sizeof(float) * kTileM;  // query row of each pair, -1: none
  static constexpr size_t kAnchor = kRow + sizeof(int) * kTileM;
  static constexpr size_t kPos = kAnchor + sizeof(int) * kTileM;
  static constexpr size_t kKeyEnd = kPos + sizeof(int) * kTileM;
  static constexpr size_t kKeyPos = kKeyEnd + sizeof(int) * kTileK;
  static constexpr size_t kFlags = kKeyPos + sizeof(int) * kTileK;  // max anchor, min anchor, go
  static constexpr size_t kBytes = kFlags + sizeof(int) * 4;
};

// Rows [0, kRows) of kMats bf16 tiles with leading dimension ld: row i of tile m from src(m, i)
// (nullptr: zeros), columns [0, d) copied and [d, kD) zeroed. A thread issues up to 8 loads per
// tile before it stores any, so they are in flight together: a tile costs a trip or two to
// memory, not one per 16 bytes. T: int4 (16-byte loads, when d, strides and bases allow them) or
// __nv_bfloat162.
template <typename T, int kD, int kRows, int kMats, typename Src>
__device__ __forceinline__ void load_tiles_as(bf16* const* dst, int ld, int d, Src src) {
  constexpr int kElems = sizeof(T) / sizeof(bf16);
  constexpr int kUnits = kD / kElems;  // per row
  constexpr int kPer = kRows * kUnits / kThreads;
  constexpr int kGroup = kPer < 8 ? kPer : 8;
  static_assert(kRows * kUnits % kThreads == 0 && kPer % kGroup == 0, "tile must divide");
#pragma unroll
  for (int u0 = 0; u0 < kPer; u0 += kGroup) {
    T buf[kMats][kGroup];
#pragma unroll
    for (int m = 0; m < kMats; ++m) {
#pragma unroll
      for (int u = 0; u < kGroup; ++u) {
        const int e = threadIdx.x + (u0 + u) * kThreads;
        const int i = e / kUnits, c = (e % kUnits) * kElems;
        const bf16* s = src(m, i);
        if (s != nullptr && c < d) {
          buf[m][u] = *reinterpret_cast<const T*>(s + c);
        } else {
          buf[m][u] = T{};
        }
      }
    }
#pragma unroll
    for (int m = 0; m < kMats; ++m) {
#pragma unroll
      for (int u = 0; u < kGroup; ++u) {
        const int e = threadIdx.x + (u0 + u) * kThreads;
        const int i = e / kUnits, c = (e % kUnits) * kElems;
        *reinterpret_cast<T*>(dst[m] + i * ld + c) = buf[m][u];
      }
    }
  }
}

template <int kD, int kRows, int kMats, typename Src>
__device__ __forceinline__ void load_tiles(bf16* const* dst, int ld, int d, bool vec, Src src) {
  if (vec) {
    load_tiles_as<int4, kD, kRows, kMats>(dst, ld, d, src);
  } else {
    load_tiles_as<__nv_bfloat162, kD, kRows, kMats>(dst, ld, d, src);
  }
}

// grid: (pair tiles, kv heads, splits). Each block walks its share of the tile's key blocks: the
// prefix blocks first, then the batch's, with one online softmax over both.
template <int kD>
__global__ void __launch_bounds__(kThreads)
    prefix_attention_wmma_kernel(PrefixAttentionArgs a, int splits, float* __restrict__ part_o,
                                 float2* __restrict__ part_ml, bool vec) {
  begin_kernel();
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using namespace nvcuda;
  using L = Layout<kD>;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* sq = reinterpret_cast<bf16*>(smem + L::kQ);
  bf16* sk = reinterpret_cast<bf16*>(smem + L::kK);
  bf16* sv = reinterpret_cast<bf16*>(smem + L::kV);
  float* ss = reinterpret_cast<float*>(smem + L::kS);
  bf16* sp = reinterpret_cast<bf16*>(smem + L::kP);
  float* so = reinterpret_cast<float*>(smem + L::kO);
  float* sm = reinterpret_cast<float*>(smem + L::kM);
  float* sl = reinterpret_cast<float*>(smem + L::kL);
  int* srow = reinterpret_cast<int*>(smem + L::kRow);
  int* sanchor = reinterpret_cast<int*>(smem + L::kAnchor);
  int* spos = reinterpret_cast<int*>(smem + L::kPos);
  int* skey_end = reinterpret_cast<int*>(smem + L::kKeyEnd);
  int* skey_pos = reinterpret_cast<int*>(smem + L::kKeyPos);
  int* sflags = reinterpret_cast<int*>(smem + L::kFlags);

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = blockIdx.y;
  const int group = a.num_q_heads / a.num_kv_heads;
  const int64_t pairs = static_cast<int64_t>(a.rows) * group;
  const int64_t t0 = static_cast<int64_t>(blockIdx.x) * kTileM;
  const int d = a.head_dim;

  if (tid == 0) {
    sflags[0] = -1;         // max anchor
    sflags[1] = INT32_MAX;  // min anchor (>= 0)
  }
  __syncthreads();
  for (int i = tid; i < kTileM; i += kThreads) {
    const int64_t t = t0 + i;
    const int row = t < pairs ? static_cast<int>(t / group) : -1;
    srow[i] = row;
    const int anchor = row >= 0 && a.prefix_rows > 0 ? a.anchor[row] : -1;
    sanchor[i] = anchor;
    spos[i] = row >= 0 && a.window > 0 ? a.positions[row] : 0;
    sm[i] = -INFINITY;
    sl[i] = 0.0f;
    if (anchor >= 0) {
      atomicMax(&sflags[0], anchor);
      atomicMin(&sflags[1], anchor);
    }
  }
  for (int e = tid; e < kTileM * kD; e += kThreads) so[(e / kD) * L::kLdO + e % kD] = 0.0f;
  __syncthreads();
  const int max_anchor = sflags[0], min_anchor = sflags[1];
  const int first_row = srow[0];
  const int last_row = static_cast<int>((min(t0 + kTileM, pairs) - 1) / group);
  bf16* const q_dst[1] = {sq};
  load_tiles<kD, kTileM, 1>(q_dst, L::kLdQ, d, vec, [&](int, int i) -> const bf16* {
    const int row = srow[i];
    if (row < 0) return nullptr;
    const int head = g * group + static_cast<int>((t0 + i) % group);
    return a.q + row * a.qkv_stride + static_cast<int64_t>(head) * d;
  });

  // The tile's key blocks: prefix blocks [0, prefix_blocks) reach its deepest anchor, batch blocks
  // reach its last row. Split z takes the z-th contiguous share.
  const int prefix_blocks = (max_anchor + kTileK) / kTileK;  // 0 without anchors
  const int own_blocks = (last_row + kTileK) / kTileK;
  const int total = prefix_blocks + own_blocks;
  const int z = blockIdx.z;
  const int b_begin = static_cast<int>(static_cast<int64_t>(total) * z / splits);
  const int b_end = static_cast<int>(static_cast<int64_t>(total) * (z + 1) / splits);

  const int my_pair = warp * 16 + (lane >> 1);  // the pair this lane's softmax half works on
  const int half = lane & 1;
  for (int b = b_begin; b < b_end; ++b) {
    const bool prefix = b < prefix_blocks;
    const int k0 = (prefix ? b : b - prefix_blocks) * kTileK;
    const int key_count = prefix ? a.prefix_rows : a.rows;
    const int* key_end = prefix ? a.prefix_end : a.visible_end;
    const int* key_positions = prefix ? a.prefix_positions : a.positions;
    // Warp 0: the block's key metadata, and whether any pair can see one of its keys (a key k is
    // seen only by rows, or anchors, in [k, end[k])); blocks nobody sees are skipped whole.
    if (warp == 0) {
      int end_max = 0;
      for (int j = lane; j < kTileK; j += 32) {
        const int key = k0 + j;
        const bool in = key < key_count;
        const int end = in ? key_end[key] : 0;
        skey_end[j] = end;
        skey_pos[j] = in && a.window > 0 ? key_positions[key] : 0;
        end_max = max(end_max, end);
      }
#pragma unroll
      for (int o = 16; o > 0; o >>= 1)
        end_max = max(end_max, __shfl_xor_sync(0xffffffffu, end_max, o));
      if (lane == 0) {
        sflags[2] = prefix ? (k0 <= max_anchor && end_max > min_anchor)
                           : (k0 <= last_row && end_max > first_row);
      }
    }
    __syncthreads();
    if (!sflags[2]) {
      __syncthreads();  // sflags and the key metadata are rewritten by the next block
      continue;
    }
    const bf16* kbase = prefix ? a.prefix_k : a.k;
    const bf16* vbase = prefix ? a.prefix_v : a.v;
    const int64_t stride = prefix ? a.prefix_stride : a.qkv_stride;
    const int64_t head_off = static_cast<int64_t>(g) * d;
    auto kv_src = [&](int m, int j) -> const bf16* {
      return k0 + j < key_count ? (m == 0 ? kbase : vbase) + (k0 + j) * stride + head_off : nullptr;
    };
    if constexpr (kD <= 128) {  // K and V in one batch of loads
      bf16* const kv_dst[2] = {sk, sv};
      load_tiles<kD, kTileK, 2>(kv_dst, L::kLdQ, d, vec, kv_src);
    } else {  // 256: one tile at a time (two tiles of loads would not fit in registers)
      bf16* const k_dst[1] = {sk};
      bf16* const v_dst[1] = {sv};
      load_tiles<kD, kTileK, 1>(k_dst, L::kLdQ, d, vec, kv_src);
      load_tiles<kD, kTileK, 1>(v_dst, L::kLdQ, d, vec, [&](int, int j) { return kv_src(1, j); });
    }
    __syncthreads();

    // S = Q K^T for this warp's 16 pairs.
    {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> fa;
      wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> fb;
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> fc;
#pragma unroll
      for (int n = 0; n < kTileK / 16; ++n) {
        wmma::fill_fragment(fc, 0.0f);
#pragma unroll
        for (int kk = 0; kk < kD / 16; ++kk) {
          wmma::load_matrix_sync(fa, sq + warp * 16 * L::kLdQ + kk * 16, L::kLdQ);
          wmma::load_matrix_sync(fb, sk + n * 16 * L::kLdQ + kk * 16, L::kLdQ);
          wmma::mma_sync(fc, fa, fb, fc);
        }
        wmma::store_matrix_sync(ss + warp * 16 * L::kLdS + n * 16, fc, L::kLdS,
                                wmma::mem_row_major);
      }
    }
    __syncwarp();

    // Online softmax: two lanes per pair, 32 keys each.
    {
      const int row = srow[my_pair];
      const int anchor = sanchor[my_pair];
      const int pos = spos[my_pair];
      float* s = ss + my_pair * L::kLdS + half * 32;
      float x[32];
      float mx = -INFINITY;
#pragma unroll
      for (int j = 0; j < 32; ++j) {
        const int jj = half * 32 + j;
        const int key = k0 + jj;
        bool vis;
        if (row < 0 || key >= key_count) {
          vis = false;
        } else if (prefix) {
          vis = key <= anchor && anchor < skey_end[jj] &&
                (a.window == 0 || pos - skey_pos[jj] < a.window);
        } else {
          vis = key <= row && row < skey_end[jj] &&
                (a.window == 0 || key == row || pos - skey_pos[jj] < a.window);
        }
        float logit = s[j] * a.scale;
        if (a.softcap > 0.0f) logit = a.softcap * tanhf(logit / a.softcap);
        x[j] = vis ? logit : -INFINITY;
        mx = fmaxf(mx, x[j]);
      }
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      const float m_old = sm[my_pair];
      const float m_new = fmaxf(m_old, mx);
      float corr = 1.0f, sum = 0.0f;
      bf16* p = sp + my_pair * L::kLdP + half * 32;
      if (m_new == -INFINITY) {
#pragma unroll
        for (int j = 0; j < 32; ++j) p[j] = __float2bfloat16(0.0f);
      } else {
        corr = m_old == -INFINITY ? 0.0f : __expf(m_old - m_new);
#pragma unroll
        for (int j = 0; j < 32; ++j) {
          const bf16 pj = __float2bfloat16(x[j] == -INFINITY ? 0.0f : __expf(x[j] - m_new));
          p[j] = pj;
          sum += __bfloat162float(pj);  // the sum of the values P.V multiplies
        }
      }
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      __syncwarp();
      if (half == 0) {
        sm[my_pair] = m_new;
        sl[my_pair] = sl[my_pair] * corr + sum;
      }
      if (corr != 1.0f) {
        float* o = so + my_pair * L::kLdO + half * (kD / 2);
        for (int c = 0; c < kD / 2; ++c) o[c] *= corr;
      }
    }
    __syncwarp();

    // O += P V for this warp's 16 pairs.
    {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> fa;
      wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> fb;
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> fc;
#pragma unroll 2
      for (int n = 0; n < kD / 16; ++n) {
        float* o = so + warp * 16 * L::kLdO + n * 16;
        wmma::load_matrix_sync(fc, o, L::kLdO, wmma::mem_row_major);
#pragma unroll
        for (int kk = 0; kk < kTileK / 16; ++kk) {
          wmma::load_matrix_sync(fa, sp + warp * 16 * L::kLdP + kk * 16, L::kLdP);
          wmma::load_matrix_sync(fb, sv + kk * 16 * L::kLdQ + n * 16, L::kLdQ);
          wmma::mma_sync(fc, fa, fb, fc);
        }
        wmma::store_matrix_sync(o, fc, L::kLdO, wmma::mem_row_major);
      }
    }
    __syncthreads();  // k, v, metadata and flags are rewritten by the next block
  }

  // Out: normalised rows (one split), or the split's unnormalised rows with (max, sum).
  for (int e = tid; e < kTileM * (kD / 2); e += kThreads) {
    const int i = e / (kD / 2), c = (e - i * (kD / 2)) * 2;
    const int row = srow[i];
    if (row < 0 || c >= d) continue;
    const int head = g * group + static_cast<int>((t0 + i) % group);
    const float* o = so + i * L::kLdO + c;
    if (splits == 1) {
      const float inv = sl[i] > 0.0f ? 1.0f / sl[i] : 0.0f;
      *reinterpret_cast<__nv_bfloat162*>(a.out + row * a.out_stride +
                                         static_cast<int64_t>(head) * d + c) =
          __floats2bfloat162_rn(o[0] * inv, o[1] * inv);
    } else {
      const int64_t pair = (static_cast<int64_t>(z) * a.rows + row) * a.num_q_heads + head;
      *reinterpret_cast<float2*>(part_o + pair * d + c) = make_float2(o[0], o[1]);
      if (c == 0) part_ml[pair] = make_float2(sm[i], sl[i]);
    }
  }
#else
  __trap();  // bf16 wmma needs sm_80 or newer
#endif
}

// ---- The mma.sync kernel (head_dim <= 128, 16-byte aligned rows): the fast path ----------------
//
// Same grid and split as the wmma kernel, built the way the decode-style flash kernels are: each
// warp keeps its 16 pairs' Q fragments, scores, probabilities and output accumulator in registers
// (mma.sync m16n8k16), K/V tiles of 32 keys stream through two shared-memory stages with cp.async
// so the next tile's loads overlap this tile's products, and the key blocks nobody in the tile can
// see, and those everybody sees whole (no mask), are found once, up front, from the keys' ends (one
// round trip for the whole split instead of one per block). The softmax is the tree kernels'
// (attention_softmax.cuh).
namespace mma {

// 32-key tiles (54 KiB of shared memory) and <= 168 registers let three blocks share an SM: on the
// H200 the 8B stream shape took 35.6 us a layer at 12 splits against 41.0 at the best split with
// 64-key tiles and two blocks (bench/prefix_attention_bench.cu; bench/RESULTS.md). Four blocks
// (128 registers, Q re-read from shared memory each block; build with
// -DRADIX_PREFIX_ATTENTION_BLOCKS_PER_SM=4 to compare) measured slower: 29.6-31.6 vs 28.2 us.
constexpr int kTileN = 32;
#ifndef RADIX_PREFIX_ATTENTION_BLOCKS_PER_SM
#define RADIX_PREFIX_ATTENTION_BLOCKS_PER_SM 3
#endif
constexpr int kBlocksPerSm = RADIX_PREFIX_ATTENTION_BLOCKS_PER_SM;
constexpr int kMaxScan = 256;  // key blocks a split checks up front; later ones are all loaded

template <int kD>
struct Layout {
  static constexpr int kLd = kD + 8;  // bf16 per row: 16-byte rows offset by 4 banks, no conflicts
  static constexpr size_t kTile = sizeof(bf16) * kTileN * kLd;
  static constexpr size_t kQ = 0;
  static constexpr size_t kKV = kQ + sizeof(bf16) * kTileM * kLd;  // stage s: K at 2s, V at 2s + 1
  static constexpr size_t kMeta = kKV + 4 * kTile;  // stage s: key ends, key positions
  static constexpr size_t kScan = kMeta + sizeof(int) * 2 * 2 * kTileN;  // largest key end
  static constexpr size_t kScanMin = kScan + sizeof(int) * kMaxScan;     // smallest key end
  static constexpr size_t kFlags = kScanMin + sizeof(int) * kMaxScan;
  static constexpr size_t kBytes = kFlags + sizeof(int) * 3 * kWarps;
};

__device__ __forceinline__ void cp_async_4(uint32_t dst, const void* src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(dst), "l"(src) : "memory");
}

template <int kD>
__global__ void __launch_bounds__(kThreads, kBlocksPerSm)
    prefix_attention_mma_kernel(PrefixAttentionArgs a, int splits, float* __restrict__ part_o,
                                float2* __restrict__ part_ml) {
  begin_kernel();
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using L = Layout<kD>;
  constexpr int kChunks = kD / 8;  // 16-byte chunks per row
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* sq = reinterpret_cast<bf16*>(smem + L::kQ);
  bf16* skv = reinterpret_cast<bf16*>(smem + L::kKV);
  int* smeta = reinterpret_cast<int*>(smem + L::kMeta);
  int* sscan = reinterpret_cast<int*>(smem + L::kScan);
  int* sscan_min = reinterpret_cast<int*>(smem + L::kScanMin);
  int* sflags = reinterpret_cast<int*>(smem + L::kFlags);

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = blockIdx.y;
  const int group = a.num_q_heads / a.num_kv_heads;
  const int64_t pairs = static_cast<int64_t>(a.rows) * group;
  const int64_t t0 = static_cast<int64_t>(blockIdx.x) * kTileM;
  const int d = a.head_dim;
  const int64_t head_off = static_cast<int64_t>(g) * d;

  // The Q tile, zero past the last pair and past d (zeros keep the padded products exact).
  for (int e = tid; e < kTileM * kChunks; e += kThreads) {
    const int i = e / kChunks, c = (e % kChunks) * 8;
    const int64_t t = t0 + i;
    const bool ok = t < pairs && c < d;
    const bf16* src = a.q;
    if (ok) {
      const int64_t row = t / group;
      src = a.q + row * a.qkv_stride + (head_off * group) + (t % group) * d + c;
    }
    ptx::cp_async_16(ptx::shared_address(sq + i * L::kLd + c), src, ok);
  }
  ptx::cp_async_commit();

  // This lane's two pairs (rows g and g + 8 of its warp's 16): query row, anchor, position.
  int qrow[2], qanchor[2], qpos[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int64_t t = t0 + warp * 16 + (lane >> 2) + 8 * r;
    qrow[r] = t < pairs ? static_cast<int>(t / group) : -1;
    qanchor[r] = qrow[r] >= 0 && a.prefix_rows > 0 ? a.anchor[qrow[r]] : -1;
    qpos[r] = qrow[r] >= 0 && a.window > 0 ? a.positions[qrow[r]] : 0;
  }
  const int first_row = static_cast<int>(t0 / group);
  const int last_row = static_cast<int>((min(t0 + kTileM, pairs) - 1) / group);

  // The key blocks: every prefix block, then the batch blocks up to the tile's last row; split z
  // takes the z-th contiguous share. (Splitting by the prefix length, not by the tile's deepest
  // anchor, lets the ends below be read in the same round trip as the anchors.)
  const int prefix_blocks = (a.prefix_rows + kTileN - 1) / kTileN;
  const int own_blocks = (last_row + kTileN) / kTileN;
  const int total = prefix_blocks + own_blocks;
  const int z = blockIdx.z;
  const int b_begin = static_cast<int>(static_cast<int64_t>(total) * z / splits);
  const int b_end = static_cast<int>(static_cast<int64_t>(total) * (z + 1) / splits);
  const int n_scan = min(b_end - b_begin, kMaxScan);

  // The largest end of each of the split's key blocks, a warp per block and four blocks at a time
  // so that their loads are in flight together (and with the anchors').
  for (int i0 = warp * 4; i0 < n_scan; i0 += kWarps * 4) {
    int end[4][2];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int b = b_begin + i0 + j;
      const bool prefix = b < prefix_blocks;
      const int key_count = prefix ? a.prefix_rows : a.rows;
      const int* key_end = prefix ? a.prefix_end : a.visible_end;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int key = (prefix ? b : b - prefix_blocks) * kTileN + h * 32 + lane;
        end[j][h] = h * 32 < kTileN && i0 + j < n_scan && key < key_count ? key_end[key] : 0;
      }
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int hi = __reduce_max_sync(0xffffffffu, max(end[j][0], end[j][1]));
      // (a 32-key tile's second half of lanes is 0: the smallest end of the first half matters)
      const int lo =
          __reduce_min_sync(0xffffffffu, kTileN > 32 ? min(end[j][0], end[j][1]) : end[j][0]);
      if (lane == 0 && i0 + j < n_scan) {
        sscan[i0 + j] = hi;
        sscan_min[i0 + j] = lo;
      }
    }
  }
  {
    const int hi = max(qanchor[0], qanchor[1]);
    const int lo =
        min(qanchor[0] >= 0 ? qanchor[0] : INT32_MAX, qanchor[1] >= 0 ? qanchor[1] : INT32_MAX);
    const int warp_hi = __reduce_max_sync(0xffffffffu, hi);
    const int warp_lo = __reduce_min_sync(0xffffffffu, lo);
    // A pair without an anchor sees no cached key: then no prefix block is whole for the tile.
    const bool unanchored = (qrow[0] >= 0 && qanchor[0] < 0) || (qrow[1] >= 0 && qanchor[1] < 0);
    const int warp_unanchored = __any_sync(0xffffffffu, unanchored);
    if (lane == 0) {
      sflags[3 * warp] = warp_hi;
      sflags[3 * warp + 1] = warp_lo;
      sflags[3 * warp + 2] = warp_unanchored;
    }
  }
  __syncthreads();
  int max_anchor = -1, min_anchor = INT32_MAX;  // min over anchors >= 0
  bool any_unanchored = false;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) {
    max_anchor = max(max_anchor, sflags[3 * w]);
    min_anchor = min(min_anchor, sflags[3 * w + 1]);
    any_unanchored = any_unanchored || sflags[3 * w + 2] != 0;
  }

  // Whether anybody in the tile sees block b: key k is seen only by rows (anchors) in [k, end[k]),
  // so a block is seen iff it starts at or before the last row (deepest anchor) and its largest end
  // is past the first row (shallowest anchor). Blocks past the scanned ones are loaded regardless.
  auto seen = [&](int b) {
    if (b - b_begin >= n_scan) return true;
    const int end_max = sscan[b - b_begin];
    if (b < prefix_blocks) return b * kTileN <= max_anchor && end_max > min_anchor;
    return (b - prefix_blocks) * kTileN <= last_row && end_max > first_row;
  };
  auto next_block = [&](int b) {
    while (b < b_end && !seen(b)) ++b;
    return b;
  };
  // Whether every pair of the tile sees every key of block b, so that the block needs no mask (a
  // request whose rows all hang below the cached prefix): key k is seen by row (anchor) r iff
  // k <= r < end[k], for the whole block iff its last key is at or before the shallowest row and
  // its smallest end is past the deepest one. Never with a window.
  auto whole = [&](int b) {
    if (a.window > 0 || b - b_begin >= n_scan) return false;
    const int end_min = sscan_min[b - b_begin];
    if (b < prefix_blocks) {
      const int last_key = b * kTileN + kTileN - 1;
      return !any_unanchored && last_key < a.prefix_rows && last_key <= min_anchor &&
             end_min > max_anchor;
    }
    const int last_key = (b - prefix_blocks) * kTileN + kTileN - 1;
    return last_key < a.rows && last_key <= first_row && end_min > last_row;
  };
  // The softmax of the tree kernels (attention_softmax.cuh): 2^(s * scale_log2 - max), the max in
  // scaled base-2 units, the soft-cap on raw scores before the mask.
  constexpr float kLog2e = 1.4426950408889634f;
  const bool softcap = a.softcap > 0.0f;
  const float scale_log2 = (softcap ? a.softcap : a.scale) * kLog2e;
  const float softcap_exp2 = softcap ? 2.0f * kLog2e * a.scale / a.softcap : 0.0f;

  // Stage s's copies for key block b: K and V rows (zero past the keys and past d), the keys' ends
  // (0 past the keys: nobody sees them) and, with a window, their positions.
  auto issue = [&](int b, int s) {
    const bool prefix = b < prefix_blocks;
    const int k0 = (prefix ? b : b - prefix_blocks) * kTileN;
    const int key_count = prefix ? a.prefix_rows : a.rows;
    const bf16* kbase = prefix ? a.prefix_k : a.k;
    const bf16* vbase = prefix ? a.prefix_v : a.v;
    const int64_t stride = prefix ? a.prefix_stride : a.qkv_stride;
    bf16* sk = skv + 2 * s * (kTileN * L::kLd);
    bf16* sv = sk + kTileN * L::kLd;
#pragma unroll
    for (int e = tid; e < kTileN * kChunks; e += kThreads) {
      const int j = e / kChunks, c = (e % kChunks) * 8;
      const bool ok = k0 + j < key_count && c < d;
      const int64_t off = ok ? (k0 + j) * stride + head_off + c : 0;
      ptx::cp_async_16(ptx::shared_address(sk + j * L::kLd + c), kbase + off, ok);
      ptx::cp_async_16(ptx::shared_address(sv + j * L::kLd + c), vbase + off, ok);
    }
    int* kend = smeta + s * 2 * kTileN;
    if (tid < kTileN) {
      const int key = k0 + tid;
      if (key < key_count) {
        cp_async_4(ptx::shared_address(kend + tid), (prefix ? a.prefix_end : a.visible_end) + key);
      } else {
        kend[tid] = 0;
      }
    } else if (a.window > 0 && tid < 2 * kTileN) {
      const int key = k0 + tid - kTileN;
      if (key < key_count) {
        cp_async_4(ptx::shared_address(kend + tid),
                   (prefix ? a.prefix_positions : a.positions) + key);
      } else {
        kend[tid] = 0;
      }
    }
  };

  float o[kD / 8][4];
#pragma unroll
  for (int n = 0; n < kD / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  // With four blocks an SM the Q fragments are read from shared memory for every key block
  // (eight ldmatrix a warp, against 16 for K): 32 registers fewer, no spills at 128.
  constexpr bool kQInRegisters = kBlocksPerSm < 4;
  uint32_t qf[kQInRegisters ? kD / 16 : 1][4];
  bool have_q = false;
  int b = next_block(b_begin);
  int s = 0;
  if (b < b_end) issue(b, 0);
  ptx::cp_async_commit();
  while (b < b_end) {
    const int bn = next_block(b + 1);
    if (bn < b_end) issue(bn, s ^ 1);
    ptx::cp_async_commit();
    ptx::cp_async_wait<1>();  // Q and this stage
    __syncthreads();
    if (kQInRegisters && !have_q) {
#pragma unroll
      for (int kk = 0; kk < kD / 16; ++kk) {
        ptx::ldmatrix_x4(qf[kQInRegisters ? kk : 0],
                         ptx::shared_address(sq + (warp * 16 + (lane & 15)) * L::kLd + kk * 16 +
                                             (lane >> 4) * 8));
      }
      have_q = true;
    }
    const bool prefix = b < prefix_blocks;
    const int k0 = (prefix ? b : b - prefix_blocks) * kTileN;
    const bf16* sk = skv + 2 * s * (kTileN * L::kLd);
    const bf16* sv = sk + kTileN * L::kLd;
    const int* kend = smeta + s * 2 * kTileN;
    const int* kpos = kend + kTileN;

    // S = Q K^T: this warp's 16 pairs x kTileN keys, n-tile n holds keys [8n, 8n + 8).
    float sc[kTileN / 8][4];
#pragma unroll
    for (int n = 0; n < kTileN / 8; ++n) sc[n][0] = sc[n][1] = sc[n][2] = sc[n][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk) {
      if constexpr (!kQInRegisters) {
        ptx::ldmatrix_x4(qf[0], ptx::shared_address(sq + (warp * 16 + (lane & 15)) * L::kLd +
                                                    kk * 16 + (lane >> 4) * 8));
      }
      const uint32_t(&qa)[4] = qf[kQInRegisters ? kk : 0];
#pragma unroll
      for (int j = 0; j < kTileN / 16; ++j) {
        uint32_t kf[4];
        ptx::ldmatrix_x4(
            kf, ptx::shared_address(sk + (16 * j + (lane & 7) + ((lane >> 4) << 3)) * L::kLd +
                                    kk * 16 + ((lane >> 3) & 1) * 8));
        ptx::mma_bf16_16816(sc[2 * j], qa, kf[0], kf[1]);
        ptx::mma_bf16_16816(sc[2 * j + 1], qa, kf[2], kf[3]);
      }
    }

    // Cap, then mask the keys some pair does not see (blocks every pair sees whole skip it), then
    // the online softmax; o is rescaled only when some row's max moved.
    if (softcap) attention_detail::apply_softcap<kTileN>(sc, softcap_exp2);
    if (!whole(b)) {
#pragma unroll
      for (int n = 0; n < kTileN / 8; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int r = e >> 1;
          const int col = n * 8 + 2 * (lane & 3) + (e & 1);
          const int key = k0 + col;
          const int end = kend[col];
          bool vis;
          if (prefix) {
            vis = key <= qanchor[r] && qanchor[r] < end &&
                  (a.window == 0 || qpos[r] - kpos[col] < a.window);
          } else {
            vis = key <= qrow[r] && qrow[r] < end &&
                  (a.window == 0 || key == qrow[r] || qpos[r] - kpos[col] < a.window);
          }
          if (!vis) sc[n][e] = -INFINITY;
        }
      }
    }
    float alpha[2];
    attention_detail::softmax_scores<kTileN>(sc, m, l, scale_log2, alpha);
    if (__any_sync(0xffffffffu, alpha[0] != 1.0f || alpha[1] != 1.0f)) {
      attention_detail::rescale_output(o, alpha);
    }

    // O += P V: the score fragments of keys [16kk, 16kk + 16) are the A fragment as they stand.
#pragma unroll
    for (int kk = 0; kk < kTileN / 16; ++kk) {
      uint32_t pa[4];
      attention_detail::probabilities_fragment<kTileN>(sc, kk, pa);
#pragma unroll
      for (int j = 0; j < kD / 16; ++j) {
        uint32_t vf[4];
        ptx::ldmatrix_x4_trans(
            vf, ptx::shared_address(sv + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * L::kLd +
                                    j * 16 + (lane >> 4) * 8));
        ptx::mma_bf16_16816(o[2 * j], pa, vf[0], vf[1]);
        ptx::mma_bf16_16816(o[2 * j + 1], pa, vf[2], vf[3]);
      }
    }
    __syncthreads();  // the stage is refilled by the next iteration's copies
    b = bn;
    s ^= 1;
  }
  ptx::cp_async_wait<0>();  // nothing left in flight at exit (a split with no visible block)

  // Out: normalised rows (one split), or the split's unnormalised rows with (max, sum).
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    const int64_t t = t0 + warp * 16 + (lane >> 2) + 8 * r;
    if (t >= pairs) continue;
    const int row = qrow[r];
    const int head = g * group + static_cast<int>(t % group);
    const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
    const int64_t pair = (static_cast<int64_t>(z) * a.rows + row) * a.num_q_heads + head;
#pragma unroll
    for (int n = 0; n < kD / 8; ++n) {
      const int c = n * 8 + 2 * (lane & 3);
      if (c >= d) continue;  // d is even: c < d means c + 1 < d
      if (splits == 1) {
        *reinterpret_cast<__nv_bfloat162*>(a.out + row * a.out_stride +
                                           static_cast<int64_t>(head) * d + c) =
            __floats2bfloat162_rn(o[n][2 * r] * inv, o[n][2 * r + 1] * inv);
      } else {
        *reinterpret_cast<float2*>(part_o + pair * d + c) =
            make_float2(o[n][2 * r], o[n][2 * r + 1]);
      }
    }
    // The combine weighs splits by e^(m_z - max): m back from scaled base-2 to natural units.
    constexpr float kLn2 = 0.6931471805599453f;
    if (splits > 1 && (lane & 3) == 0) part_ml[pair] = make_float2(m[r] * kLn2, l[r]);
  }
#else
  __trap();  // mma.sync bf16 needs sm_80 or newer
#endif
}

template <int kD>
cudaError_t launch(const PrefixAttentionArgs& a, int splits, float* part_o, float2* part_ml,
                   cudaStream_t stream) {
  constexpr size_t kBytes = Layout<kD>::kBytes;
  static_assert(kBytes <= 227 * 1024, "prefix attention tile exceeds shared memory");
  // The attributes once per device (a forward launches this every layer; each call is a driver
  // round trip on the host).
  static std::atomic<uint64_t> configured{0};
  const cudaError_t attr = detail::once_per_device(configured, [](int) {
    cudaError_t err = cudaFuncSetAttribute(prefix_attention_mma_kernel<kD>,
                                           cudaFuncAttributeMaxDynamicSharedMemorySize, kBytes);
    if (err != cudaSuccess) return err;
    // All of the SM's memory as shared memory: three blocks of head_dim 128 (54 KiB each) per SM.
    return cudaFuncSetAttribute(prefix_attention_mma_kernel<kD>,
                                cudaFuncAttributePreferredSharedMemoryCarveout,
                                cudaSharedmemCarveoutMaxShared);
  });
  if (attr != cudaSuccess) return attr;
  const int group = a.num_q_heads / a.num_kv_heads;
  const int64_t tiles = (static_cast<int64_t>(a.rows) * group + kTileM - 1) / kTileM;
  if (tiles > INT32_MAX) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(a.num_kv_heads),
                  static_cast<unsigned>(splits));
  launch_kernel(prefix_attention_mma_kernel<kD>, grid, kThreads, kBytes, stream, a, splits, part_o,
                part_ml);
  return cudaGetLastError();
}

}  // namespace mma

// One warp per (row, q head): out = sum_z e^(m_z - M) o_z / sum_z e^(m_z - M) l_z. Lane z holds
// split z's weight; each lane then sums kVec columns at a time over the splits, all splits' loads
// issued before the first is used (one memory round trip, not one per split: the loop with a
// load per split behind a branch took ~8 us for 12 splits of Qwen3-8B's stream shape).
template <int kVec>
__global__ void prefix_attention_combine(const float* __restrict__ part_o,
                                         const float2* __restrict__ part_ml, int splits, int rows,
                                         int num_q_heads, int head_dim, bf16* __restrict__ out,
                                         int64_t out_stride) {
  begin_kernel();
  const int64_t pair = static_cast<int64_t>(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  const int64_t pairs = static_cast<int64_t>(rows) * num_q_heads;
  if (pair >= pairs) return;
  const float2 ml = lane < splits ? part_ml[lane * pairs + pair] : make_float2(-INFINITY, 0.0f);
  float m = ml.x;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
  const float w = ml.x == -INFINITY ? 0.0f : __expf(ml.x - m);  // splits nobody saw weigh 0
  const float l = detail::warp_sum(w * ml.y);
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;
  // Every split's weight in every lane, before the column loop (whose trip count differs between
  // lanes when head_dim is not a multiple of 64, so no shuffle may run inside it).
  float wz[kMaxSplits];
#pragma unroll
  for (int z = 0; z < kMaxSplits; ++z) wz[z] = __shfl_sync(0xffffffffu, w, z);
  const int row = static_cast<int>(pair / num_q_heads);
  const int head = static_cast<int>(pair - static_cast<int64_t>(row) * num_q_heads);
  bf16* o = out + row * out_stride + static_cast<int64_t>(head) * head_dim;
  for (int c = kVec * lane; c < head_dim; c += 32 * kVec) {  // kVec divides head_dim
    float v[kMaxSplits][kVec];
#pragma unroll
    for (int z = 0; z < kMaxSplits; ++z) {
      const float* src = part_o + (z * pairs + pair) * head_dim + c;
      if (z >= splits) {
#pragma unroll
        for (int i = 0; i < kVec; ++i) v[z][i] = 0.0f;
      } else if constexpr (kVec == 4) {
        const float4 x = *reinterpret_cast<const float4*>(src);
        v[z][0] = x.x, v[z][1] = x.y, v[z][2] = x.z, v[z][3] = x.w;
      } else {
        const float2 x = *reinterpret_cast<const float2*>(src);
        v[z][0] = x.x, v[z][1] = x.y;
      }
    }
    float acc[kVec] = {};
#pragma unroll
    for (int z = 0; z < kMaxSplits; ++z) {
#pragma unroll
      for (int i = 0; i < kVec; ++i) acc[i] += wz[z] * v[z][i];  // wz is 0 past the splits
    }
#pragma unroll
    for (int i = 0; i < kVec; i += 2) {
      *reinterpret_cast<__nv_bfloat162*>(o + c + i) =
          __floats2bfloat162_rn(acc[i] * inv, acc[i + 1] * inv);
    }
  }
}

template <int kD>
cudaError_t launch_wmma(const PrefixAttentionArgs& a, int splits, float* part_o, float2* part_ml,
                        bool vec, cudaStream_t stream) {
  constexpr size_t kBytes = Layout<kD>::kBytes;
  static_assert(kBytes <= 227 * 1024, "prefix attention tile exceeds shared memory");
  cudaError_t attr = cudaFuncSetAttribute(prefix_attention_wmma_kernel<kD>,
                                          cudaFuncAttributeMaxDynamicSharedMemorySize, kBytes);
  if (attr != cudaSuccess) return attr;
  // All of the SM's memory as shared memory: two blocks of head_dim 128 (112 KiB each) per SM.
  attr = cudaFuncSetAttribute(prefix_attention_wmma_kernel<kD>,
                              cudaFuncAttributePreferredSharedMemoryCarveout,
                              cudaSharedmemCarveoutMaxShared);
  if (attr != cudaSuccess) return attr;
  const int group = a.num_q_heads / a.num_kv_heads;
  const int64_t tiles = (static_cast<int64_t>(a.rows) * group + kTileM - 1) / kTileM;
  if (tiles > INT32_MAX) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(a.num_kv_heads),
                  static_cast<unsigned>(splits));
  launch_kernel(prefix_attention_wmma_kernel<kD>, grid, kThreads, kBytes, stream, a, splits, part_o,
                part_ml, vec);
  return cudaGetLastError();
}

// Says once per process that the slower wmma kernel runs (head_dim over 128, or rows the 16-byte
// copies cannot read), never silently.
void note_wmma_path(int head_dim, bool vec) {
  static std::atomic<bool> told{false};
  if (told.exchange(true)) return;
  std::fprintf(stderr,
               "radix: cuda prefix_attention with head_dim %d%s runs on the wmma kernel (the fast "
               "kernel takes head_dim <= 128 in 16-byte aligned rows); expect it to be slower\n",
               head_dim, vec ? "" : " (rows not 16-byte aligned)");
}

}  // namespace

int prefix_attention_splits(int rows, int prefix_rows, int num_q_heads, int num_kv_heads,
                            int sm_count) {
  if (rows <= 0 || num_kv_heads <= 0 || num_q_heads <= 0) return 1;
  const int64_t group = num_q_heads / num_kv_heads;
  const int64_t blocks = (static_cast<int64_t>(rows) * group + kTileM - 1) / kTileM * num_kv_heads;
  // As many blocks as the mma kernel fits on every multiprocessor (mma::kBlocksPerSm); keep >= 2
  // key blocks per split.
  const int64_t want = mma::kBlocksPerSm * int64_t{sm_count > 0 ? sm_count : 1} / blocks;
  const int64_t key_blocks = (static_cast<int64_t>(prefix_rows) + rows + kTileK - 1) / kTileK;
  int64_t splits = want < key_blocks / 2 ? want : key_blocks / 2;
  if (splits > kMaxSplits) splits = kMaxSplits;
  return splits < 1 ? 1 : static_cast<int>(splits);
}

size_t prefix_attention_workspace_bytes(int rows, int num_q_heads, int head_dim, int splits) {
  if (splits <= 1) return 0;
  const size_t pairs = static_cast<size_t>(splits) * rows * num_q_heads;
  return pairs * (sizeof(float) * head_dim + sizeof(float2));
}

cudaError_t prefix_attention(const PrefixAttentionArgs& a, int splits, void* workspace,
                             size_t workspace_bytes, cudaStream_t stream) {
  if (a.rows < 0 || a.prefix_rows < 0 || a.num_q_heads <= 0 || a.num_kv_heads <= 0 ||
      a.num_q_heads % a.num_kv_heads != 0 || a.head_dim < 2 || a.head_dim > 256 ||
      a.head_dim % 2 != 0 || !(a.softcap >= 0.0f) || a.window < 0 ||
      (a.window > 0 && a.positions == nullptr) || splits < 1 || splits > kMaxSplits) {
    return cudaErrorInvalidValue;
  }
  if (a.rows == 0) return cudaSuccess;
  if (a.visible_end == nullptr ||
      (a.prefix_rows > 0 &&
       (a.anchor == nullptr || a.prefix_end == nullptr || (a.window > 0 && !a.prefix_positions)))) {
    return cudaErrorInvalidValue;
  }
  float* part_o = nullptr;
  float2* part_ml = nullptr;
  if (splits > 1) {
    if (workspace == nullptr || workspace_bytes < prefix_attention_workspace_bytes(
                                                      a.rows, a.num_q_heads, a.head_dim, splits)) {
      return cudaErrorInvalidValue;
    }
    part_o = static_cast<float*>(workspace);
    part_ml = reinterpret_cast<float2*>(part_o + static_cast<size_t>(splits) * a.rows *
                                                     a.num_q_heads * a.head_dim);
  }
  const int d = a.head_dim;
  const bool vec =
      d % 8 == 0 && a.qkv_stride % 8 == 0 && a.prefix_stride % 8 == 0 && detail::aligned16(a.q) &&
      detail::aligned16(a.k) && detail::aligned16(a.v) &&
      (a.prefix_rows == 0 || (detail::aligned16(a.prefix_k) && detail::aligned16(a.prefix_v)));
  cudaError_t status;
  if (vec && d <= 128 && !a.force_wmma) {
    status = d <= 64 ? mma::launch<64>(a, splits, part_o, part_ml, stream)
                     : mma::launch<128>(a, splits, part_o, part_ml, stream);
  } else {
    if (!a.force_wmma) note_wmma_path(d, vec);
    if (d <= 32) {
      status = launch_wmma<32>(a, splits, part_o, part_ml, vec, stream);
    } else if (d <= 64) {
      status = launch_wmma<64>(a, splits, part_o, part_ml, vec, stream);
    } else if (d <= 128) {
      status = launch_wmma<128>(a, splits, part_o, part_ml, vec, stream);
    } else {
      status = launch_wmma<256>(a, splits, part_o, part_ml, vec, stream);
    }
  }
  if (status != cudaSuccess || splits == 1) return status;
  const int64_t pairs = static_cast<int64_t>(a.rows) * a.num_q_heads;
  constexpr int kCombineWarps = 8;
  const unsigned grid = static_cast<unsigned>((pairs + kCombineWarps - 1) / kCombineWarps);
  if (d % 4 == 0 && detail::aligned16(part_o)) {  // float4 partials
    launch_kernel(prefix_attention_combine<4>, grid, kCombineWarps * 32, 0, stream, part_o, part_ml,
                  splits, a.rows, a.num_q_heads, d, a.out, a.out_stride);
  } else {
    launch_kernel(prefix_attention_combine<2>, grid, kCombineWarps * 32, 0, stream, part_o, part_ml,
                  splits, a.rows, a.num_q_heads, d, a.out, a.out_stride);
  }
  return cudaGetLastError();
}

}  // namespace radix::cuda
