#include <cooperative_groups.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "backend/cuda/attention_ptx.cuh"
#include "backend/cuda/attention_wgmma_ptx.cuh"
#include "backend/cuda/kernels/launch.cuh"
#include "backend/cuda/kernels/per_device.h"
#include "backend/cuda/kernels/skinny_gemm.cuh"

namespace radix::cuda {
namespace {

namespace cg = cooperative_groups;

constexpr int kMaxSplits = kSkinnyGemmMaxSplits;
constexpr int kThreads = 128;     // 4 warps
constexpr int kBK = 64;           // K per pipeline stage
constexpr int kChunks = kBK / 8;  // 16-byte chunks per tile row
// Pipeline shared memory per CTA: two CTAs fit an SM (227 KB, 1 KB of each reserved), each with
// as many stages as fit, so that an SM has ~100 KB of loads in flight: more than DRAM latency
// times the per-SM bandwidth, and at M = 64 the x tiles take half of it.
constexpr int kSmemTarget = 112 * 1024;
constexpr int kMaxStages = 12;

struct Params {
  const bf16* x;
  int64_t ldx;
  const bf16* w;
  int64_t ldw;
  void* y;
  int64_t ldy;
  int m, n, k;
  bool accumulate;
  const void* bias;
  int kb_per_split, splits;
};

// 16 bytes global -> shared, zero-filled when !valid (src must still be a mapped address). The
// weights are read once: evict them first from L2 so x and the partial tiles stay.
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src, bool valid,
                                            uint64_t policy) {
  asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2, %3;\n" ::"r"(dst),
               "l"(src), "r"(valid ? 16 : 0), "l"(policy));
}

// Byte offset of 16-byte chunk c of tile row r: chunks XOR-swizzled by the row so that the eight
// rows one ldmatrix reads at the same logical chunk fall in eight different bank groups.
__device__ __forceinline__ uint32_t tile_offset(int r, int c) {
  return static_cast<uint32_t>((r * kChunks + (c ^ (r & 7))) * 16);
}

template <typename TO>
__device__ __forceinline__ float load_out(const TO* p) {
  if constexpr (sizeof(TO) == 2) {
    return __bfloat162float(*p);
  } else {
    return *p;
  }
}
template <typename TO>
__device__ __forceinline__ void store_out(TO* p, float v) {
  if constexpr (sizeof(TO) == 2) {
    *p = __float2bfloat16(v);
  } else {
    *p = v;
  }
}

// kWgmma: the tile's products are one warpgroup MMA per k16 step (wgmma, sm_90a), 64 rows of x
// (MT = 4) and all BN columns, read straight from the swizzled stage; else mma.sync per warp.
template <int MT, int BN, bool kWgmma = false>
struct Tiling {
  static_assert(!kWgmma || MT == 4, "a warpgroup MMA takes 64 rows of x");
  static constexpr int kRows = MT * 16;                // x rows per tile (M padded)
  static constexpr int kWarpsN = BN / 32;              // each warp owns 32 columns...
  static constexpr int kGroupsK = 4 / kWarpsN;         // ...and 1/kGroupsK of a stage's K
  static constexpr int kStepsK = kBK / 16 / kGroupsK;  // mma k-steps per warp per stage
  static constexpr int kStageBytes = (BN + kRows) * kBK * 2;
  static constexpr int kStages = std::min(kMaxStages, kSmemTarget / kStageBytes);
  static constexpr int kRedStride = BN + 4;  // fp32 tile row stride (pads bank conflicts)
  static constexpr int kRedBytes = kRows * kRedStride * 4;
  // + 1 KiB to align the stages to the 1,024-byte swizzle atoms the wgmma descriptors address.
  static constexpr int kSmemBytes =
      std::max(kStages * kStageBytes, kRedBytes) + (kWgmma ? 1024 : 0);
  static_assert(kStages >= 3, "too few pipeline stages");
  // Two sets of fragments in registers where the accumulators leave room (MT = 8 would spill).
  static constexpr bool kDoubleFragments = MT <= 4;
};

template <int MT, int BN, typename TO, bool kWgmma>
__global__ void __launch_bounds__(kThreads, 2) skinny_gemm_kernel(const Params p) {
  begin_kernel();
  using T = Tiling<MT, BN, kWgmma>;
  extern __shared__ __align__(128) unsigned char smem[];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int tile = blockIdx.x, split = blockIdx.y;
  const int n0 = tile * BN;
  const int k_blocks = (p.k + kBK - 1) / kBK;
  const int kb_begin = split * p.kb_per_split;
  const int kb_count = max(0, min(k_blocks, kb_begin + p.kb_per_split) - kb_begin);

  uint64_t evict_first;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(evict_first));
  uint64_t evict_last;
  asm volatile("createpolicy.fractional.L2::evict_last.b64 %0, 1.0;\n" : "=l"(evict_last));

  const uint32_t smem_base =
      kWgmma ? (ptx::shared_address(smem) + 1023u) & ~1023u : ptx::shared_address(smem);
  // Stage s: the w tile [BN][kBK], then the x tile [kRows][kBK].
  auto load_stage = [&](int slot, int kb) {
    const uint32_t ws = smem_base + slot * T::kStageBytes;
    const uint32_t xs = ws + BN * kBK * 2;
    const int k0 = kb * kBK;
#pragma unroll
    for (int j = 0; j < BN * kChunks / kThreads; ++j) {
      const int i = tid + j * kThreads;
      const int r = i / kChunks, c = i % kChunks;
      const int gn = n0 + r, gk = k0 + c * 8;
      const bool valid = gn < p.n && gk < p.k;
      cp_async_16(ws + tile_offset(r, c), valid ? p.w + int64_t{gn} * p.ldw + gk : p.w, valid,
                  evict_first);
    }
#pragma unroll
    for (int j = 0; j < T::kRows * kChunks / kThreads; ++j) {
      const int i = tid + j * kThreads;
      const int r = i / kChunks, c = i % kChunks;
      const int gk = k0 + c * 8;
      const bool valid = r < p.m && gk < p.k;
      cp_async_16(xs + tile_offset(r, c), valid ? p.x + int64_t{r} * p.ldx + gk : p.x, valid,
                  evict_last);
    }
  };

  float acc[MT][4][4];
#pragma unroll
  for (int i = 0; i < MT; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;
  // The wgmma tile: warp w holds rows 16w.. 16w + 15, n8 block j in d[j] (the m16n8 C layout).
  float d[kWgmma ? BN / 8 : 1][4];
#pragma unroll
  for (int j = 0; j < (kWgmma ? BN / 8 : 1); ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) d[j][e] = 0.0f;

  const int warp_n = warp % T::kWarpsN, group_k = warp / T::kWarpsN;

#pragma unroll
  for (int s = 0; s < T::kStages - 1; ++s) {
    if (s < kb_count) load_stage(s, kb_begin + s);
    ptx::cp_async_commit();  // empty groups keep the wait counts uniform
  }
  for (int i = 0; i < kb_count; ++i) {
    ptx::cp_async_wait<T::kStages - 2>();
    // The tensor cores read the stage through the async proxy: this thread's copies into it are
    // made visible to that proxy before the barrier publishes them.
    if constexpr (kWgmma) ptx::fence_proxy_async_shared();
    __syncthreads();  // stage i is visible to all; the slot refilled below was read at i - 1
    if (i + T::kStages - 1 < kb_count) {
      load_stage((i + T::kStages - 1) % T::kStages, kb_begin + i + T::kStages - 1);
    }
    ptx::cp_async_commit();
    const uint32_t ws = smem_base + (i % T::kStages) * T::kStageBytes;
    const uint32_t xs = ws + BN * kBK * 2;
    if constexpr (kWgmma) {
      // Four k16 steps, each 32 bytes further into the 128-byte swizzled rows of both tiles (8-row
      // atoms 1,024 bytes apart); waited for before the next iteration refills a slot.
      ptx::wgmma_fence();
#pragma unroll
      for (int ks = 0; ks < kBK / 16; ++ks) {
        const uint64_t a = ptx::wgmma_desc_sw128(xs + ks * 32, 16, 1024);
        const uint64_t b = ptx::wgmma_desc_sw128(ws + ks * 32, 16, 1024);
        if constexpr (BN == 64) {
          ptx::wgmma_m64n64k16_ss(d, a, b, 1);
        } else {
          ptx::wgmma_m64n128k16_ss(d, a, b, 1);
        }
      }
      ptx::wgmma_commit();
      ptx::wgmma_wait<0>();
      continue;
    }
    // A k-step's fragments: two 16x16 blocks of w (four n8 tiles) and MT 16x16 blocks of x.
    auto load_fragments = [&](int step, uint32_t(&a)[MT][4], uint32_t(&b)[2][4]) {
      const int kc = (group_k * T::kStepsK + step) * 2;  // first 16-byte chunk of this k-step
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int r = warp_n * 32 + h * 16 + (lane >> 4) * 8 + (lane & 7);
        ptx::ldmatrix_x4(b[h], ws + tile_offset(r, kc + ((lane >> 3) & 1)));
      }
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        ptx::ldmatrix_x4(a[mt], xs + tile_offset(mt * 16 + (lane & 15), kc + (lane >> 4)));
      }
    };
    auto multiply = [&](const uint32_t(&a)[MT][4], const uint32_t(&b)[2][4]) {
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) {
          ptx::mma_bf16_16816(acc[mt][nt], a[mt], b[nt >> 1][(nt & 1) * 2],
                              b[nt >> 1][(nt & 1) * 2 + 1]);
        }
      }
    };
    if constexpr (T::kDoubleFragments) {
      // The next step's fragments load while this step's mmas run.
      uint32_t a[2][MT][4], b[2][2][4];
      load_fragments(0, a[0], b[0]);
#pragma unroll
      for (int step = 0; step < T::kStepsK; ++step) {
        if (step + 1 < T::kStepsK) load_fragments(step + 1, a[(step + 1) & 1], b[(step + 1) & 1]);
        multiply(a[step & 1], b[step & 1]);
      }
    } else {
#pragma unroll
      for (int step = 0; step < T::kStepsK; ++step) {
        uint32_t a[MT][4], b[2][4];
        load_fragments(step, a, b);
        multiply(a, b);
      }
    }
  }
  ptx::cp_async_wait<0>();
  __syncthreads();  // the pipeline's shared memory becomes the fp32 tile

  // The CTA's tile in shared memory, the K groups added in group order.
  float* red = reinterpret_cast<float*>(smem);
  if constexpr (kWgmma) {
#pragma unroll
    for (int j = 0; j < BN / 8; ++j)
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int r = warp * 16 + (lane >> 2) + half * 8;
        const int c = j * 8 + (lane & 3) * 2;
        *reinterpret_cast<float2*>(red + r * T::kRedStride + c) =
            make_float2(d[j][half * 2], d[j][half * 2 + 1]);
      }
    __syncthreads();
  }
#pragma unroll
  for (int g = 0; g < (kWgmma ? 0 : T::kGroupsK); ++g) {
    if (group_k == g) {
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int nt = 0; nt < 4; ++nt)
#pragma unroll
          for (int half = 0; half < 2; ++half) {
            const int r = mt * 16 + (lane >> 2) + half * 8;
            const int c = warp_n * 32 + nt * 8 + (lane & 3) * 2;
            float2* dst = reinterpret_cast<float2*>(red + r * T::kRedStride + c);
            float2 v = make_float2(acc[mt][nt][half * 2], acc[mt][nt][half * 2 + 1]);
            if (g > 0) {
              const float2 old = *dst;
              v.x = old.x + v.x;
              v.y = old.y + v.y;
            }
            *dst = v;
          }
    }
    __syncthreads();
  }

  // Split K: the CTAs of one N tile are one cluster (split = rank); once all have their tile in
  // shared memory, each sums 1/splits of the tile's elements over the ranks' tiles in rank order
  // (distributed shared memory), so the result is the same whichever CTA finishes first, and no
  // partial tile leaves the chip.
  cg::cluster_group cluster = cg::this_cluster();
  if (p.splits > 1) cluster.sync();
  const float* ranks[kMaxSplits];
#pragma unroll
  for (int q = 0; q < kMaxSplits; ++q) {
    ranks[q] = p.splits > 1 && q < p.splits ? cluster.map_shared_rank(red, q) : red;
  }
  // Groups of 4 columns of one row (BN is a multiple of 4), split evenly over the ranks.
  const int groups = p.m * (BN / 4);
  const int per_rank = (groups + p.splits - 1) / p.splits;
  const int g_begin = split * per_rank, g_end = min(groups, g_begin + per_rank);
  TO* y = static_cast<TO*>(p.y);
  const TO* bias = static_cast<const TO*>(p.bias);
  const int cols = min(BN, p.n - n0);
  constexpr int kUnroll = 4;  // groups a thread has in flight: their loads overlap
  for (int g0 = g_begin + tid; g0 < g_end; g0 += kThreads * kUnroll) {
    float v[kUnroll][4];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int g = g0 + u * kThreads;
      const int off = g < g_end ? (g / (BN / 4)) * T::kRedStride + (g % (BN / 4)) * 4 : 0;
      float4 sum = *reinterpret_cast<const float4*>(ranks[0] + off);
#pragma unroll
      for (int q = 1; q < kMaxSplits; ++q) {
        if (q < p.splits) {
          const float4 t = *reinterpret_cast<const float4*>(ranks[q] + off);
          sum.x += t.x, sum.y += t.y, sum.z += t.z, sum.w += t.w;
        }
      }
      v[u][0] = sum.x, v[u][1] = sum.y, v[u][2] = sum.z, v[u][3] = sum.w;
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int g = g0 + u * kThreads;
      const int r = g / (BN / 4), c = (g % (BN / 4)) * 4;
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        if (g < g_end && c + e < cols) {
          const int64_t col = n0 + c + e;
          if (bias) v[u][e] += load_out(bias + col);
          if (p.accumulate) v[u][e] += load_out(y + int64_t{r} * p.ldy + col);
        }
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int g = g0 + u * kThreads;
      const int r = g / (BN / 4), c = (g % (BN / 4)) * 4;
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        if (g < g_end && c + e < cols) store_out(y + int64_t{r} * p.ldy + n0 + c + e, v[u][e]);
      }
    }
  }
  if (p.splits > 1) cluster.sync();  // no CTA leaves while another still reads its tile
}

// Above this many rows (and up to 64) the tile's products are warpgroup MMAs where the build has
// them; at fewer rows a 64-row wgmma would mostly multiply the x tile's zero padding.
constexpr int kSkinnyWgmmaMinRows = 16;

int sm_count() {
  const int sms = detail::sm_count_of_current_device();
  return sms > 0 ? sms : 132;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

template <int MT, int BN, typename TO, bool kWgmma = false>
cudaError_t launch(const Params& p, int n_tiles, cudaStream_t stream) {
  using T = Tiling<MT, BN, kWgmma>;
  static std::atomic<uint64_t> configured{0};  // the attribute is the device's: set on each
  const cudaError_t attr = detail::once_per_device(configured, [](int) {
    return cudaFuncSetAttribute(skinny_gemm_kernel<MT, BN, TO, kWgmma>,
                                cudaFuncAttributeMaxDynamicSharedMemorySize, T::kSmemBytes);
  });
  if (attr != cudaSuccess) return attr;
  cudaLaunchAttribute cluster{};
  cluster.id = cudaLaunchAttributeClusterDimension;
  cluster.val.clusterDim.x = 1;
  cluster.val.clusterDim.y = p.splits;
  cluster.val.clusterDim.z = 1;
  return launch_kernel_with({cluster}, skinny_gemm_kernel<MT, BN, TO, kWgmma>,
                            dim3(n_tiles, p.splits), dim3(kThreads), T::kSmemBytes, stream, p);
}

template <int BN, typename TO>
cudaError_t launch_rows(const Params& p, int n_tiles, cudaStream_t stream) {
  if (skinny_gemm_wgmma() && p.m > kSkinnyWgmmaMinRows && p.m <= 64) {
    return launch<4, BN, TO, true>(p, n_tiles, stream);
  }
  if (p.m <= 16) return launch<1, BN, TO>(p, n_tiles, stream);
  if (p.m <= 32) return launch<2, BN, TO>(p, n_tiles, stream);
  if (p.m <= 64) return launch<4, BN, TO>(p, n_tiles, stream);
  return launch<8, BN, TO>(p, n_tiles, stream);
}

// The tiling, fitted to gemm_bench's sweep of every (tile width, split) on the H200 over the
// Qwen3-0.6B and -8B projections at M = 1, 16, 64 and 128 (docs/cuda.md, "Small-M GEMMs"): the
// fastest grids hold about 1.5 CTAs per SM (~198 on 132 SMs with 64-wide tiles, ~224 with
// 128-wide ones), not the 2 that fit; more K slices add prologue and reduction time for nothing.
// 128-wide tiles win only above 32 rows on large weights (8B's; x is read from shared memory half
// as often per weight byte), 64-wide ones elsewhere (more tiles to spread).
}  // namespace

bool skinny_gemm_wgmma() {
#if defined(RADIX_SKINNY_WGMMA)
  static const bool on = [] {
    const char* v = std::getenv("RADIX_CUDA_SKINNY_WGMMA");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return on;
#else
  return false;
#endif
}

bool skinny_gemm_supported(const void* x, int64_t ldx, const void* w, int64_t ldw, int64_t m,
                           int64_t n, int64_t k) {
  const auto aligned = [](const void* q) { return (reinterpret_cast<uintptr_t>(q) & 15u) == 0; };
  return m >= 1 && m <= kSkinnyGemmMaxRows && n >= 1 && n <= INT32_MAX - 128 && k >= 8 &&
         k <= INT32_MAX - kBK && k % 8 == 0 && ldx % 8 == 0 && ldw % 8 == 0 && ldx >= k &&
         ldw >= k && aligned(x) && aligned(w);
}

SkinnyGemmTiling skinny_gemm_tiling(int64_t m, int64_t n, int64_t k) {
  const int bn = m > 32 && n * k >= (int64_t{1} << 24) ? 128 : 64;
  const int64_t max_ctas = bn == 64 ? sm_count() * 3 / 2 : sm_count() * 17 / 10;
  const int64_t tiles = ceil_div(n, bn);
  const int64_t splits = std::clamp<int64_t>(max_ctas / tiles, 1, kSkinnyGemmMaxSplits);
  return {bn, static_cast<int>(std::min(splits, ceil_div(k, kBK)))};
}

template <typename TO>
cudaError_t skinny_gemm(const bf16* x, int64_t ldx, const bf16* w, int64_t ldw, TO* y, int64_t ldy,
                        int64_t m, int64_t n, int64_t k, bool accumulate, const TO* bias,
                        cudaStream_t stream, int bn, int splits) {
  if (!skinny_gemm_supported(x, ldx, w, ldw, m, n, k) || ldy < n || y == nullptr ||
      (bn != 0 && bn != 64 && bn != 128) || splits < 0 || splits > kSkinnyGemmMaxSplits) {
    return cudaErrorInvalidValue;
  }
  if (bn == 0 || splits == 0) {
    const SkinnyGemmTiling t = skinny_gemm_tiling(m, n, k);
    if (bn == 0) bn = t.bn;
    if (splits == 0) splits = bn == t.bn ? t.splits : 1;
  }
  const int64_t n_tiles = ceil_div(n, bn);
  const int64_t k_blocks = ceil_div(k, kBK);
  if (n_tiles > INT32_MAX) return cudaErrorInvalidValue;
  // Even slices, none empty.
  splits = static_cast<int>(std::min<int64_t>(splits, k_blocks));
  const int64_t per = ceil_div(k_blocks, splits);
  splits = static_cast<int>(ceil_div(k_blocks, per));

  Params p{};
  p.x = x, p.ldx = ldx, p.w = w, p.ldw = ldw, p.y = y, p.ldy = ldy;
  p.m = static_cast<int>(m), p.n = static_cast<int>(n), p.k = static_cast<int>(k);
  p.accumulate = accumulate, p.bias = bias;
  p.kb_per_split = static_cast<int>(per), p.splits = splits;
  const int tiles = static_cast<int>(n_tiles);
  return bn == 128 ? launch_rows<128, TO>(p, tiles, stream) : launch_rows<64, TO>(p, tiles, stream);
}

template cudaError_t skinny_gemm<bf16>(const bf16*, int64_t, const bf16*, int64_t, bf16*, int64_t,
                                       int64_t, int64_t, int64_t, bool, const bf16*, cudaStream_t,
                                       int, int);
template cudaError_t skinny_gemm<float>(const bf16*, int64_t, const bf16*, int64_t, float*, int64_t,
                                        int64_t, int64_t, int64_t, bool, const float*, cudaStream_t,
                                        int, int);

}  // namespace radix::cuda
