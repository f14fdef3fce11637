// fp8 (e4m3) kernels of the fp8 linear: per-row quantisation with dynamic scales (weights at load
// time, activations before each projection) and the epilogue that applies the row and column
// scales to an unscaled GEMM output where cuBLASLt's own scaling is not used. Host-includable.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "backend/cuda/kernels/bf16.cuh"

namespace radix::cuda {

// The largest finite e4m3 value (OCP e4m3fn: S.1111.110 = 1.75 * 2^8).
inline constexpr float kE4M3Max = 448.0f;

// Per row r of src ([rows, cols], row stride src_stride): amax = max |src[r, :]|,
// scale[r] = amax / 448 and dst[r, c] = e4m3(src[r, c] * (448 / amax)) (round to nearest even,
// saturated to +-448; both divisions correctly rounded). A zero row gets scale 0 and zeros.
// dst: [rows, cols] bytes, row stride dst_stride. rows may be 0; cols > 0. NaNs are left out of
// amax and become e4m3 NaN. Rows of whole 16-byte chunks (src 16-byte aligned, cols and strides
// multiples of 8 bf16 / 4 fp32 values, dst aligned to that many bytes) up to 16,384 bf16 / 8,192
// fp32 values are held in registers and read once; other shapes take the fallback below.
cudaError_t quantize_e4m3_rows(const float* src, int64_t src_stride, int64_t rows, int cols,
                               uint8_t* dst, int64_t dst_stride, float* scale, cudaStream_t stream);
cudaError_t quantize_e4m3_rows(const bf16* src, int64_t src_stride, int64_t rows, int cols,
                               uint8_t* dst, int64_t dst_stride, float* scale, cudaStream_t stream);

// The same result (bit for bit) from the fallback kernel alone (any shape and alignment: one
// block per row, scalar accesses, two reads of the row): what the fast path is tested and
// benchmarked against (tests/backend/cuda/fp8_ops_test.cc, bench/fp8_kernels_bench.cu).
cudaError_t quantize_e4m3_rows_fallback(const float* src, int64_t src_stride, int64_t rows,
                                        int cols, uint8_t* dst, int64_t dst_stride, float* scale,
                                        cudaStream_t stream);
cudaError_t quantize_e4m3_rows_fallback(const bf16* src, int64_t src_stride, int64_t rows, int cols,
                                        uint8_t* dst, int64_t dst_stride, float* scale,
                                        cudaStream_t stream);

// out[r, c] = (accumulate ? out[r, c] : 0) + acc[r, c] * row_scale[r] * col_scale[c]
//             (+ bias[c] when bias is not null), in fp32, rounded once to out's type.
// acc: [rows, cols] bf16 (the unscaled e4m3 product), row stride acc_stride; acc may be out
// itself (bf16 out, same stride) since each element is read and written by one thread.
cudaError_t fp8_scale_epilogue(const bf16* acc, int64_t acc_stride, const float* row_scale,
                               const float* col_scale, const bf16* bias, bf16* out,
                               int64_t out_stride, int64_t rows, int64_t cols, bool accumulate,
                               cudaStream_t stream);
cudaError_t fp8_scale_epilogue(const bf16* acc, int64_t acc_stride, const float* row_scale,
                               const float* col_scale, const bf16* bias, float* out,
                               int64_t out_stride, int64_t rows, int64_t cols, bool accumulate,
                               cudaStream_t stream);

// The value of an e4m3 byte (OCP e4m3fn: bias 7, no infinities, S.1111.111 is NaN), on the host:
// downloads and tests.
inline float e4m3_to_float(uint8_t b) {
  const int e = (b >> 3) & 0xF, m = b & 7;
  float v;
  if (e == 15 && m == 7) {
    v = std::nanf("");
  } else if (e == 0) {
    v = static_cast<float>(m) * (1.0f / 512.0f);  // subnormal: m/8 * 2^-6
  } else {
    v = (1.0f + static_cast<float>(m) / 8.0f) * std::ldexp(1.0f, e - 7);
  }
  return (b & 0x80) ? -v : v;
}

}  // namespace radix::cuda
