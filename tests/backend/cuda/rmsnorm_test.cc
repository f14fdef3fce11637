#include "backend/cuda/kernels/rmsnorm.cuh"

#include <cmath>

#include "gpu_test_util.h"

namespace radix::cuda::testing {
namespace {

struct NormCase {
  int rows, hidden;
  bool with_delta;
  int pad;                   // extra columns in the x and out rows; out's must stay untouched
  bool unit_offset = false;  // weight (1 + w), as Gemma
};

template <typename TX, typename TO>
void check_add_rmsnorm(const NormCase& p) {
  const auto [rows, hidden, with_delta, pad, unit_offset] = p;
  std::mt19937 rng(rows * 7919 + hidden + pad);
  const float eps = 1e-6f;
  const int64_t stride = hidden + pad;
  // The residual as TX holds (bf16 inputs are exact in either type).
  auto x0 = random_bf16(static_cast<size_t>(rows) * stride, rng, 3.0f);
  std::vector<TX> x(x0.size());
  for (size_t i = 0; i < x.size(); ++i) x[i] = TX(to_float(x0[i]));
  auto delta = random_bf16(static_cast<size_t>(rows) * hidden, rng);
  auto weight = random_bf16(hidden, rng);

  DeviceBuffer<TX> d_x(x);
  DeviceBuffer<bf16> d_delta(delta), d_weight(weight);
  DeviceBuffer<TO> d_out(rows * stride);
  d_out.poison();
  RADIX_CUDA_CHECK(add_rmsnorm(d_x.get(), stride, with_delta ? d_delta.get() : nullptr, hidden,
                               d_weight.get(), d_out.get(), stride, rows, hidden, eps, nullptr,
                               unit_offset));
  const auto res = d_x.download();
  const auto out = d_out.download();

  for (int r = 0; r < rows; ++r) {
    std::vector<double> v(hidden);
    double ss = 0;
    for (int c = 0; c < hidden; ++c) {
      const double sum =
          to_float(x0[r * stride + c]) + (with_delta ? to_float(delta[r * hidden + c]) : 0.0);
      // The kernel normalises the residual as stored: rounded to bf16 when TX is bf16.
      v[c] = sizeof(TX) == 2 ? round_bf16(static_cast<float>(sum)) : sum;
      ss += v[c] * v[c];
      ASSERT_NEAR(static_cast<float>(res[r * stride + c]), v[c], 1e-6 * (1 + std::fabs(v[c])))
          << r << "," << c;
    }
    const double inv = 1.0 / std::sqrt(ss / hidden + eps);
    for (int c = 0; c < hidden; ++c) {
      const double w = to_float(weight[c]);
      const double ref = v[c] * inv * (unit_offset ? 1.0 + w : w);
      const float got = static_cast<float>(out[r * stride + c]);
      const double tol = sizeof(TO) == 2 ? bf16_tolerance(ref) : 1e-5 * (1 + std::fabs(ref));
      ASSERT_NEAR(got, ref, tol) << "row " << r << " col " << c;
    }
    for (int c = hidden; c < stride; ++c) ASSERT_TRUE(is_poison(out[r * stride + c]));
  }
}

class AddRmsNormTest : public ::testing::TestWithParam<NormCase> {};

TEST_P(AddRmsNormTest, Fp32ResidualToBf16) {
  RADIX_REQUIRE_GPU();
  check_add_rmsnorm<float, bf16>(GetParam());
}
TEST_P(AddRmsNormTest, Fp32ResidualToFp32) {
  RADIX_REQUIRE_GPU();
  check_add_rmsnorm<float, float>(GetParam());
}
TEST_P(AddRmsNormTest, Bf16ToBf16) {
  RADIX_REQUIRE_GPU();
  check_add_rmsnorm<bf16, bf16>(GetParam());
}
TEST_P(AddRmsNormTest, Bf16ToFp32) {
  RADIX_REQUIRE_GPU();
  check_add_rmsnorm<bf16, float>(GetParam());
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, AddRmsNormTest,
    ::testing::Values(NormCase{1, 1024, false, 0}, NormCase{127, 1024, true, 0},
                      NormCase{129, 4096, true, 8}, NormCase{129, 4096, false, 0},
                      NormCase{3, 1001, true, 3}, NormCase{2, 24, true, 0},
                      NormCase{5, 5120, true, 0}, NormCase{3, 9216, true, 0},
                      NormCase{2, 2560, false, 8},
                      // Gemma's (1 + w): Gemma-2B and 9B hidden sizes too.
                      NormCase{1, 2048, false, 0, true}, NormCase{129, 3584, true, 8, true},
                      NormCase{3, 1001, true, 3, true}, NormCase{2, 12288, true, 0, true}));

TEST(AddRmsNorm, RejectsBadSizes) {
  float* x = nullptr;
  bf16* out = nullptr;
  EXPECT_EQ(add_rmsnorm(x, 8, nullptr, 0, nullptr, out, 8, -1, 8, 1e-6f, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(add_rmsnorm(x, 8, nullptr, 0, nullptr, out, 8, 4, 0, 1e-6f, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(add_rmsnorm(x, 4, nullptr, 0, nullptr, out, 8, 4, 8, 1e-6f, nullptr),
            cudaErrorInvalidValue);
  // Zero rows is a valid no-op and must not launch anything.
  EXPECT_EQ(add_rmsnorm(x, 8, nullptr, 0, nullptr, out, 8, 0, 8, 1e-6f, nullptr), cudaSuccess);
}

}  // namespace
}  // namespace radix::cuda::testing
