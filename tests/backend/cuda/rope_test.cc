// RoPE apart from q/k-norm, with a host-computed inv_freq table, against a double-precision
// rotation of the same bf16 inputs by the same fp32 angles.
#include "backend/cuda/kernels/rope.cuh"

#include <cmath>

#include "gpu_test_util.h"

namespace radix::cuda::testing {
namespace {

struct RopeTableCase {
  int rows, hq, hkv, head_dim, extra_cols;  // extra_cols: v and padding, left untouched
  bool scaled;                              // a non-geometric table (as llama3 scaling makes)
};

class RopeTest : public ::testing::TestWithParam<RopeTableCase> {};

TEST_P(RopeTest, MatchesScalarReference) {
  RADIX_REQUIRE_GPU();
  const auto [rows, hq, hkv, d, extra, scaled] = GetParam();
  const int64_t stride = static_cast<int64_t>(hq + hkv) * d + extra;
  const int half = d / 2;
  std::mt19937 rng(rows * 131 + d);
  auto qkv = random_bf16(rows * stride, rng, 2.0f);
  std::vector<float> inv_freq(half);
  for (int j = 0; j < half; ++j) {
    inv_freq[j] = 1.0f / std::pow(500000.0f, static_cast<float>(2 * j) / d);
    if (scaled && j >= half / 2) inv_freq[j] /= 8.0f;  // low frequencies stretched
  }
  std::vector<int32_t> pos(rows);
  std::uniform_int_distribution<int> pd(0, 32767);
  for (auto& p : pos) p = pd(rng);
  if (rows > 1) pos[1] = 0;

  DeviceBuffer<bf16> d_qkv(qkv);
  DeviceBuffer<int32_t> d_pos(pos);
  DeviceBuffer<float> d_freq(inv_freq);
  RADIX_CUDA_CHECK(rope(d_qkv.get(), stride, d_pos.get(), d_freq.get(), rows, hq, hkv, d, nullptr));
  const auto out = d_qkv.download();

  for (int r = 0; r < rows; ++r) {
    for (int h = 0; h < hq + hkv; ++h) {
      const bf16* x = &qkv[r * stride + h * d];
      for (int j = 0; j < half; ++j) {
        const double a = to_float(x[j]), b = to_float(x[half + j]);
        const double angle = static_cast<float>(pos[r]) * inv_freq[j];  // fp32, as HF
        const double ref_lo = a * std::cos(angle) - b * std::sin(angle);
        const double ref_hi = b * std::cos(angle) + a * std::sin(angle);
        ASSERT_NEAR(to_float(out[r * stride + h * d + j]), ref_lo, bf16_tolerance(ref_lo))
            << r << " h" << h << " j" << j;
        ASSERT_NEAR(to_float(out[r * stride + h * d + half + j]), ref_hi, bf16_tolerance(ref_hi))
            << r << " h" << h << " j" << j;
      }
    }
    for (int64_t c = static_cast<int64_t>(hq + hkv) * d; c < stride; ++c) {
      ASSERT_EQ(to_float(out[r * stride + c]), to_float(qkv[r * stride + c]));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, RopeTest,
    ::testing::Values(RopeTableCase{1, 32, 8, 128, 8 * 128, false},
                      RopeTableCase{127, 32, 8, 128, 8 * 128, true},
                      RopeTableCase{129, 28, 4, 128, 4 * 128 + 8, false},
                      RopeTableCase{17, 4, 2, 64, 2 * 64 + 8, true},
                      RopeTableCase{9, 8, 1, 256, 256, false},       // Gemma-2B
                      RopeTableCase{65, 16, 8, 256, 8 * 256, true},  // Gemma2-9B
                      RopeTableCase{33, 3, 3, 128, 0, false}, RopeTableCase{0, 4, 2, 64, 0, false},
                      // The tiny test models' head dims, and one between
                      // the fast ones.
                      RopeTableCase{29, 4, 2, 16, 2 * 16, false},
                      RopeTableCase{31, 4, 1, 32, 32 + 8, true},
                      RopeTableCase{7, 2, 2, 96, 2 * 96, true}));

TEST(Rope, RejectsBadArguments) {
  auto* p = reinterpret_cast<bf16*>(uintptr_t{1} << 20);
  auto* pos = reinterpret_cast<const int32_t*>(uintptr_t{1} << 21);
  auto* f = reinterpret_cast<const float*>(uintptr_t{1} << 22);
  EXPECT_EQ(rope(p, 95 * 3, pos, f, 4, 2, 1, 95, nullptr), cudaErrorInvalidValue);    // odd
  EXPECT_EQ(rope(p, 512 * 3, pos, f, 4, 2, 1, 512, nullptr), cudaErrorInvalidValue);  // > 256
  EXPECT_EQ(rope(p, 100, pos, f, 4, 2, 1, 128, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(rope(p, 3 * 128, pos, nullptr, 4, 2, 1, 128, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(rope(p, 3 * 128, pos, f, -1, 2, 1, 128, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(rope(p, 3 * 128, pos, f, 0, 2, 1, 128, nullptr), cudaSuccess);
}

}  // namespace
}  // namespace radix::cuda::testing
