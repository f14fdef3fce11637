#include "backend/cuda/kernels/device_math.cuh"
#include "backend/cuda/kernels/launch.cuh"
#include "backend/cuda/kernels/qk_norm_rope.cuh"
#include "backend/cuda/kernels/qk_norm_rope_paths.cuh"

namespace radix::cuda {
namespace {

// The float32 angle computed the way the Hugging Face reference does: pos * (1/theta^(2j/D)).
template <int kHeadDim>
struct InvFreq {
  float theta;
  __device__ float operator()(int j) const {
    return 1.0f / powf(theta, static_cast<float>(2 * j) / kHeadDim);
  }
};

// Whole 16-byte accesses (a Bf16x8 read or written member by member compiles to four 4-byte
// accesses, or eight 2-byte ones).
__device__ __forceinline__ uint4 load16(const bf16* p) {
  return *reinterpret_cast<const uint4*>(p);
}

__device__ __forceinline__ void unpack16(const uint4& raw, float (&v)[8]) {
  detail::unpack(reinterpret_cast<const detail::Bf16x8&>(raw), v);
}

__device__ __forceinline__ void store16(bf16* p, const float (&v)[8]) {
  const detail::Bf16x8 packed = detail::pack(v);
  *reinterpret_cast<uint4*>(p) = reinterpret_cast<const uint4&>(packed);
}

// The 16-byte path. A row's q and k heads are (q + k heads) * D/8 slots of 8 contiguous bf16, slot
// s at columns [8s, 8s + 8): a head is D/8 consecutive slots, the first D/16 of them its first
// half. A thread takes one slot of each of the block's kRows rows, so a head's slots are D/8
// consecutive lanes of one warp (D/8 divides 32 and blocks are whole warps): the rotate-half
// partner of a slot is the lane D/16 away and the head's sum of squares is a shuffle reduction
// over its D/8 lanes.
//
// Block (b, y) takes rows [b * kRows, (b + 1) * kRows) and their heads [y * heads_per_block,
// (y + 1) * heads_per_block): all heads where a row has at most 1,024 slots (384 threads for
// Qwen3-0.6B's 16 + 8 heads, 640 for 8B's 32 + 8), else the heads split evenly between blocks
// (Qwen3-32B's 64 + 8: two of 576). A thread issues its kRows 16-byte loads before the rows'
// angles are computed, so a block waits for memory about once; the weights are loaded after that,
// from L1 (every row reads the same 2 x D values), so that only the rows' data is held across the
// angles (registers limit how many blocks an SM holds). More rows a block keep more bytes in
// flight a thread at the price of registers; they share nothing else, the angles depending on each
// row's position.
// Registers: at most 32 for one row a block (they fit, no spills), so that an SM holds 2,048
// threads; 40 for two (uncapped they take 64; at 40 they spill 16 bytes, at 32 116), so that an SM
// holds four blocks of 384 threads.
template <int kHeadDim, int kRows>
__global__ void __launch_bounds__(1024) __maxnreg__(kRows == 1 ? 32 : 40)
    qk_norm_rope_vec_kernel(bf16* __restrict__ qkv, int64_t row_stride,
                            const int32_t* __restrict__ positions,
                            const bf16* __restrict__ q_weight, const bf16* __restrict__ k_weight,
                            int64_t rows, int num_q_heads, int num_heads, int heads_per_block,
                            float theta, float eps) {
  begin_kernel();
  constexpr int kHalf = kHeadDim / 2;
  constexpr int kHeadSlots = kHeadDim / 8;
  constexpr int kPartner = kHeadSlots / 2;
  static_assert(kHeadSlots <= 32 && 32 % kHeadSlots == 0, "a head must lie inside one warp");
  const int64_t first_row = static_cast<int64_t>(blockIdx.x) * kRows;
  const int first_head = blockIdx.y * heads_per_block;
  const int end_head = min(num_heads, first_head + heads_per_block);
  const int slot = first_head * kHeadSlots + threadIdx.x;
  const bool in_row = slot < end_head * kHeadSlots;

  uint4 x[kRows];
#pragma unroll
  for (int k = 0; k < kRows; ++k) {
    const bool active = in_row && first_row + k < rows;
    x[k] = active ? load16(qkv + (first_row + k) * row_stride + 8 * slot) : make_uint4(0, 0, 0, 0);
  }
  // The rows' sines and cosines, computed once a block (sincosf and powf would dominate if every
  // thread computed its own), row k's at [k][j].
  __shared__ alignas(16) float s_cos[kRows][kHalf];
  __shared__ alignas(16) float s_sin[kRows][kHalf];
  for (int j = threadIdx.x; j < kRows * kHalf; j += blockDim.x) {
    const int k = j / kHalf;
    const float pos = first_row + k < rows ? static_cast<float>(positions[first_row + k]) : 0.0f;
    sincosf(pos * InvFreq<kHeadDim>{theta}(j % kHalf), &s_sin[k][j % kHalf], &s_cos[k][j % kHalf]);
  }
  __syncthreads();

  const int in_head = slot % kHeadSlots;
  const bf16* w = slot / kHeadSlots < num_q_heads ? q_weight : k_weight;
  const uint4 zero = make_uint4(0, 0, 0, 0);
  float wo[8], wp[8];
  unpack16(in_row ? load16(w + 8 * in_head) : zero, wo);
  unpack16(in_row ? load16(w + 8 * (in_head ^ kPartner)) : zero, wp);
  const bool first_half = in_head < kPartner;
  const int j0 = 8 * (in_head % kPartner);
#pragma unroll
  for (int k = 0; k < kRows; ++k) {
    // Every lane takes part in the shuffles, those past the block's heads or rows with zeros:
    // whole heads of them, so they never mix with a real head's lanes.
    const uint4 partner_x = make_uint4(__shfl_xor_sync(0xffffffffu, x[k].x, kPartner),
                                       __shfl_xor_sync(0xffffffffu, x[k].y, kPartner),
                                       __shfl_xor_sync(0xffffffffu, x[k].z, kPartner),
                                       __shfl_xor_sync(0xffffffffu, x[k].w, kPartner));
    float own[8], partner[8];
    unpack16(x[k], own);
    unpack16(partner_x, partner);
    float sumsq = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; ++i) sumsq += own[i] * own[i];
#pragma unroll
    for (int offset = kHeadSlots / 2; offset > 0; offset >>= 1) {
      sumsq += __shfl_xor_sync(0xffffffffu, sumsq, offset);
    }
    const float inv_rms = rsqrtf(sumsq / kHeadDim + eps);
    float c[8], s[8];
    detail::load<8>(&s_cos[k][j0], c);
    detail::load<8>(&s_sin[k][j0], s);
    float out[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const float mine = own[i] * inv_rms * wo[i];
      const float other = partner[i] * inv_rms * wp[i];
      // lo' = a*cos - b*sin in the first half (a mine, b the partner's), hi' = b*cos + a*sin in
      // the second (b mine, a the partner's).
      out[i] = first_half ? mine * c[i] - other * s[i] : mine * c[i] + other * s[i];
    }
    if (in_row && first_row + k < rows) {
      store16(qkv + (first_row + k) * row_stride + 8 * slot, out);
    }
  }
}

// The fallback: one block per row, its warps taking the row's heads in turn. Lane l holds kPer
// contiguous elements of each half of a head, at l*kPer and D/2 + l*kPer, so the rotate-half
// partner of every element is in the same thread and the norm needs one warp reduction. The
// rotation angles depend only on the row, so the block computes their sines and cosines once
// (detail::row_rotation) and every warp reuses them for each of its heads. Scalar 2-byte accesses:
// any row stride and alignment.
template <int kHeadDim>
__global__ void qk_norm_rope_kernel(bf16* __restrict__ qkv, int64_t row_stride,
                                    const int32_t* __restrict__ positions,
                                    const bf16* __restrict__ q_weight,
                                    const bf16* __restrict__ k_weight, int num_q_heads,
                                    int num_heads, float theta, float eps) {
  begin_kernel();
  constexpr int kHalf = kHeadDim / 2;
  constexpr int kPer = kHalf / 32;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int num_warps = blockDim.x >> 5;
  const int64_t row = blockIdx.x;

  const float pos = static_cast<float>(positions[row]);
  __shared__ float s_cos[kHalf], s_sin[kHalf];
  detail::row_rotation(pos, kHalf, InvFreq<kHeadDim>{theta}, s_cos, s_sin);
  float cos_j[kPer], sin_j[kPer], wq_lo[kPer], wq_hi[kPer], wk_lo[kPer], wk_hi[kPer];
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int j = lane * kPer + i;
    cos_j[i] = s_cos[j];
    sin_j[i] = s_sin[j];
    wq_lo[i] = __bfloat162float(q_weight[j]);
    wq_hi[i] = __bfloat162float(q_weight[kHalf + j]);
    wk_lo[i] = __bfloat162float(k_weight[j]);
    wk_hi[i] = __bfloat162float(k_weight[kHalf + j]);
  }

  for (int head = warp; head < num_heads; head += num_warps) {
    bf16* x = qkv + row * row_stride + static_cast<int64_t>(head) * kHeadDim;
    const bool is_q = head < num_q_heads;
    float lo[kPer], hi[kPer];
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      lo[i] = __bfloat162float(x[lane * kPer + i]);
      hi[i] = __bfloat162float(x[kHalf + lane * kPer + i]);
    }
    float sumsq = 0.0f;
#pragma unroll
    for (int i = 0; i < kPer; ++i) sumsq += lo[i] * lo[i] + hi[i] * hi[i];
    const float inv_rms = rsqrtf(detail::warp_sum(sumsq) / kHeadDim + eps);
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      const int j = lane * kPer + i;
      const float a = lo[i] * inv_rms * (is_q ? wq_lo[i] : wk_lo[i]);
      const float b = hi[i] * inv_rms * (is_q ? wq_hi[i] : wk_hi[i]);
      x[j] = __float2bfloat16(a * cos_j[i] - b * sin_j[i]);
      x[kHalf + j] = __float2bfloat16(b * cos_j[i] + a * sin_j[i]);
    }
  }
}

template <int kHeadDim>
cudaError_t launch_fallback(bf16* qkv, int64_t row_stride, const int32_t* positions, const bf16* qw,
                            const bf16* kw, int64_t rows, int num_q_heads, int num_kv_heads,
                            float rope_theta, float eps, cudaStream_t stream) {
  const int num_heads = num_q_heads + num_kv_heads;
  const int warps = num_heads < 8 ? num_heads : 8;
  return launch_kernel(qk_norm_rope_kernel<kHeadDim>, static_cast<unsigned>(rows), warps * 32, 0,
                       stream, qkv, row_stride, positions, qw, kw, num_q_heads, num_heads,
                       rope_theta, eps);
}

constexpr int kMaxThreads = 1024;
// Rows a block of the 16-byte path takes (1 or 2), unless the caller says: fp8_kernels_bench
// times both.
constexpr int kRowsPerBlock = 1;

// Also at most 65,535 heads a row: a row's blocks are the grid's y dimension.
bool vectorizable(const bf16* qkv, int64_t row_stride, const bf16* qw, const bf16* kw,
                  int64_t num_heads) {
  return detail::aligned16(qkv) && detail::aligned16(qw) && detail::aligned16(kw) &&
         row_stride % 8 == 0 && num_heads <= 65535;
}

// Call only where vectorizable().
template <int kHeadDim, int kRows>
cudaError_t launch_vectorized(bf16* qkv, int64_t row_stride, const int32_t* positions,
                              const bf16* qw, const bf16* kw, int64_t rows, int num_q_heads,
                              int num_kv_heads, float rope_theta, float eps, cudaStream_t stream) {
  constexpr int kHeadSlots = kHeadDim / 8;
  const int num_heads = num_q_heads + num_kv_heads;
  const int blocks_per_row = (num_heads * kHeadSlots + kMaxThreads - 1) / kMaxThreads;
  const int heads_per_block = (num_heads + blocks_per_row - 1) / blocks_per_row;
  const int threads = (heads_per_block * kHeadSlots + 31) / 32 * 32;
  const dim3 grid(static_cast<unsigned>((rows + kRows - 1) / kRows),
                  static_cast<unsigned>(blocks_per_row));
  return launch_kernel(qk_norm_rope_vec_kernel<kHeadDim, kRows>, grid, threads, 0, stream, qkv,
                       row_stride, positions, qw, kw, rows, num_q_heads, num_heads, heads_per_block,
                       rope_theta, eps);
}

template <int kHeadDim>
cudaError_t launch_vectorized(int rows_per_block, bf16* qkv, int64_t row_stride,
                              const int32_t* positions, const bf16* qw, const bf16* kw,
                              int64_t rows, int num_q_heads, int num_kv_heads, float rope_theta,
                              float eps, cudaStream_t stream) {
  return rows_per_block == 2
             ? launch_vectorized<kHeadDim, 2>(qkv, row_stride, positions, qw, kw, rows, num_q_heads,
                                              num_kv_heads, rope_theta, eps, stream)
             : launch_vectorized<kHeadDim, 1>(qkv, row_stride, positions, qw, kw, rows, num_q_heads,
                                              num_kv_heads, rope_theta, eps, stream);
}

enum class Path { kBest, kVectorized, kFallback };

cudaError_t run(Path path, int rows_per_block, bf16* qkv, int64_t row_stride,
                const int32_t* positions, const bf16* q_weight, const bf16* k_weight, int64_t rows,
                int num_q_heads, int num_kv_heads, int head_dim, float rope_theta, float eps,
                cudaStream_t stream) {
  if (rows < 0 || rows > INT32_MAX || num_q_heads < 0 || num_kv_heads < 0 || rope_theta <= 0.0f) {
    return cudaErrorInvalidValue;
  }
  if (head_dim != 64 && head_dim != 128 && head_dim != 256) return cudaErrorInvalidValue;
  const int64_t num_heads = static_cast<int64_t>(num_q_heads) + num_kv_heads;
  if (num_heads > INT32_MAX / 256 || row_stride < num_heads * head_dim) {
    return cudaErrorInvalidValue;
  }
  const bool vec = vectorizable(qkv, row_stride, q_weight, k_weight, num_heads);
  if (path == Path::kVectorized && !vec) return cudaErrorNotSupported;
  if (rows == 0 || num_heads == 0) return cudaSuccess;
  cudaError_t err;
  if (vec && path != Path::kFallback) {
    switch (head_dim) {
      case 64:
        err = launch_vectorized<64>(rows_per_block, qkv, row_stride, positions, q_weight, k_weight,
                                    rows, num_q_heads, num_kv_heads, rope_theta, eps, stream);
        break;
      case 128:
        err = launch_vectorized<128>(rows_per_block, qkv, row_stride, positions, q_weight, k_weight,
                                     rows, num_q_heads, num_kv_heads, rope_theta, eps, stream);
        break;
      default:
        err = launch_vectorized<256>(rows_per_block, qkv, row_stride, positions, q_weight, k_weight,
                                     rows, num_q_heads, num_kv_heads, rope_theta, eps, stream);
        break;
    }
  } else {
    switch (head_dim) {
      case 64:
        err = launch_fallback<64>(qkv, row_stride, positions, q_weight, k_weight, rows, num_q_heads,
                                  num_kv_heads, rope_theta, eps, stream);
        break;
      case 128:
        err = launch_fallback<128>(qkv, row_stride, positions, q_weight, k_weight, rows,
                                   num_q_heads, num_kv_heads, rope_theta, eps, stream);
        break;
      default:
        err = launch_fallback<256>(qkv, row_stride, positions, q_weight, k_weight, rows,
                                   num_q_heads, num_kv_heads, rope_theta, eps, stream);
        break;
    }
  }
  return err != cudaSuccess ? err : cudaGetLastError();
}

}  // namespace

cudaError_t qk_norm_rope(bf16* qkv, int64_t row_stride, const int32_t* positions,
                         const bf16* q_weight, const bf16* k_weight, int64_t rows, int num_q_heads,
                         int num_kv_heads, int head_dim, float rope_theta, float eps,
                         cudaStream_t stream) {
  return run(Path::kBest, kRowsPerBlock, qkv, row_stride, positions, q_weight, k_weight, rows,
             num_q_heads, num_kv_heads, head_dim, rope_theta, eps, stream);
}

namespace detail {

cudaError_t qk_norm_rope_vectorized(bf16* qkv, int64_t row_stride, const int32_t* positions,
                                    const bf16* q_weight, const bf16* k_weight, int64_t rows,
                                    int num_q_heads, int num_kv_heads, int head_dim,
                                    float rope_theta, float eps, cudaStream_t stream,
                                    int rows_per_block) {
  if (rows_per_block != 0 && rows_per_block != 1 && rows_per_block != 2) {
    return cudaErrorInvalidValue;
  }
  return run(Path::kVectorized, rows_per_block == 0 ? kRowsPerBlock : rows_per_block, qkv,
             row_stride, positions, q_weight, k_weight, rows, num_q_heads, num_kv_heads, head_dim,
             rope_theta, eps, stream);
}

cudaError_t qk_norm_rope_fallback(bf16* qkv, int64_t row_stride, const int32_t* positions,
                                  const bf16* q_weight, const bf16* k_weight, int64_t rows,
                                  int num_q_heads, int num_kv_heads, int head_dim, float rope_theta,
                                  float eps, cudaStream_t stream) {
  return run(Path::kFallback, 1, qkv, row_stride, positions, q_weight, k_weight, rows, num_q_heads,
             num_kv_heads, head_dim, rope_theta, eps, stream);
}

}  // namespace detail
}  // namespace radix::cuda
