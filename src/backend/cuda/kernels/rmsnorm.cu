#include <type_traits>

#include "backend/cuda/kernels/device_math.cuh"
#include "backend/cuda/kernels/fp8_store.cuh"
#include "backend/cuda/kernels/launch.cuh"
#include "backend/cuda/kernels/rmsnorm.cuh"

namespace radix::cuda {
namespace {

// Chunk c of the row into v, after x += delta when there is a delta: v is then the sum as stored
// (rounded to bf16 when x is bf16), so that the norm reads what later layers read.
template <int kVec, typename TX>
__device__ __forceinline__ void load_residual(TX* x, const bf16* d, int c, float (&v)[kVec]) {
  detail::load<kVec>(x + c * kVec, v);
  if (d) {
    float dv[kVec];
    detail::load<kVec>(d + c * kVec, dv);
#pragma unroll
    for (int i = 0; i < kVec; ++i) v[i] += dv[i];
    detail::store<kVec>(x + c * kVec, v);
    if constexpr (sizeof(TX) == 2) {
      // The stored value, rounded here as the store rounds it (to nearest even) rather than
      // read back: a load behind a store to the same address waits for it.
#pragma unroll
      for (int i = 0; i < kVec; ++i) v[i] = __bfloat162float(__float2bfloat16(v[i]));
    }
  }
}

template <int kVec>
__device__ __forceinline__ void add_squares(const float (&v)[kVec], float& sumsq) {
#pragma unroll
  for (int i = 0; i < kVec; ++i) sumsq += v[i] * v[i];
}

// Chunk c of the normed row in place: v * inv_rms * weight, or * (1 + weight) with kUnitOffset.
template <int kVec, bool kUnitOffset>
__device__ __forceinline__ void apply_norm(const bf16* weight, int c, float inv_rms,
                                           float (&v)[kVec]) {
  float w[kVec];
  detail::load<kVec>(weight + c * kVec, w);
#pragma unroll
  for (int i = 0; i < kVec; ++i) v[i] = v[i] * inv_rms * (kUnitOffset ? 1.0f + w[i] : w[i]);
}

// One block per row. kVec = 8 moves 16 bytes of bf16 (32 of fp32) per access; kVec = 1 serves
// odd hidden sizes and misaligned buffers.
// kCached = 0 reads the row twice (sum of squares, then scale); the second read hits L1/L2, rows
// being at most a few tens of KB. kCached = N > 0 holds the row in registers between the two
// phases instead (N chunks of kVec per thread): one read of x, for hidden / kVec <= N * blockDim.x.
// TO = uint8_t writes e4m3 with one fp32 scale per row (out_scale): the amax is taken over the
// fp32 normed values, which are then quantised as quantize_e4m3_rows does, with no rounding to
// bf16 in between (kCached = 0 computes the normed row once more for that).
template <typename TX, typename TO, int kVec, int kCached, bool kUnitOffset>
__global__ void add_rmsnorm_kernel(TX* __restrict__ x_base, int64_t x_stride,
                                   const bf16* __restrict__ delta, int64_t delta_stride,
                                   const bf16* __restrict__ weight, TO* __restrict__ out,
                                   int64_t out_stride, float* __restrict__ out_scale, int hidden,
                                   float eps) {
  begin_kernel();
  constexpr bool kFp8 = std::is_same_v<TO, uint8_t>;
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  TX* x = x_base + row * x_stride;
  const bf16* d = delta ? delta + row * delta_stride : nullptr;
  TO* y = out + row * out_stride;
  const int chunks = hidden / kVec;

  if constexpr (kCached == 0) {
    float sumsq = 0.0f;
    for (int c = threadIdx.x; c < chunks; c += blockDim.x) {
      float v[kVec];
      load_residual<kVec>(x, d, c, v);
      add_squares<kVec>(v, sumsq);
    }
    const float inv_rms = rsqrtf(detail::block_sum(sumsq, scratch) / hidden + eps);
    float inv = 0.0f;
    if constexpr (kFp8) {
      float amax = 0.0f;
      for (int c = threadIdx.x; c < chunks; c += blockDim.x) {
        float v[kVec];
        detail::load<kVec>(x + c * kVec, v);
        apply_norm<kVec, kUnitOffset>(weight, c, inv_rms, v);
        amax = detail::abs_max<kVec>(v, amax);
      }
      amax = detail::block_max(amax, scratch);
      inv = detail::e4m3_inverse_scale(amax);
      if (threadIdx.x == 0) out_scale[row] = detail::e4m3_scale(amax);
    }
    for (int c = threadIdx.x; c < chunks; c += blockDim.x) {
      float v[kVec];
      detail::load<kVec>(x + c * kVec, v);
      apply_norm<kVec, kUnitOffset>(weight, c, inv_rms, v);
      if constexpr (kFp8) {
        detail::store_e4m3<kVec>(y + c * kVec, v, inv);
      } else {
        detail::store<kVec>(y + c * kVec, v);
      }
    }
  } else {
    float v[kCached][kVec];
    float sumsq = 0.0f;
#pragma unroll
    for (int i = 0; i < kCached; ++i) {
      const int c = threadIdx.x + i * blockDim.x;
      if (c < chunks) {
        load_residual<kVec>(x, d, c, v[i]);
        add_squares<kVec>(v[i], sumsq);
      }
    }
    const float inv_rms = rsqrtf(detail::block_sum(sumsq, scratch) / hidden + eps);
    float amax = 0.0f;
#pragma unroll
    for (int i = 0; i < kCached; ++i) {
      const int c = threadIdx.x + i * blockDim.x;
      if (c < chunks) {
        apply_norm<kVec, kUnitOffset>(weight, c, inv_rms, v[i]);
        if constexpr (kFp8) {
          amax = detail::abs_max<kVec>(v[i], amax);
        } else {
          detail::store<kVec>(y + c * kVec, v[i]);
        }
      }
    }
    if constexpr (kFp8) {
      amax = detail::block_max(amax, scratch);
      const float inv = detail::e4m3_inverse_scale(amax);
      if (threadIdx.x == 0) out_scale[row] = detail::e4m3_scale(amax);
#pragma unroll
      for (int i = 0; i < kCached; ++i) {
        const int c = threadIdx.x + i * blockDim.x;
        if (c < chunks) detail::store_e4m3<kVec>(y + c * kVec, v[i], inv);
      }
    }
  }
}

int threads_for(int chunks) {
  const int t = (chunks + 31) / 32 * 32;
  return t < 32 ? 32 : (t > 256 ? 256 : t);
}

template <bool kUnitOffset, typename TX, typename TO>
void launch_rmsnorm(TX* x, int64_t x_stride, const bf16* delta, int64_t delta_stride,
                    const bf16* weight, TO* out, int64_t out_stride, float* out_scale, int64_t rows,
                    int hidden, float eps, bool vec, cudaStream_t stream) {
  const unsigned grid = static_cast<unsigned>(rows);
  const int threads = threads_for(hidden / 8);
  const int per_thread = (hidden / 8 + threads - 1) / threads;
  auto launch = [&](auto kernel, int block) {
    launch_kernel(kernel, grid, block, 0, stream, x, x_stride, delta, delta_stride, weight, out,
                  out_stride, out_scale, hidden, eps);
  };
  if (vec && per_thread <= 4) {
    // At most 32 floats of the row per thread in registers: one read of x.
    switch (per_thread) {
      case 1:
        launch(add_rmsnorm_kernel<TX, TO, 8, 1, kUnitOffset>, threads);
        break;
      case 2:
        launch(add_rmsnorm_kernel<TX, TO, 8, 2, kUnitOffset>, threads);
        break;
      case 3:
        launch(add_rmsnorm_kernel<TX, TO, 8, 3, kUnitOffset>, threads);
        break;
      default:
        launch(add_rmsnorm_kernel<TX, TO, 8, 4, kUnitOffset>, threads);
        break;
    }
  } else if (vec) {
    launch(add_rmsnorm_kernel<TX, TO, 8, 0, kUnitOffset>, threads);
  } else {
    launch(add_rmsnorm_kernel<TX, TO, 1, 0, kUnitOffset>, threads_for(hidden));
  }
}

// Checks, picks the vector width and the weight mode, launches.
template <typename TX, typename TO>
cudaError_t run_rmsnorm(TX* x, int64_t x_stride, const bf16* delta, int64_t delta_stride,
                        const bf16* weight, TO* out, int64_t out_stride, float* out_scale,
                        int64_t rows, int hidden, float eps, cudaStream_t stream,
                        bool unit_offset) {
  constexpr bool kFp8 = std::is_same_v<TO, uint8_t>;
  if (rows < 0 || hidden <= 0 || rows > INT32_MAX || x_stride < hidden || out_stride < hidden ||
      (delta && delta_stride < hidden) || (kFp8 && out_scale == nullptr)) {
    return cudaErrorInvalidValue;
  }
  if (rows == 0) return cudaSuccess;
  // 8 outputs are 16 bytes of bf16 / fp32 or 8 bytes of e4m3.
  const bool out_vec = kFp8 ? detail::aligned8(out) : detail::aligned16(out);
  const bool vec = hidden % 8 == 0 && x_stride % 8 == 0 && out_stride % 8 == 0 &&
                   detail::aligned16(x) && detail::aligned16(weight) && out_vec &&
                   (!delta || (delta_stride % 8 == 0 && detail::aligned16(delta)));
  if (unit_offset) {
    launch_rmsnorm<true>(x, x_stride, delta, delta_stride, weight, out, out_stride, out_scale, rows,
                         hidden, eps, vec, stream);
  } else {
    launch_rmsnorm<false>(x, x_stride, delta, delta_stride, weight, out, out_stride, out_scale,
                          rows, hidden, eps, vec, stream);
  }
  return cudaGetLastError();
}

}  // namespace

template <typename TX, typename TO>
cudaError_t add_rmsnorm(TX* x, int64_t x_stride, const bf16* delta, int64_t delta_stride,
                        const bf16* weight, TO* out, int64_t out_stride, int64_t rows, int hidden,
                        float eps, cudaStream_t stream, bool unit_offset) {
  return run_rmsnorm(x, x_stride, delta, delta_stride, weight, out, out_stride, nullptr, rows,
                     hidden, eps, stream, unit_offset);
}

template <typename TX>
cudaError_t add_rmsnorm_e4m3(TX* x, int64_t x_stride, const bf16* delta, int64_t delta_stride,
                             const bf16* weight, uint8_t* out, int64_t out_stride, float* out_scale,
                             int64_t rows, int hidden, float eps, cudaStream_t stream,
                             bool unit_offset) {
  return run_rmsnorm(x, x_stride, delta, delta_stride, weight, out, out_stride, out_scale, rows,
                     hidden, eps, stream, unit_offset);
}

template cudaError_t add_rmsnorm<float, bf16>(float*, int64_t, const bf16*, int64_t, const bf16*,
                                              bf16*, int64_t, int64_t, int, float, cudaStream_t,
                                              bool);
template cudaError_t add_rmsnorm<float, float>(float*, int64_t, const bf16*, int64_t, const bf16*,
                                               float*, int64_t, int64_t, int, float, cudaStream_t,
                                               bool);
template cudaError_t add_rmsnorm<bf16, bf16>(bf16*, int64_t, const bf16*, int64_t, const bf16*,
                                             bf16*, int64_t, int64_t, int, float, cudaStream_t,
                                             bool);
template cudaError_t add_rmsnorm<bf16, float>(bf16*, int64_t, const bf16*, int64_t, const bf16*,
                                              float*, int64_t, int64_t, int, float, cudaStream_t,
                                              bool);
template cudaError_t add_rmsnorm_e4m3<float>(float*, int64_t, const bf16*, int64_t, const bf16*,
                                             uint8_t*, int64_t, float*, int64_t, int, float,
                                             cudaStream_t, bool);
template cudaError_t add_rmsnorm_e4m3<bf16>(bf16*, int64_t, const bf16*, int64_t, const bf16*,
                                            uint8_t*, int64_t, float*, int64_t, int, float,
                                            cudaStream_t, bool);

}  // namespace radix::cuda
