#include "backend/cuda/kernels/qk_norm_rope.cuh"

#include <cmath>

#include "gpu_test_util.h"

namespace radix::cuda::testing {
namespace {

struct RopeCase {
  int rows, hq, hkv, head_dim, extra_cols;  // extra_cols: v and padding, left untouched
};

class QkNormRopeTest : public ::testing::TestWithParam<RopeCase> {};

TEST_P(QkNormRopeTest, MatchesScalarReference) {
  RADIX_REQUIRE_GPU();
  const auto [rows, hq, hkv, d, extra] = GetParam();
  const int64_t stride = static_cast<int64_t>(hq + hkv) * d + extra;
  const float theta = 1e6f, eps = 1e-6f;
  std::mt19937 rng(rows * 31 + hq);
  auto qkv = random_bf16(rows * stride, rng, 2.0f);
  auto qw = random_bf16(d, rng), kw = random_bf16(d, rng);
  std::vector<int32_t> pos(rows);
  std::uniform_int_distribution<int> pd(0, 4095);
  for (auto& p : pos) p = pd(rng);
  if (rows > 1) pos[1] = 0;

  DeviceBuffer<bf16> d_qkv(qkv), d_qw(qw), d_kw(kw);
  DeviceBuffer<int32_t> d_pos(pos);
  RADIX_CUDA_CHECK(qk_norm_rope(d_qkv.get(), stride, d_pos.get(), d_qw.get(), d_kw.get(), rows, hq,
                                hkv, d, theta, eps, nullptr));
  const auto out = d_qkv.download();

  const int half = d / 2;
  for (int r = 0; r < rows; ++r) {
    for (int h = 0; h < hq + hkv; ++h) {
      const bf16* x = &qkv[r * stride + h * d];
      const bf16* w = h < hq ? qw.data() : kw.data();
      double ss = 0;
      for (int i = 0; i < d; ++i) ss += double(to_float(x[i])) * to_float(x[i]);
      const double inv = 1.0 / std::sqrt(ss / d + eps);
      for (int j = 0; j < half; ++j) {
        const double a = to_float(x[j]) * inv * to_float(w[j]);
        const double b = to_float(x[half + j]) * inv * to_float(w[half + j]);
        // The kernel's angle is float32, like the Hugging Face reference's.
        const float inv_freq = 1.0f / std::pow(theta, static_cast<float>(2 * j) / d);
        const double angle = static_cast<float>(pos[r]) * inv_freq;
        const double ref_lo = a * std::cos(angle) - b * std::sin(angle);
        const double ref_hi = b * std::cos(angle) + a * std::sin(angle);
        const float got_lo = to_float(out[r * stride + h * d + j]);
        const float got_hi = to_float(out[r * stride + h * d + half + j]);
        ASSERT_NEAR(got_lo, ref_lo, bf16_tolerance(ref_lo) + 2e-3) << r << " h" << h << " j" << j;
        ASSERT_NEAR(got_hi, ref_hi, bf16_tolerance(ref_hi) + 2e-3) << r << " h" << h << " j" << j;
      }
    }
    // v heads and padding columns are not touched.
    for (int64_t c = static_cast<int64_t>(hq + hkv) * d; c < stride; ++c) {
      ASSERT_EQ(to_float(out[r * stride + c]), to_float(qkv[r * stride + c]));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, QkNormRopeTest,
    ::testing::Values(RopeCase{1, 16, 8, 128, 8 * 128}, RopeCase{127, 16, 8, 128, 8 * 128},
                      RopeCase{129, 32, 8, 128, 8 * 128}, RopeCase{17, 4, 2, 64, 2 * 64 + 8},
                      RopeCase{9, 2, 1, 256, 256}, RopeCase{33, 3, 3, 128, 0},
                      // Odd row strides: rows not aligned for the vector accesses (scalar path).
                      RopeCase{5, 2, 1, 128, 1}, RopeCase{6, 2, 1, 256, 3}));

TEST(QkNormRope, RejectsUnsupportedHeadDim) {
  EXPECT_EQ(
      qk_norm_rope(nullptr, 96 * 3, nullptr, nullptr, nullptr, 4, 2, 1, 96, 1e6f, 1e-6f, nullptr),
      cudaErrorInvalidValue);
  EXPECT_EQ(
      qk_norm_rope(nullptr, 100, nullptr, nullptr, nullptr, 4, 2, 1, 128, 1e6f, 1e-6f, nullptr),
      cudaErrorInvalidValue);
}

}  // namespace
}  // namespace radix::cuda::testing
