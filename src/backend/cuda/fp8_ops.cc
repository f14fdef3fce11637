#include "backend/cuda/fp8_ops.h"

#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/dtype_dispatch.h"
#include "backend/cuda/kernels/fp8.cuh"
#include "backend/op_checks.h"

namespace radix::cuda {
namespace {

constexpr OpChecks kCheck{"cuda"};

// A vector of n fp32 scales: [n, 1] or [1, n], contiguous, with data.
void require_scales(const char* op, const char* arg, const Tensor& t, int64_t n) {
  RADIX_OP_REQUIRE(kCheck,
                   t.dtype == DType::kF32 && t.contiguous() && t.numel() == n &&
                       (t.rows == 1 || t.cols == 1) && (t.data != nullptr || n == 0),
                   op,
                   std::string(arg) + " must be a contiguous f32 vector of " + std::to_string(n) +
                       " scales, got " + shape_str(t));
}

void check(const char* op, cudaError_t status) {
  if (status != cudaSuccess) {
    throw BackendError(std::string("cuda ") + op + ": " + cudaGetErrorString(status));
  }
}

// y = (xq * xs) @ (wq * ws)^T + b (+ out): cuBLASLt applies both scales (and adds out) when it
// can and no bias is asked of its epilogue; otherwise the unscaled product in bf16 (in out itself
// where out is bf16 and overwritten), then one pass applying scales, bias and accumulation in fp32.
void gemm_and_scale(Gemm& gemm, const Fp8ScratchFn& scratch, const uint8_t* xq, int64_t ldx,
                    const float* xs, const Tensor& w, const float* ws, const bf16* b,
                    const Tensor& out, bool accumulate, cudaStream_t stream) {
  const char* op = "linear_fp8";
  const int64_t m = out.rows, n = w.rows, k = w.cols;
  const auto* wq = static_cast<const uint8_t*>(w.data);
  if (b == nullptr &&
      (out.dtype == DType::kBF16
           ? gemm.fp8_bf16_out(xq, ldx, wq, w.row_stride, static_cast<bf16*>(out.data),
                               out.row_stride, m, n, k, xs, ws, stream, accumulate)
           : gemm.fp8_f32_out(xq, ldx, wq, w.row_stride, static_cast<float*>(out.data),
                              out.row_stride, m, n, k, xs, ws, stream, accumulate))) {
    return;
  }
  const bool in_place = out.dtype == DType::kBF16 && !accumulate;
  bf16* acc = in_place ? static_cast<bf16*>(out.data)
                       : static_cast<bf16*>(scratch(Fp8Slot::kProduct, sizeof(bf16) * m * n));
  const int64_t ld_acc = in_place ? out.row_stride : n;
  gemm.fp8_bf16_out(xq, ldx, wq, w.row_stride, acc, ld_acc, m, n, k, nullptr, nullptr, stream);
  check(op, with_dtype<DType::kBF16, DType::kF32>(out, op, "out", [&](auto* o) {
          return fp8_scale_epilogue(acc, ld_acc, xs, ws, b, o, out.row_stride, m, n, accumulate,
                                    stream);
        }));
}

}  // namespace

void quantize_fp8_rows(const Tensor& src, const Tensor& dst, const Tensor& scale,
                       cudaStream_t stream) {
  const char* op = "quantize_fp8_rows";
  RADIX_OP_REQUIRE(kCheck, src.dtype == DType::kF32 || src.dtype == DType::kBF16, op,
                   "src must be f32 or bf16, got " + shape_str(src));
  RADIX_OP_REQUIRE(kCheck, src.data != nullptr || src.numel() == 0, op, "src has no data");
  RADIX_OP_REQUIRE(kCheck, src.row_stride >= src.cols, op, "src has a row stride below its width");
  kCheck.dtype(op, "dst", dst, DType::kF8E4M3);
  kCheck.shape(op, "dst", dst, src.rows, src.cols);
  RADIX_OP_REQUIRE(kCheck, src.cols > 0 && src.cols <= INT32_MAX, op, "cols must be in [1, 2^31)");
  require_scales(op, "scale", scale, src.rows);
  if (src.rows == 0) return;
  auto* q = static_cast<uint8_t*>(dst.data);
  auto* s = static_cast<float*>(scale.data);
  const int cols = static_cast<int>(src.cols);
  check(op, with_float_ptr(src, [&](const auto* p) {
          return quantize_e4m3_rows(p, src.row_stride, src.rows, cols, q, dst.row_stride, s,
                                    stream);
        }));
}

void linear_fp8(Gemm& gemm, const Fp8ScratchFn& scratch, const Fp8TimedFn& timed, const Tensor& x,
                const Tensor& x_scale, const Tensor& w, const Tensor& w_scale, const Tensor& out,
                bool accumulate, const Tensor& bias, cudaStream_t stream) {
  const char* op = "linear_fp8";
  kCheck.dtype(op, "w", w, DType::kF8E4M3);
  require_scales(op, "w_scale", w_scale, w.rows);
  kCheck.bias(op, bias, w.rows, DType::kBF16);
  RADIX_OP_REQUIRE(kCheck, out.dtype == DType::kBF16 || out.dtype == DType::kF32, op,
                   "out must be bf16 or f32, got " + shape_str(out));
  RADIX_OP_REQUIRE(kCheck, out.data != nullptr || out.numel() == 0, op, "out has no data");
  RADIX_OP_REQUIRE(kCheck, out.row_stride >= out.cols, op, "out has a row stride below its width");
  kCheck.shape(op, "out", out, x.rows, w.rows);
  RADIX_OP_REQUIRE(kCheck, x.cols == w.cols, op,
                   "x " + shape_str(x) + " and w " + shape_str(w) + " differ in width");
  RADIX_OP_REQUIRE(
      kCheck, w.cols % 16 == 0 && w.row_stride % 16 == 0, op,
      "fp8 GEMMs need k and w's row stride to be multiples of 16, got " + shape_str(w));
  const bool quantized = x.dtype == DType::kF8E4M3;
  if (quantized) {
    kCheck.dtype(op, "x", x, DType::kF8E4M3);
    require_scales(op, "x_scale", x_scale, x.rows);
    RADIX_OP_REQUIRE(kCheck, x.row_stride % 16 == 0, op,
                     "an fp8 x needs a row stride that is a multiple of 16, got " + shape_str(x));
  } else {
    RADIX_OP_REQUIRE(kCheck, x.dtype == DType::kBF16 || x.dtype == DType::kF32, op,
                     "x must be f8e4m3 (with x_scale), bf16 or f32, got " + shape_str(x));
    RADIX_OP_REQUIRE(kCheck, x.data != nullptr || x.numel() == 0, op, "x has no data");
    RADIX_OP_REQUIRE(kCheck, x_scale.data == nullptr, op,
                     "x_scale is given only with an f8e4m3 x (a bf16 x is quantised here)");
  }
  const int64_t m = x.rows, k = w.cols;
  if (m == 0) return;

  // The activation in e4m3 with its per-row scales: as given, or quantised now.
  const uint8_t* xq = static_cast<const uint8_t*>(x.data);
  int64_t ldx = x.row_stride;
  const float* xs = static_cast<const float*>(x_scale.data);
  if (!quantized) {
    auto* q = static_cast<uint8_t*>(scratch(Fp8Slot::kActivation, static_cast<size_t>(m * k)));
    auto* s = static_cast<float*>(scratch(Fp8Slot::kActivationScale, sizeof(float) * m));
    timed(true, [&] {
      quantize_fp8_rows(x, Tensor{q, DType::kF8E4M3, m, k, k}, Tensor{s, DType::kF32, m, 1, 1},
                        stream);
    });
    xq = q;
    ldx = k;
    xs = s;
  }
  const auto* ws = static_cast<const float*>(w_scale.data);
  const auto* b = static_cast<const bf16*>(bias.data);
  timed(false,
        [&] { gemm_and_scale(gemm, scratch, xq, ldx, xs, w, ws, b, out, accumulate, stream); });
}

}  // namespace radix::cuda
