#include "backend/cuda/kernels/device_math.cuh"
#include "backend/cuda/kernels/launch.cuh"
#include "backend/cuda/kernels/small_linear.cuh"

namespace radix::cuda {
namespace {

template <typename TX, typename TO, int kVec>
__global__ void small_linear_kernel(const TX* __restrict__ x, int64_t x_stride,
                                    const bf16* __restrict__ w, int64_t w_stride,
                                    TO* __restrict__ out, int64_t out_stride, int64_t n, int64_t m,
                                    int k, bool accumulate, const bf16* __restrict__ bias) {
  begin_kernel();
  const int64_t task = static_cast<int64_t>(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (task >= n * m) return;
  const int64_t i = task / m, j = task - i * m;
  const TX* a = x + i * x_stride;
  const bf16* b = w + j * w_stride;
  float acc = 0.0f;
  for (int c = (threadIdx.x & 31) * kVec; c < k; c += 32 * kVec) {
    float av[kVec], bv[kVec];
    detail::load<kVec>(a + c, av);
    detail::load<kVec>(b + c, bv);
#pragma unroll
    for (int t = 0; t < kVec; ++t) acc += av[t] * bv[t];
  }
  acc = detail::warp_sum(acc);
  if ((threadIdx.x & 31) == 0) {
    TO* y = out + i * out_stride + j;
    float v[1] = {bias ? acc + __bfloat162float(bias[j]) : acc};
    if (accumulate) {
      float old[1];
      detail::load<1>(y, old);
      v[0] += old[0];
    }
    detail::store<1>(y, v);
  }
}

}  // namespace

template <typename TX, typename TO>
cudaError_t small_linear(const TX* x, int64_t x_stride, const bf16* w, int64_t w_stride, TO* out,
                         int64_t out_stride, int64_t n, int64_t m, int k, bool accumulate,
                         cudaStream_t stream, const bf16* bias) {
  if (n < 0 || m < 0 || k < 0 || x_stride < k || w_stride < k || out_stride < m) {
    return cudaErrorInvalidValue;
  }
  const int64_t tasks = n * m;
  if (tasks == 0) return cudaSuccess;
  constexpr int kWarps = 4;
  const int64_t blocks = (tasks + kWarps - 1) / kWarps;
  if (blocks > INT32_MAX) return cudaErrorInvalidValue;
  const bool vec = k % 8 == 0 && x_stride % 8 == 0 && w_stride % 8 == 0 && detail::aligned16(x) &&
                   detail::aligned16(w);
  if (vec) {
    launch_kernel(small_linear_kernel<TX, TO, 8>, static_cast<unsigned>(blocks), kWarps * 32, 0,
                  stream, x, x_stride, w, w_stride, out, out_stride, n, m, k, accumulate, bias);
  } else {
    launch_kernel(small_linear_kernel<TX, TO, 1>, static_cast<unsigned>(blocks), kWarps * 32, 0,
                  stream, x, x_stride, w, w_stride, out, out_stride, n, m, k, accumulate, bias);
  }
  return cudaGetLastError();
}

template cudaError_t small_linear<bf16, float>(const bf16*, int64_t, const bf16*, int64_t, float*,
                                               int64_t, int64_t, int64_t, int, bool, cudaStream_t,
                                               const bf16*);
template cudaError_t small_linear<bf16, bf16>(const bf16*, int64_t, const bf16*, int64_t, bf16*,
                                              int64_t, int64_t, int64_t, int, bool, cudaStream_t,
                                              const bf16*);
template cudaError_t small_linear<float, float>(const float*, int64_t, const bf16*, int64_t, float*,
                                                int64_t, int64_t, int64_t, int, bool, cudaStream_t,
                                                const bf16*);
template cudaError_t small_linear<float, bf16>(const float*, int64_t, const bf16*, int64_t, bf16*,
                                               int64_t, int64_t, int64_t, int, bool, cudaStream_t,
                                               const bf16*);

}  // namespace radix::cuda
