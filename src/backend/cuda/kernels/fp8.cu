#include <cuda_fp8.h>

#include "backend/cuda/kernels/device_math.cuh"
#include "backend/cuda/kernels/fp8.cuh"
#include "backend/cuda/kernels/fp8_store.cuh"
#include "backend/cuda/kernels/launch.cuh"

namespace radix::cuda {
namespace {

constexpr int kQuantThreads = 256;

__device__ __forceinline__ float load_f32(const float* p) { return *p; }
__device__ __forceinline__ float load_f32(const bf16* p) { return __bfloat162float(*p); }

// The fallback (any shape, stride or alignment) and the reference the fast path is tested and
// benchmarked against: one block per row, the row's amax (block reduction), then the scaled cast
// from a second read of the row. Scalar accesses, about 1.3 TB/s on the H200.
template <typename T>
__global__ void quantize_rows_kernel(const T* __restrict__ src, int64_t src_stride, int cols,
                                     uint8_t* __restrict__ dst, int64_t dst_stride,
                                     float* __restrict__ scale) {
  begin_kernel();
  const int64_t row = blockIdx.x;
  const T* x = src + row * src_stride;
  uint8_t* y = dst + row * dst_stride;
  float amax = 0.0f;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) amax = fmaxf(amax, fabsf(load_f32(x + c)));
  for (int offset = 16; offset > 0; offset /= 2) {
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, offset));
  }
  __shared__ float warp_max[kQuantThreads / 32];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_max[warp] = amax;
  __syncthreads();
  amax = 0.0f;
  for (int w = 0; w < kQuantThreads / 32; ++w) amax = fmaxf(amax, warp_max[w]);
  // __fdiv_rn: correctly rounded whatever the compiler flags, so a host reference can match.
  const float inv = amax > 0.0f ? __fdiv_rn(kE4M3Max, amax) : 0.0f;
  if (threadIdx.x == 0) scale[row] = __fdiv_rn(amax, kE4M3Max);
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    const float v = __fmul_rn(load_f32(x + c), inv);
    y[c] = __nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3);
  }
}

// The fast path: kWarps warps per row (8 / kWarps rows per 256-thread block), each lane loading
// up to kLaneChunks 16-byte chunks of its row at once and keeping them in registers (raw, 32
// registers) through the amax, so the row is read once and every warp has its whole share of the
// row in flight: with ~32 resident warps an SM has ~128 KB of loads outstanding, which is what
// DRAM bandwidth needs. The amax is the max of the same fp32 values as the fallback's (max does
// not depend on the order), and the cast the same operations, so the output is bit-identical.
constexpr int kLaneChunks = 8;

template <typename T>
struct Chunk;  // 16 bytes of T as floats
template <>
struct Chunk<bf16> {
  static constexpr int kVec = 8;
  __device__ __forceinline__ static void unpack(const uint4& raw, float (&v)[kVec]) {
    detail::unpack(reinterpret_cast<const detail::Bf16x8&>(raw), v);
  }
};
template <>
struct Chunk<float> {
  static constexpr int kVec = 4;
  __device__ __forceinline__ static void unpack(const uint4& raw, float (&v)[kVec]) {
    v[0] = __uint_as_float(raw.x), v[1] = __uint_as_float(raw.y);
    v[2] = __uint_as_float(raw.z), v[3] = __uint_as_float(raw.w);
  }
};

template <typename T, int kWarps>
__global__ void __launch_bounds__(kQuantThreads)
    quantize_rows_regs_kernel(const T* __restrict__ src, int64_t src_stride, int64_t rows, int cols,
                              uint8_t* __restrict__ dst, int64_t dst_stride,
                              float* __restrict__ scale) {
  begin_kernel();
  constexpr int kVec = Chunk<T>::kVec;
  constexpr int kGroup = 32 * kWarps;  // threads of one row
  constexpr int kRowsPerBlock = kQuantThreads / kGroup;
  const int warp = threadIdx.x / 32;
  const int t = threadIdx.x % kGroup;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kGroup;
  const bool live = row < rows;  // a dead group still takes part in the block barrier
  const int chunks = cols / kVec;
  const uint4* x = reinterpret_cast<const uint4*>(src + (live ? row : 0) * src_stride);
  uint4 raw[kLaneChunks];
#pragma unroll
  for (int i = 0; i < kLaneChunks; ++i) {
    const int c = i * kGroup + t;
    raw[i] = live && c < chunks ? x[c] : make_uint4(0, 0, 0, 0);
  }
  float amax = 0.0f;
#pragma unroll
  for (int i = 0; i < kLaneChunks; ++i) {
    float v[kVec];
    Chunk<T>::unpack(raw[i], v);  // zeros past the row's end, which leave the max as it is
    amax = detail::abs_max<kVec>(v, amax);
  }
  amax = detail::group_max<32>(amax);
  if constexpr (kWarps > 1) {
    __shared__ float warp_max[kQuantThreads / 32];
    if (threadIdx.x % 32 == 0) warp_max[warp] = amax;
    __syncthreads();
    const int first = warp / kWarps * kWarps;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) amax = fmaxf(amax, warp_max[first + w]);
  }
  if (!live) return;
  const float inv = detail::e4m3_inverse_scale(amax);
  if (t == 0) scale[row] = detail::e4m3_scale(amax);
  uint8_t* y = dst + row * dst_stride;
#pragma unroll
  for (int i = 0; i < kLaneChunks; ++i) {
    const int c = i * kGroup + t;
    if (c < chunks) {
      float v[kVec];
      Chunk<T>::unpack(raw[i], v);
      detail::store_e4m3<kVec>(y + c * kVec, v, inv);
    }
  }
}

// Warps a row takes on the fast path (1, 2, 4 or 8), or 0 where the fallback runs: a row
// length, stride or pointer that is not a whole number of 16-byte chunks, or a row longer than
// 8 warps hold (16,384 bf16 or 8,192 fp32 values).
template <typename T>
int fast_path_warps(const T* src, int64_t src_stride, int cols, const uint8_t* dst,
                    int64_t dst_stride) {
  constexpr int kVec = Chunk<T>::kVec;
  const bool aligned = cols % kVec == 0 && src_stride % kVec == 0 && dst_stride % kVec == 0 &&
                       detail::aligned16(src) && (reinterpret_cast<uintptr_t>(dst) % kVec) == 0;
  if (!aligned) return 0;
  const int chunks = cols / kVec;
  for (int warps = 1; warps <= 8; warps *= 2) {
    if (chunks <= warps * 32 * kLaneChunks) return warps;
  }
  return 0;
}

template <typename T>
cudaError_t launch_quantize_fallback(const T* src, int64_t src_stride, int64_t rows, int cols,
                                     uint8_t* dst, int64_t dst_stride, float* scale,
                                     cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  if (rows < 0 || cols <= 0 || rows > 0x7fffffff) return cudaErrorInvalidValue;
  launch_kernel(quantize_rows_kernel<T>, static_cast<unsigned>(rows), kQuantThreads, 0, stream, src,
                src_stride, cols, dst, dst_stride, scale);
  return cudaGetLastError();
}

template <typename T, int kWarps>
void launch_regs(const T* src, int64_t src_stride, int64_t rows, int cols, uint8_t* dst,
                 int64_t dst_stride, float* scale, cudaStream_t stream) {
  constexpr int kRowsPerBlock = kQuantThreads / (32 * kWarps);
  const auto blocks = static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock);
  launch_kernel(quantize_rows_regs_kernel<T, kWarps>, blocks, kQuantThreads, 0, stream, src,
                src_stride, rows, cols, dst, dst_stride, scale);
}

template <typename T>
cudaError_t launch_quantize(const T* src, int64_t src_stride, int64_t rows, int cols, uint8_t* dst,
                            int64_t dst_stride, float* scale, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  if (rows < 0 || cols <= 0 || rows > 0x7fffffff) return cudaErrorInvalidValue;
  switch (fast_path_warps(src, src_stride, cols, dst, dst_stride)) {
    case 1:
      launch_regs<T, 1>(src, src_stride, rows, cols, dst, dst_stride, scale, stream);
      break;
    case 2:
      launch_regs<T, 2>(src, src_stride, rows, cols, dst, dst_stride, scale, stream);
      break;
    case 4:
      launch_regs<T, 4>(src, src_stride, rows, cols, dst, dst_stride, scale, stream);
      break;
    case 8:
      launch_regs<T, 8>(src, src_stride, rows, cols, dst, dst_stride, scale, stream);
      break;
    default:
      return launch_quantize_fallback(src, src_stride, rows, cols, dst, dst_stride, scale, stream);
  }
  return cudaGetLastError();
}

__device__ __forceinline__ void store(bf16* p, float v) { *p = __float2bfloat16(v); }
__device__ __forceinline__ void store(float* p, float v) { *p = v; }

template <typename TOut>
__global__ void scale_epilogue_kernel(const bf16* acc, int64_t acc_stride,
                                      const float* __restrict__ row_scale,
                                      const float* __restrict__ col_scale,
                                      const bf16* __restrict__ bias, TOut* out, int64_t out_stride,
                                      int64_t rows, int64_t cols, bool accumulate) {
  begin_kernel();
  const int64_t total = rows * cols;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = t / cols, c = t - r * cols;
    float v = __bfloat162float(acc[r * acc_stride + c]) * (row_scale[r] * col_scale[c]);
    if (bias != nullptr) v += __bfloat162float(bias[c]);
    TOut* o = out + r * out_stride + c;
    if (accumulate) v += load_f32(o);
    store(o, v);
  }
}

template <typename TOut>
cudaError_t launch_epilogue(const bf16* acc, int64_t acc_stride, const float* row_scale,
                            const float* col_scale, const bf16* bias, TOut* out, int64_t out_stride,
                            int64_t rows, int64_t cols, bool accumulate, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return cudaSuccess;
  if (rows < 0 || cols < 0) return cudaErrorInvalidValue;
  constexpr int kThreads = 256;
  int64_t blocks = (rows * cols + kThreads - 1) / kThreads;
  if (blocks > 65536) blocks = 65536;  // the grid-stride loop covers the rest
  launch_kernel(scale_epilogue_kernel<TOut>, static_cast<unsigned>(blocks), kThreads, 0, stream,
                acc, acc_stride, row_scale, col_scale, bias, out, out_stride, rows, cols,
                accumulate);
  return cudaGetLastError();
}

}  // namespace

cudaError_t quantize_e4m3_rows(const float* src, int64_t src_stride, int64_t rows, int cols,
                               uint8_t* dst, int64_t dst_stride, float* scale,
                               cudaStream_t stream) {
  return launch_quantize(src, src_stride, rows, cols, dst, dst_stride, scale, stream);
}

cudaError_t quantize_e4m3_rows(const bf16* src, int64_t src_stride, int64_t rows, int cols,
                               uint8_t* dst, int64_t dst_stride, float* scale,
                               cudaStream_t stream) {
  return launch_quantize(src, src_stride, rows, cols, dst, dst_stride, scale, stream);
}

cudaError_t quantize_e4m3_rows_fallback(const float* src, int64_t src_stride, int64_t rows,
                                        int cols, uint8_t* dst, int64_t dst_stride, float* scale,
                                        cudaStream_t stream) {
  return launch_quantize_fallback(src, src_stride, rows, cols, dst, dst_stride, scale, stream);
}

cudaError_t quantize_e4m3_rows_fallback(const bf16* src, int64_t src_stride, int64_t rows, int cols,
                                        uint8_t* dst, int64_t dst_stride, float* scale,
                                        cudaStream_t stream) {
  return launch_quantize_fallback(src, src_stride, rows, cols, dst, dst_stride, scale, stream);
}

cudaError_t fp8_scale_epilogue(const bf16* acc, int64_t acc_stride, const float* row_scale,
                               const float* col_scale, const bf16* bias, bf16* out,
                               int64_t out_stride, int64_t rows, int64_t cols, bool accumulate,
                               cudaStream_t stream) {
  return launch_epilogue(acc, acc_stride, row_scale, col_scale, bias, out, out_stride, rows, cols,
                         accumulate, stream);
}

cudaError_t fp8_scale_epilogue(const bf16* acc, int64_t acc_stride, const float* row_scale,
                               const float* col_scale, const bf16* bias, float* out,
                               int64_t out_stride, int64_t rows, int64_t cols, bool accumulate,
                               cudaStream_t stream) {
  return launch_epilogue(acc, acc_stride, row_scale, col_scale, bias, out, out_stride, rows, cols,
                         accumulate, stream);
}

}  // namespace radix::cuda
