#include "backend/cuda/kernels/device_math.cuh"
#include "backend/cuda/kernels/launch.cuh"
#include "backend/cuda/kernels/scatter_rows.cuh"

namespace radix::cuda {
namespace {

// One block per source row; T is the unit of copy (a 16-byte vector on the fast path, else the
// element itself). Strides and cols are in units of T.
template <typename T>
__global__ void scatter_rows_kernel(const T* __restrict__ src, int64_t src_stride,
                                    const int32_t* __restrict__ idx, int units, T* __restrict__ dst,
                                    int64_t dst_stride, int64_t dst_rows) {
  begin_kernel();
  const int64_t row = blockIdx.x;
  const int32_t d = idx[row];
  if (d < 0 || d >= dst_rows) return;
  const T* x = src + row * src_stride;
  T* y = dst + static_cast<int64_t>(d) * dst_stride;
  for (int c = threadIdx.x; c < units; c += blockDim.x) y[c] = x[c];
}

template <typename T>
cudaError_t launch(const void* src, int64_t src_stride, const int32_t* idx, int64_t n,
                   int64_t units, void* dst, int64_t dst_stride, int64_t dst_rows,
                   cudaStream_t stream) {
  const int64_t t = (units + 31) / 32 * 32;
  const int threads = t < 32 ? 32 : (t > 256 ? 256 : static_cast<int>(t));
  launch_kernel(scatter_rows_kernel<T>, static_cast<unsigned>(n), threads, 0, stream,
                static_cast<const T*>(src), src_stride, idx, static_cast<int>(units),
                static_cast<T*>(dst), dst_stride, dst_rows);
  return cudaGetLastError();
}

}  // namespace

cudaError_t scatter_rows(const void* src, int64_t src_stride, const int32_t* idx, int64_t n,
                         int cols, int elem_bytes, void* dst, int64_t dst_stride, int64_t dst_rows,
                         cudaStream_t stream) {
  if (n < 0 || cols < 0 || n > INT32_MAX || src_stride < cols || dst_stride < cols ||
      (elem_bytes != 2 && elem_bytes != 4)) {
    return cudaErrorInvalidValue;
  }
  if (n == 0 || cols == 0 || dst_rows == 0) return cudaSuccess;
  const int per_vec = 16 / elem_bytes;
  if (cols % per_vec == 0 && src_stride % per_vec == 0 && dst_stride % per_vec == 0 &&
      detail::aligned16(src) && detail::aligned16(dst)) {
    return launch<int4>(src, src_stride / per_vec, idx, n, cols / per_vec, dst,
                        dst_stride / per_vec, dst_rows, stream);
  }
  if (elem_bytes == 2) {
    return launch<uint16_t>(src, src_stride, idx, n, cols, dst, dst_stride, dst_rows, stream);
  }
  return launch<uint32_t>(src, src_stride, idx, n, cols, dst, dst_stride, dst_rows, stream);
}

}  // namespace radix::cuda
