#include "backend/cuda/kernels/device_math.cuh"
#include "backend/cuda/kernels/gather_rows.cuh"
#include "backend/cuda/kernels/launch.cuh"

namespace radix::cuda {
namespace {

// One block per destination row; kVec elements of T per access (kVec * sizeof(T) == 16 on the
// fast path).
template <typename T, int kVec>
__global__ void gather_rows_kernel(const T* __restrict__ src, int64_t src_stride,
                                   const int32_t* __restrict__ idx, int cols, T* __restrict__ dst,
                                   int64_t dst_stride) {
  begin_kernel();
  const int64_t row = blockIdx.x;
  const int32_t s = idx[row];
  T* y = dst + row * dst_stride;
  const int chunks = cols / kVec;
  if constexpr (kVec * sizeof(T) == 16) {
    const int4* x = reinterpret_cast<const int4*>(src + static_cast<int64_t>(s) * src_stride);
    for (int c = threadIdx.x; c < chunks; c += blockDim.x) {
      reinterpret_cast<int4*>(y)[c] = s >= 0 ? x[c] : make_int4(0, 0, 0, 0);
    }
  } else {
    const T* x = src + static_cast<int64_t>(s) * src_stride;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) y[c] = s >= 0 ? x[c] : T(0.0f);
  }
}

template <typename TO, int kVec>
__global__ void embedding_kernel(const bf16* __restrict__ table, int64_t table_stride,
                                 int64_t vocab, const int32_t* __restrict__ ids, int hidden,
                                 TO* __restrict__ out, int64_t out_stride,
                                 int32_t* __restrict__ bad_id, float scale) {
  begin_kernel();
  const int64_t row = blockIdx.x;
  const int32_t id = ids[row];
  const bool valid = id >= 0 && id < vocab;
  if (!valid && threadIdx.x == 0 && bad_id) *bad_id = 1;
  const bf16* x = table + static_cast<int64_t>(id) * table_stride;
  TO* y = out + row * out_stride;
  for (int c = threadIdx.x; c < hidden / kVec; c += blockDim.x) {
    float v[kVec] = {};
    if (valid) detail::load<kVec>(x + c * kVec, v);
    if (scale != 1.0f) {
      // transformers multiplies in the model's dtype: bf16(e * scale), scale already bf16.
#pragma unroll
      for (int i = 0; i < kVec; ++i) v[i] = __bfloat162float(__float2bfloat16(v[i] * scale));
    }
    detail::store<kVec>(y + c * kVec, v);
  }
}

int threads_for(int64_t chunks) {
  const int64_t t = (chunks + 31) / 32 * 32;
  return t < 32 ? 32 : (t > 256 ? 256 : static_cast<int>(t));
}

template <typename T>
cudaError_t gather(const T* src, int64_t src_stride, const int32_t* idx, int64_t n, int cols,
                   T* dst, int64_t dst_stride, cudaStream_t stream) {
  if (n < 0 || cols < 0 || n > INT32_MAX || src_stride < cols || dst_stride < cols) {
    return cudaErrorInvalidValue;
  }
  if (n == 0 || cols == 0) return cudaSuccess;
  constexpr int kVec = 16 / sizeof(T);
  const bool vec = cols % kVec == 0 && src_stride % kVec == 0 && dst_stride % kVec == 0 &&
                   detail::aligned16(src) && detail::aligned16(dst);
  if (vec) {
    launch_kernel(gather_rows_kernel<T, kVec>, static_cast<unsigned>(n), threads_for(cols / kVec),
                  0, stream, src, src_stride, idx, cols, dst, dst_stride);
  } else {
    launch_kernel(gather_rows_kernel<T, 1>, static_cast<unsigned>(n), threads_for(cols), 0, stream,
                  src, src_stride, idx, cols, dst, dst_stride);
  }
  return cudaGetLastError();
}

}  // namespace

cudaError_t gather_rows(const bf16* src, int64_t src_stride, const int32_t* idx, int64_t n,
                        int cols, bf16* dst, int64_t dst_stride, cudaStream_t stream) {
  return gather(src, src_stride, idx, n, cols, dst, dst_stride, stream);
}

cudaError_t gather_rows_f32(const float* src, int64_t src_stride, const int32_t* idx, int64_t n,
                            int cols, float* dst, int64_t dst_stride, cudaStream_t stream) {
  return gather(src, src_stride, idx, n, cols, dst, dst_stride, stream);
}

template <typename TO>
cudaError_t embedding_gather(const bf16* table, int64_t table_stride, int64_t vocab,
                             const int32_t* ids, int64_t rows, int hidden, TO* out,
                             int64_t out_stride, int32_t* bad_id, cudaStream_t stream,
                             float scale) {
  if (rows < 0 || hidden <= 0 || rows > INT32_MAX || table_stride < hidden || out_stride < hidden) {
    return cudaErrorInvalidValue;
  }
  if (rows == 0) return cudaSuccess;
  const bool vec = hidden % 8 == 0 && table_stride % 8 == 0 && out_stride % 8 == 0 &&
                   detail::aligned16(table) && detail::aligned16(out);
  const unsigned grid = static_cast<unsigned>(rows);
  if (vec) {
    launch_kernel(embedding_kernel<TO, 8>, grid, threads_for(hidden / 8), 0, stream, table,
                  table_stride, vocab, ids, hidden, out, out_stride, bad_id, scale);
  } else {
    launch_kernel(embedding_kernel<TO, 1>, grid, threads_for(hidden), 0, stream, table,
                  table_stride, vocab, ids, hidden, out, out_stride, bad_id, scale);
  }
  return cudaGetLastError();
}

template cudaError_t embedding_gather<float>(const bf16*, int64_t, int64_t, const int32_t*, int64_t,
                                             int, float*, int64_t, int32_t*, cudaStream_t, float);
template cudaError_t embedding_gather<bf16>(const bf16*, int64_t, int64_t, const int32_t*, int64_t,
                                            int, bf16*, int64_t, int32_t*, cudaStream_t, float);

}  // namespace radix::cuda
