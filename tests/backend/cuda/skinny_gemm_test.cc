// skinny_gemm (the small-M bf16 GEMM, kernels/skinny_gemm.cuh) against a double-precision host
// reference, every epilogue, strided x and y, odd N and K, forced tilings and splits; and the
// split-K reduction's run-to-run bit identity. Gemm's dispatch to it is covered by gemm_test.cc.
#include "backend/cuda/kernels/skinny_gemm.cuh"

#include <cmath>
#include <cstring>

#include "backend/cuda/gemm.h"
#include "gpu_test_util.h"

namespace radix::cuda::testing {
namespace {

struct SkinnyCase {
  int m, n, k;
  bool f32_out;
  bool accumulate;
  bool bias;
  int pad_x = 0;   // ldx = k + pad_x (a multiple of 8 keeps the kernel's precondition)
  int pad_y = 0;   // ldy = n + pad_y (any)
  int bn = 0;      // 0: the kernel's choice
  int splits = 0;  // 0: the kernel's choice
};

std::ostream& operator<<(std::ostream& os, const SkinnyCase& c) {
  return os << "m" << c.m << "_n" << c.n << "_k" << c.k << (c.f32_out ? "_f32" : "_bf16")
            << (c.accumulate ? "_acc" : "") << (c.bias ? "_bias" : "") << "_px" << c.pad_x << "_py"
            << c.pad_y << "_bn" << c.bn << "_s" << c.splits;
}

template <typename TO>
cudaError_t run_skinny(const SkinnyCase& c, const DeviceBuffer<bf16>& x,
                       const DeviceBuffer<bf16>& w, TO* y, const TO* bias) {
  return skinny_gemm<TO>(x.get(), c.k + c.pad_x, w.get(), c.k, y, c.n + c.pad_y, c.m, c.n, c.k,
                         c.accumulate, bias, nullptr, c.bn, c.splits);
}

class SkinnyGemmTest : public ::testing::TestWithParam<SkinnyCase> {};

TEST_P(SkinnyGemmTest, MatchesReference) {
  RADIX_REQUIRE_GPU();
  const SkinnyCase c = GetParam();
  const int64_t ldx = c.k + c.pad_x, ldy = c.n + c.pad_y;
  std::mt19937 rng(c.m * 7 + c.n * 3 + c.k);
  const auto x = random_bf16(c.m * ldx, rng);
  const auto w = random_bf16(int64_t{c.n} * c.k, rng, 0.05f);
  // bf16-exact starting y and bias, so that both output types hold the same numbers.
  const auto y0_16 = random_bf16(c.m * ldy, rng);
  const auto bias16 = random_bf16(c.n, rng, 2.0f);
  std::vector<float> y0(y0_16.size()), bias(c.n);
  for (size_t i = 0; i < y0.size(); ++i) y0[i] = to_float(y0_16[i]);
  for (int j = 0; j < c.n; ++j) bias[j] = to_float(bias16[j]);
  DeviceBuffer<bf16> d_x(x), d_w(w), d_y16(y0_16), d_b16(bias16);
  DeviceBuffer<float> d_y32(y0), d_b32(bias);
  if (!c.accumulate) d_y16.poison(), d_y32.poison();

  const cudaError_t err =
      c.f32_out ? run_skinny<float>(c, d_x, d_w, d_y32.get(), c.bias ? d_b32.get() : nullptr)
                : run_skinny<bf16>(c, d_x, d_w, d_y16.get(), c.bias ? d_b16.get() : nullptr);
  ASSERT_EQ(err, cudaSuccess) << cudaGetErrorString(err);
  const auto y16 = d_y16.download();
  const auto y32 = d_y32.download();

  // Tolerance. The products of bf16 values are exact in fp32; the error is the fp32 summation:
  // each addition rounds by at most 2^-24 of the running sum (taken as 2^-22 for the tensor
  // cores' internal alignment, which truncates), the sum runs through at most K/16 mma steps, the
  // K-group and K-slice additions and the epilogue's two, and every partial sum is at most the
  // sum of magnitudes `mag`: |err| <= (K/16 + splits + 8) * 2^-22 * mag. A bf16 output adds one
  // rounding of the result: half an ulp, at most 2^-8 of |ref|.
  const int slices = kSkinnyGemmMaxSplits;
  for (int i = 0; i < c.m; ++i) {
    for (int j = 0; j < c.n; ++j) {
      double ref = 0, mag = 0;
      for (int p = 0; p < c.k; ++p) {
        const double t = double(to_float(x[i * ldx + p])) * to_float(w[int64_t{j} * c.k + p]);
        ref += t;
        mag += std::fabs(t);
      }
      const int64_t at = i * ldy + j;
      if (c.bias) ref += bias[j], mag += std::fabs(bias[j]);
      if (c.accumulate) ref += y0[at], mag += std::fabs(y0[at]);
      const double tol = (c.f32_out ? 0.0 : std::fabs(ref) / 256) +
                         (c.k / 16 + slices + 8) * std::ldexp(mag, -22) + 1e-6;
      const float got = c.f32_out ? y32[at] : to_float(y16[at]);
      ASSERT_NEAR(got, ref, tol) << "row " << i << " col " << j;
    }
    if (!c.accumulate) {
      for (int64_t j = c.n; j < ldy; ++j) {
        ASSERT_TRUE(c.f32_out ? is_poison(y32[i * ldy + j]) : is_poison(y16[i * ldy + j]))
            << "wrote past n at row " << i << " col " << j;
      }
    }
  }
}

std::vector<SkinnyCase> cases() {
  std::vector<SkinnyCase> out;
  // Every required M on a shape with a ragged last N tile and a K that is no multiple of the
  // 64-wide stage, in both output types, each epilogue, strided x and y.
  for (int m : {1, 7, 16, 33, 64}) {
    out.push_back({m, 200, 1000, false, false, false});
    out.push_back({m, 200, 1000, true, true, true, 8, 3});
    out.push_back({m, 136, 520, false, true, false, 16, 5});
    out.push_back({m, 72, 264, true, false, true, 0, 1});
  }
  // Rows the kernel takes beyond Gemm's threshold (its 8-tile path).
  out.push_back({100, 136, 1000, false, true, true, 8, 2});
  out.push_back({128, 200, 256, true, false, false});
  // Forced tilings: both tile widths, unsplit, odd splits (uneven slices), the most splits (more
  // than the 13 stages of K of one case: fewer run), one 8-wide K.
  for (int bn : {64, 128}) {
    for (int splits : {1, 3, 7, 8}) {
      out.push_back({33, 300, 1480, false, true, true, 8, 2, bn, splits});
      out.push_back({5, 130, 776, true, false, true, 0, 0, bn, splits});
    }
  }
  out.push_back({64, 24, 8, false, false, false});
  out.push_back({9, 8, 64, true, true, false, 0, 1, 64, 1});
  // A Qwen3-0.6B projection at the row count of the prefix-cache stream (auto split-K).
  out.push_back({64, 1024, 2048, false, true, false});
  return out;
}

INSTANTIATE_TEST_SUITE_P(Shapes, SkinnyGemmTest, ::testing::ValuesIn(cases()));

// The split-K reduction sums the K slices in slice order whichever CTA finishes first, so repeated
// calls give the same bits (float atomics would not).
TEST(SkinnyGemm, SplitKIsBitIdenticalRunToRun) {
  RADIX_REQUIRE_GPU();
  constexpr int m = 64, n = 1024, k = 4096;
  std::mt19937 rng(5);
  DeviceBuffer<bf16> x(random_bf16(m * k, rng)), w(random_bf16(int64_t{n} * k, rng, 0.05f));
  DeviceBuffer<float> y32(m * n);
  DeviceBuffer<bf16> y16(m * n);
  for (int splits : {0, 4, 8}) {
    std::vector<float> first32;
    std::vector<bf16> first16;
    for (int run = 0; run < 5; ++run) {
      ASSERT_EQ(skinny_gemm<float>(x.get(), k, w.get(), k, y32.get(), n, m, n, k, false, nullptr,
                                   nullptr, 128, splits),
                cudaSuccess);
      ASSERT_EQ(skinny_gemm<bf16>(x.get(), k, w.get(), k, y16.get(), n, m, n, k, false, nullptr,
                                  nullptr, 64, splits),
                cudaSuccess);
      const auto a = y32.download();
      const auto b = y16.download();
      if (run == 0) {
        first32 = a, first16 = b;
        continue;
      }
      ASSERT_EQ(std::memcmp(a.data(), first32.data(), a.size() * sizeof(float)), 0)
          << "fp32 output differs on run " << run << " (splits " << splits << ")";
      ASSERT_EQ(std::memcmp(b.data(), first16.data(), b.size() * sizeof(bf16)), 0)
          << "bf16 output differs on run " << run << " (splits " << splits << ")";
    }
  }
}

// Different K splits give the same values up to fp32 summation order.
TEST(SkinnyGemm, SplitsAgree) {
  RADIX_REQUIRE_GPU();
  constexpr int m = 16, n = 256, k = 2048;
  std::mt19937 rng(6);
  DeviceBuffer<bf16> x(random_bf16(m * k, rng)), w(random_bf16(int64_t{n} * k, rng, 0.05f));
  DeviceBuffer<float> y1(m * n), y8(m * n);
  ASSERT_EQ(skinny_gemm<float>(x.get(), k, w.get(), k, y1.get(), n, m, n, k, false, nullptr,
                               nullptr, 64, 1),
            cudaSuccess);
  ASSERT_EQ(skinny_gemm<float>(x.get(), k, w.get(), k, y8.get(), n, m, n, k, false, nullptr,
                               nullptr, 64, 8),
            cudaSuccess);
  const auto a = y1.download(), b = y8.download();
  for (size_t i = 0; i < a.size(); ++i) {
    // Values ~1.6, magnitude sums ~80: fp32 noise is ~1e-5 (see MatchesReference).
    ASSERT_NEAR(a[i], b[i], 1e-4 * (std::fabs(b[i]) + 1)) << i;
  }
}

TEST(SkinnyGemm, RejectsWhatItCannotRun) {
  RADIX_REQUIRE_GPU();
  DeviceBuffer<bf16> x(64 * 72), w(64 * 72);
  DeviceBuffer<float> y(64 * 64);
  const auto call = [&](const bf16* xp, int64_t ldx, int64_t m, int64_t k, int bn = 0,
                        int splits = 0) {
    return skinny_gemm<float>(xp, ldx, w.get(), 72, y.get(), 64, m, 64, k, false, nullptr, nullptr,
                              bn, splits);
  };
  EXPECT_EQ(call(x.get(), 72, 64, 60), cudaErrorInvalidValue);      // k not a multiple of 8
  EXPECT_EQ(call(x.get(), 70, 64, 64), cudaErrorInvalidValue);      // ldx not a multiple of 8
  EXPECT_EQ(call(x.get() + 1, 72, 64, 64), cudaErrorInvalidValue);  // x not 16-byte aligned
  EXPECT_EQ(call(x.get(), 72, 129, 64), cudaErrorInvalidValue);     // too many rows
  EXPECT_EQ(call(x.get(), 72, 64, 64, 96), cudaErrorInvalidValue);  // no such tile width
  EXPECT_EQ(call(x.get(), 72, 64, 64, 64, kSkinnyGemmMaxSplits + 1), cudaErrorInvalidValue);
  EXPECT_EQ(call(x.get(), 72, 64, 64), cudaSuccess);
  EXPECT_FALSE(skinny_gemm_supported(x.get(), 72, w.get(), 72, 0, 64, 64));
}

// Gemm takes the skinny kernel for few rows when on (set_skinny, RADIX_CUDA_SKINNY_GEMM); both
// paths give the reference's values (gemm_test.cc checks them), and here each other's within fp32
// summation noise.
TEST(SkinnyGemm, GemmDispatchMatchesCublas) {
  RADIX_REQUIRE_GPU();
  constexpr int m = 48, n = 384, k = 1024;
  std::mt19937 rng(7);
  DeviceBuffer<bf16> x(random_bf16(m * k, rng)), w(random_bf16(int64_t{n} * k, rng, 0.05f));
  DeviceBuffer<float> a(m * n), b(m * n);
  Gemm gemm;
  gemm.set_skinny(true);
  gemm.f32_out(x.get(), k, w.get(), k, a.get(), n, m, n, k, false, nullptr);
  gemm.set_skinny(false);
  gemm.f32_out(x.get(), k, w.get(), k, b.get(), n, m, n, k, false, nullptr);
  EXPECT_EQ(gemm.cached_shapes(), 1u);  // only the second call planned a cuBLASLt GEMM
  const auto ha = a.download(), hb = b.download();
  for (size_t i = 0; i < ha.size(); ++i) ASSERT_NEAR(ha[i], hb[i], 1e-4 * (std::fabs(hb[i]) + 1));
}

}  // namespace
}  // namespace radix::cuda::testing
