// The fp8 ops of the CUDA backend (Backend::quantize_fp8_rows, Backend::linear_fp8) against host
// references, for both ways the scales are applied (cuBLASLt's outer-vector scaling and the own
// epilogue, RADIX_CUDA_FP8_EPILOGUE=own). Tolerances and why: docs/numerics.md, "fp8".
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/kernels/fp8.cuh"
#include "gpu_test_util.h"

namespace radix::cuda::testing {
namespace {

// |e4m3(code) - v| for the code nearest to v among all finite codes (saturation included: a |v|
// beyond 448 is nearest to +-448).
double nearest_e4m3_distance(float v) {
  double best = INFINITY;
  for (int code = 0; code < 256; ++code) {
    if ((code & 0x7F) == 0x7F) continue;  // NaN
    best = std::min(best, std::fabs(double(e4m3_to_float(static_cast<uint8_t>(code))) - v));
  }
  return best;
}

std::unique_ptr<Backend> gpu_backend(bool own_epilogue, bool fast_accum = false) {
  setenv("RADIX_CUDA_POISON", "1", 1);
  if (own_epilogue) {
    setenv("RADIX_CUDA_FP8_EPILOGUE", "own", 1);
  } else {
    unsetenv("RADIX_CUDA_FP8_EPILOGUE");
  }
  setenv("RADIX_CUDA_FP8_FAST_ACCUM", fast_accum ? "1" : "0", 1);
  auto b = make_cuda_backend(BackendOptions{"cuda", 0});
  unsetenv("RADIX_CUDA_FP8_EPILOGUE");
  unsetenv("RADIX_CUDA_FP8_FAST_ACCUM");
  return b;
}

std::vector<float> download(Backend& b, const Tensor& t) {
  std::vector<float> host(static_cast<size_t>(t.numel()));
  b.download(t, host.data());
  return host;
}

// Rows of varied scale: normal rows of std 10^(r % 7 - 3), a zero row, and rows with one large
// value among tiny ones (scaled, the tiny ones land in e4m3's subnormal range or round to 0).
std::vector<float> test_rows(int64_t rows, int64_t cols, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    const float scale = std::pow(10.0f, static_cast<float>(r % 7) - 3.0f);
    for (int64_t c = 0; c < cols; ++c) {
      float x = round_bf16(dist(rng) * scale);
      if (r == 1) x = 0.0f;
      if (r == 2) x = c == 5 ? 300.0f : round_bf16(dist(rng) * 1e-3f);
      v[r * cols + c] = x;
    }
  }
  return v;
}

class Fp8Quantize : public ::testing::TestWithParam<DType> {};

TEST_P(Fp8Quantize, RowsMatchTheHostReference) {
  RADIX_REQUIRE_GPU();
  auto gpu = gpu_backend(false);
  ASSERT_TRUE(gpu->supports_fp8());
  std::mt19937 rng(7);
  const int64_t rows = 37, cols = 1000;
  const std::vector<float> host = test_rows(rows, cols, rng);
  Buffer src = gpu->alloc(GetParam(), rows, cols);
  gpu->upload(src, host.data(), DType::kF32);
  Buffer q = gpu->alloc(DType::kF8E4M3, rows, cols);
  Buffer scale = gpu->alloc(DType::kF32, rows, 1);
  gpu->quantize_fp8_rows(src, q, scale);
  const std::vector<float> x = download(*gpu, src);  // the values as stored (bf16-exact)
  const std::vector<float> got = download(*gpu, q);
  const std::vector<float> s = download(*gpu, scale);
  for (int64_t r = 0; r < rows; ++r) {
    float amax = 0.0f;
    for (int64_t c = 0; c < cols; ++c) amax = std::max(amax, std::fabs(x[r * cols + c]));
    // The same two correctly rounded fp32 operations as the kernel: the scale is exact to the bit.
    ASSERT_EQ(s[r], amax / 448.0f) << "row " << r;
    const float inv = amax > 0.0f ? 448.0f / amax : 0.0f;
    for (int64_t c = 0; c < cols; ++c) {
      const float v = x[r * cols + c] * inv;
      const float code = got[r * cols + c];
      ASSERT_TRUE(std::isfinite(code)) << "row " << r << " col " << c;
      ASSERT_LE(std::fabs(code), 448.0f);
      // Round to nearest: no finite e4m3 value is closer to v than the kernel's.
      ASSERT_EQ(std::fabs(double(code) - v), nearest_e4m3_distance(v))
          << "row " << r << " col " << c << " v " << v << " got " << code;
    }
  }
  // The largest element of every non-zero row maps to +-448 exactly.
  for (int64_t r = 0; r < rows; ++r) {
    if (r == 1) continue;
    float top = 0.0f;
    for (int64_t c = 0; c < cols; ++c) top = std::max(top, std::fabs(got[r * cols + c]));
    EXPECT_EQ(top, 448.0f) << "row " << r;
  }
}

INSTANTIATE_TEST_SUITE_P(SrcDtypes, Fp8Quantize, ::testing::Values(DType::kBF16, DType::kF32),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

// The kernel itself (kernels/fp8.cuh) on the shapes of each of its paths: the register path with
// 1, 2, 4 and 8 warps a row (rows not a multiple of the rows a block holds, row lengths that
// leave lanes idle, padded strides) and the fallback (a row length, stride or pointer that is not
// a whole number of 16-byte chunks, rows too long for eight warps). Every path must give the
// fallback kernel's bytes and scales bit for bit, and both must match the host reference (the
// scale exact, every code the nearest e4m3 value; NaN left out of the amax and kept as NaN).
struct QuantCase {
  DType dtype;
  int64_t rows, cols, src_pad, dst_pad;
  int src_offset;  // elements: a src pointer that is not 16-byte aligned
};

inline float as_float(float v) { return v; }
inline float as_float(bf16 v) { return to_float(v); }

template <typename T>
void check_quantize_kernel(const QuantCase& tc) {
  std::mt19937 rng(static_cast<uint32_t>(tc.rows * 7919 + tc.cols));
  const int64_t rows = tc.rows, cols = tc.cols;
  const int64_t ld = cols + tc.src_pad, ldq = cols + tc.dst_pad;
  std::vector<float> v = test_rows(rows, cols, rng);
  // Special values in rows 3 (NaNs among normal values) and 4 (a NaN, an infinity), when present.
  if (rows > 3) v[3 * cols + cols / 2] = NAN, v[3 * cols] = NAN;
  if (rows > 4) v[4 * cols + 1] = NAN, v[4 * cols + cols - 1] = INFINITY;
  std::vector<T> host(static_cast<size_t>(rows * ld + tc.src_offset));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const float x = v[r * cols + c];
      T& dst = host[tc.src_offset + r * ld + c];
      if constexpr (std::is_same_v<T, float>) {
        dst = x;
      } else {
        dst = to_bf16(x);
      }
    }
  }
  DeviceBuffer<T> src(host);
  DeviceBuffer<uint8_t> q_fast(static_cast<size_t>(rows * ldq)), q_ref(q_fast.size());
  DeviceBuffer<float> s_fast(static_cast<size_t>(rows)), s_ref(s_fast.size());
  RADIX_CUDA_CHECK(cudaMemset(q_fast.get(), 0x5A, q_fast.size()));
  RADIX_CUDA_CHECK(cudaMemset(q_ref.get(), 0x5A, q_ref.size()));
  s_fast.poison();
  s_ref.poison();
  const T* p = src.get() + tc.src_offset;
  const int c32 = static_cast<int>(cols);
  RADIX_CUDA_CHECK(quantize_e4m3_rows(p, ld, rows, c32, q_fast.get(), ldq, s_fast.get(), nullptr));
  RADIX_CUDA_CHECK(
      quantize_e4m3_rows_fallback(p, ld, rows, c32, q_ref.get(), ldq, s_ref.get(), nullptr));
  const std::vector<uint8_t> got = q_fast.download(), want = q_ref.download();
  const std::vector<float> gs = s_fast.download(), ws = s_ref.download();
  for (int64_t r = 0; r < rows; ++r) {
    ASSERT_EQ(std::memcmp(&gs[r], &ws[r], 4), 0) << "scale of row " << r;
    for (int64_t c = 0; c < ldq; ++c) {
      ASSERT_EQ(got[r * ldq + c], want[r * ldq + c]) << "row " << r << " col " << c;
    }
    for (int64_t c = cols; c < ldq; ++c) ASSERT_EQ(got[r * ldq + c], 0x5A) << "padding written";
  }
  // The host reference (on the values as stored; std::max skips a NaN as fmaxf does).
  for (int64_t r = 0; r < rows; ++r) {
    float amax = 0.0f;
    for (int64_t c = 0; c < cols; ++c) {
      const float x = as_float(host[tc.src_offset + r * ld + c]);
      amax = std::max(amax, std::fabs(x));
    }
    ASSERT_EQ(std::memcmp(&gs[r], &ws[r], 4), 0);
    if (std::isinf(amax)) {
      ASSERT_TRUE(std::isinf(gs[r])) << "row " << r;
      continue;  // inv = 0: every code is 0 but the infinity's (inf * 0 = NaN); compared above
    }
    ASSERT_EQ(gs[r], amax / 448.0f) << "row " << r;
    const float inv = amax > 0.0f ? 448.0f / amax : 0.0f;
    for (int64_t c = 0; c < cols; ++c) {
      const float x = as_float(host[tc.src_offset + r * ld + c]);
      const float code = e4m3_to_float(got[r * ldq + c]);
      if (std::isnan(x)) {
        ASSERT_TRUE(std::isnan(code)) << "row " << r << " col " << c;
        continue;
      }
      const float y = x * inv;
      ASSERT_EQ(std::fabs(double(code) - y), nearest_e4m3_distance(y))
          << "row " << r << " col " << c << " v " << y << " got " << code;
    }
  }
}

class Fp8QuantizeKernel : public ::testing::TestWithParam<QuantCase> {};

TEST_P(Fp8QuantizeKernel, FastPathEqualsFallbackAndHostReference) {
  RADIX_REQUIRE_GPU();
  if (GetParam().dtype == DType::kBF16) {
    check_quantize_kernel<bf16>(GetParam());
  } else {
    check_quantize_kernel<float>(GetParam());
  }
}

INSTANTIATE_TEST_SUITE_P(
    Paths, Fp8QuantizeKernel,
    ::testing::Values(
        // bf16 (8 values a chunk): 1, 2, 4, 8 warps a row; 37 rows leave dead rows in the last
        // block; 1000 columns leave lanes idle.
        QuantCase{DType::kBF16, 37, 2048, 0, 0, 0}, QuantCase{DType::kBF16, 37, 4096, 0, 0, 0},
        QuantCase{DType::kBF16, 9, 8192, 0, 0, 0}, QuantCase{DType::kBF16, 5, 16384, 0, 0, 0},
        QuantCase{DType::kBF16, 1, 2048, 0, 0, 0}, QuantCase{DType::kBF16, 37, 1000, 0, 0, 0},
        QuantCase{DType::kBF16, 10, 2048, 8, 16, 0},
        // bf16 fallbacks: too long, cols 1004 / 1001, a src pointer or dst stride off the chunk.
        QuantCase{DType::kBF16, 5, 16392, 0, 0, 0}, QuantCase{DType::kBF16, 11, 1004, 0, 0, 0},
        QuantCase{DType::kBF16, 11, 1001, 0, 0, 0}, QuantCase{DType::kBF16, 11, 2048, 0, 0, 1},
        QuantCase{DType::kBF16, 11, 2048, 0, 2, 0}, QuantCase{DType::kBF16, 11, 2048, 4, 0, 0},
        // fp32 (4 values a chunk): 2, 4, 8 warps; 1004 on the fast path; fallbacks.
        QuantCase{DType::kF32, 37, 2048, 0, 0, 0}, QuantCase{DType::kF32, 9, 4096, 0, 0, 0},
        QuantCase{DType::kF32, 5, 8192, 0, 0, 0}, QuantCase{DType::kF32, 13, 1004, 4, 4, 0},
        QuantCase{DType::kF32, 5, 8196, 0, 0, 0}, QuantCase{DType::kF32, 11, 1002, 0, 0, 0},
        QuantCase{DType::kF32, 11, 2048, 0, 0, 2}),
    [](const auto& info) {
      const QuantCase& c = info.param;
      return std::string(dtype_name(c.dtype)) + "_r" + std::to_string(c.rows) + "_c" +
             std::to_string(c.cols) + "_p" + std::to_string(c.src_pad) + "_" +
             std::to_string(c.dst_pad) + "_o" + std::to_string(c.src_offset);
    });

TEST(Fp8QuantizeKernelArguments, RejectedWithInvalidValue) {
  auto* p = reinterpret_cast<bf16*>(uintptr_t{1} << 20);
  auto* q = reinterpret_cast<uint8_t*>(uintptr_t{1} << 20);
  auto* s = reinterpret_cast<float*>(uintptr_t{1} << 20);
  EXPECT_EQ(quantize_e4m3_rows(p, 16, -1, 16, q, 16, s, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(quantize_e4m3_rows(p, 16, 2, 0, q, 16, s, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(quantize_e4m3_rows_fallback(p, 16, 2, 0, q, 16, s, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(quantize_e4m3_rows(p, 16, 0, 16, q, 16, s, nullptr), cudaSuccess);
}

struct LinearCase {
  bool own_epilogue;
  bool bias;
  DType out;
  bool accumulate;
  bool fast_accum = false;
};

class Fp8Linear : public ::testing::TestWithParam<LinearCase> {};

// linear_fp8 on a bf16 x and fp8 weights against (1) the exact product of the dequantised
// operands (what the GEMM and its scaling must compute: only fp32 accumulation and the output
// rounding differ) and (2) the unquantised bf16 operands (the error fp8 adds, with its bound).
TEST_P(Fp8Linear, MatchesDequantisedAndUnquantisedProducts) {
  RADIX_REQUIRE_GPU();
  const LinearCase tc = GetParam();
  auto gpu = gpu_backend(tc.own_epilogue, tc.fast_accum);
  std::mt19937 rng(11);
  const int64_t m = 67, k = 256, n = 96;
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> xh(m * k), wh(n * k), bh(n), oh(m * n);
  // Rows and channels of different magnitudes, as real activations and weights have.
  for (int64_t r = 0; r < m; ++r)
    for (int64_t c = 0; c < k; ++c) xh[r * k + c] = round_bf16(dist(rng) * (1.0f + r % 5));
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < k; ++c) wh[r * k + c] = round_bf16(dist(rng) * 0.02f * (1.0f + r % 3));
  for (auto& v : bh) v = round_bf16(dist(rng));
  for (auto& v : oh) v = round_bf16(dist(rng));
  Buffer x = gpu->alloc(DType::kBF16, m, k), w16 = gpu->alloc(DType::kBF16, n, k);
  gpu->upload(x, xh.data(), DType::kF32);
  gpu->upload(w16, wh.data(), DType::kF32);
  Buffer w = gpu->alloc(DType::kF8E4M3, n, k), ws = gpu->alloc(DType::kF32, 1, n);
  gpu->quantize_fp8_rows(w16, w, ws);
  // The backend quantises x itself; the same kernel here gives the operands it used.
  Buffer xq = gpu->alloc(DType::kF8E4M3, m, k), xs = gpu->alloc(DType::kF32, m, 1);
  gpu->quantize_fp8_rows(x, xq, xs);
  Buffer bias;
  if (tc.bias) {
    bias = gpu->alloc(DType::kBF16, 1, n);
    gpu->upload(bias, bh.data(), DType::kF32);
  }
  Buffer out = gpu->alloc(tc.out, m, n);
  gpu->upload(out, oh.data(), DType::kF32);
  const std::vector<float> before = download(*gpu, out);
  gpu->linear_fp8(x, Tensor{}, w, ws, out, tc.accumulate, bias);
  const std::vector<float> got = download(*gpu, out);

  // An fp8 x with its scales gives the same result.
  Buffer out2 = gpu->alloc(tc.out, m, n);
  gpu->upload(out2, oh.data(), DType::kF32);
  gpu->linear_fp8(xq, xs, w, ws, out2, tc.accumulate, bias);
  const std::vector<float> got2 = download(*gpu, out2);

  const std::vector<float> qx = download(*gpu, xq), sx = download(*gpu, xs);
  const std::vector<float> qw = download(*gpu, w), sw = download(*gpu, ws);
  const std::vector<float> b = tc.bias ? download(*gpu, bias) : std::vector<float>(n, 0.0f);
  // Output rounding: bf16 (2^-9 relative), twice on the own-epilogue path (bf16 product, then
  // the scaled result); fp32 out has only the product's bf16 rounding on that path.
  const double round_rel = std::ldexp(1.0, -7);
  // Accumulation: Hopper's fp8 tensor cores add each k32 step's products to the accumulator
  // keeping ~14 bits of the largest term. cuBLASLt by default moves the partial sum to fp32
  // registers every few steps, so the loss stays within 2^-12 of sum |terms|; with fast
  // accumulation every one of the k / 32 steps may lose 2^-14 of the running sum.
  const double acc_rel = tc.fast_accum ? std::ldexp(1.0, -14) * static_cast<double>((k + 31) / 32)
                                       : std::ldexp(1.0, -12);
  double err2 = 0, norm2 = 0;
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t c = 0; c < n; ++c) {
      double deq = 0, deq_abs = 0, exact = 0, exact_abs = 0, sum_abs_w = 0, sum_abs_x = 0;
      for (int64_t i = 0; i < k; ++i) {
        const double a = double(qx[r * k + i]) * sx[r], bw = double(qw[c * k + i]) * sw[c];
        deq += a * bw;
        deq_abs += std::fabs(a * bw);
        exact += double(xh[r * k + i]) * wh[c * k + i];
        exact_abs += std::fabs(double(xh[r * k + i]) * wh[c * k + i]);
        sum_abs_w += std::fabs(wh[c * k + i]);
        sum_abs_x += std::fabs(xh[r * k + i]);
      }
      const double add = b[c] + (tc.accumulate ? before[r * n + c] : 0.0);
      const double g = got[r * n + c];
      ASSERT_TRUE(std::isfinite(g)) << r << "," << c;
      // (1) Dequantised reference: the accumulation (acc_rel above) plus the output rounding.
      const double tol1 = round_rel * (std::fabs(deq) + std::fabs(add)) + acc_rel * deq_abs + 1e-6;
      ASSERT_NEAR(g, deq + add, tol1) << "row " << r << " col " << c;
      ASSERT_NEAR(got2[r * n + c], g, round_rel * std::fabs(g) + acc_rel * deq_abs + 1e-6)
          << "fp8 x, row " << r << " col " << c;
      // (2) Unquantised reference, a worst-case bound: every e4m3 operand is within 2^-4 of its
      // value relative (normal range) or 2^-10 * scale absolute (subnormal range), so each
      // product within (2^-4 + 2^-4 + 2^-8) relative plus the subnormal terms.
      // (1 + 2^-4)^2 - 1 = 0.12890625; the subnormal terms carry the other operand's (1 + 2^-4).
      const double tol2 =
          0.1290 * exact_abs + 1.07 * std::ldexp(sx[r] * sum_abs_w + sw[c] * sum_abs_x, -10) +
          round_rel * (std::fabs(exact) + std::fabs(add)) + acc_rel * deq_abs + 1e-6;
      ASSERT_NEAR(g, exact + add, tol2) << "vs bf16 operands, row " << r << " col " << c;
      err2 += (g - exact - add) * (g - exact - add);
      norm2 += exact * exact;
    }
  }
  // Typical error: rounding errors of random sign average out in the dot products; expected
  // about 0.04 of the output's RMS (docs/numerics.md); a wrong scale gives errors near 1.
  const double rel_rms = std::sqrt(err2 / norm2);
  std::printf("fp8 linear: RMS error vs the bf16 operands %.4f of the output RMS\n", rel_rms);
  EXPECT_LT(rel_rms, 0.08);
}

INSTANTIATE_TEST_SUITE_P(Paths, Fp8Linear,
                         ::testing::Values(LinearCase{false, false, DType::kBF16, false},
                                           LinearCase{true, false, DType::kBF16, false},
                                           LinearCase{false, true, DType::kBF16, false},
                                           LinearCase{true, true, DType::kBF16, false},
                                           LinearCase{false, true, DType::kF32, true},
                                           LinearCase{true, false, DType::kF32, true},
                                           LinearCase{false, false, DType::kBF16, true},
                                           LinearCase{false, false, DType::kBF16, false, true},
                                           LinearCase{false, true, DType::kF32, true, true},
                                           LinearCase{true, true, DType::kBF16, false, true}),
                         [](const auto& info) {
                           const LinearCase& c = info.param;
                           return std::string(c.own_epilogue ? "own" : "cublaslt") +
                                  (c.bias ? "_bias" : "") + "_" + dtype_name(c.out) +
                                  (c.accumulate ? "_accumulate" : "") +
                                  (c.fast_accum ? "_fastaccum" : "");
                         });

TEST(Fp8Errors, BadShapesAndTheCpuBackendAreClearErrors) {
  auto cpu = make_cpu_backend(1);
  EXPECT_FALSE(cpu->supports_fp8());
  Buffer a = cpu->alloc(DType::kF32, 2, 16), s = cpu->alloc(DType::kF32, 2, 1);
  EXPECT_THROW(cpu->quantize_fp8_rows(a, a, s), BackendError);
  EXPECT_THROW(cpu->linear_fp8(a, Tensor{}, a, s, a), BackendError);
  RADIX_REQUIRE_GPU();
  auto gpu = gpu_backend(false);
  Buffer x = gpu->alloc(DType::kBF16, 4, 24);
  Buffer w = gpu->alloc(DType::kF8E4M3, 8, 24), ws = gpu->alloc(DType::kF32, 1, 8);
  Buffer out = gpu->alloc(DType::kBF16, 4, 8);
  // k = 24 is not a multiple of 16 (cuBLASLt's e4m3 requirement).
  EXPECT_THROW(gpu->linear_fp8(x, Tensor{}, w, ws, out), BackendError);
  Buffer w16 = gpu->alloc(DType::kBF16, 64, 64), x64 = gpu->alloc(DType::kBF16, 16, 64);
  Buffer out64 = gpu->alloc(DType::kBF16, 16, 64);
  gpu->fill_random_normal(w16, 1, 1.0f);
  gpu->fill_random_normal(x64, 2, 1.0f);
  Buffer wq = gpu->alloc(DType::kF8E4M3, 64, 64);
  Buffer bad_scale = gpu->alloc(DType::kF32, 1, 63);
  EXPECT_THROW(gpu->quantize_fp8_rows(w16, wq, bad_scale), BackendError);
  // A bf16 weight is not an fp8 weight; an x_scale with a bf16 x is refused.
  Buffer wsc = gpu->alloc(DType::kF32, 1, 64);
  gpu->quantize_fp8_rows(w16, wq, wsc);
  EXPECT_THROW(gpu->linear_fp8(x64, Tensor{}, w16, wsc, out64), BackendError);
  Buffer xs = gpu->alloc(DType::kF32, 16, 1);
  EXPECT_THROW(gpu->linear_fp8(x64, xs, wq, wsc, out64), BackendError);
  // The backend is still usable after the refusals.
  gpu->linear_fp8(x64, Tensor{}, wq, wsc, out64);
  std::vector<float> y(16 * 64);
  gpu->download(out64, y.data());
  for (float v : y) ASSERT_TRUE(std::isfinite(v));
}

}  // namespace
}  // namespace radix::cuda::testing
