#include <cuda_fp8.h>

#include "backend/cuda/kernels/fp8.cuh"

namespace radix::cuda {
namespace {

constexpr int kQuantThreads = 256;

__device__ __forceinline__ float load_f32(const float* p) { return *p; }
__device__ __forceinline__ float load_f32(const bf16* p) { return __bfloat162float(*p); }

// One block per row: the row's amax (block reduction), then the scaled cast. The second pass
// re-reads the row, which the first has just brought into L1/L2.
template <typename T>
__global__ void quantize_rows_kernel(const T* __restrict__ src, int64_t src_stride, int cols,
                                     uint8_t* __restrict__ dst, int64_t dst_stride,
                                     float* __restrict__ scale) {
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

template <typename T>
cudaError_t launch_quantize(const T* src, int64_t src_stride, int64_t rows, int cols,
                            uint8_t* dst, int64_t dst_stride, float* scale, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  if (rows < 0 || cols <= 0 || rows > 0x7fffffff) return cudaErrorInvalidValue;
  quantize_rows_kernel<T><<<static_cast<unsigned>(rows), kQuantThreads, 0, stream>>>(
      src, src_stride, cols, dst, dst_stride, scale);
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
  scale_epilogue_kernel<TOut><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      acc, acc_stride, row_scale, col_scale, bias, out, out_stride, rows, cols, accumulate);
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
