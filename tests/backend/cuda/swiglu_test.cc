#include "backend/cuda/kernels/swiglu.cuh"

#include <cmath>

#include "gpu_test_util.h"

namespace radix::cuda::testing {
namespace {

struct SwigluCase {
  int rows, inter, in_pad, out_pad;
};

class SwigluTest : public ::testing::TestWithParam<SwigluCase> {};

TEST_P(SwigluTest, MatchesScalarReference) {
  RADIX_REQUIRE_GPU();
  const auto [rows, inter, in_pad, out_pad] = GetParam();
  const int64_t in_stride = 2 * inter + in_pad, out_stride = inter + out_pad;
  std::mt19937 rng(rows + inter);
  auto gu = random_bf16(rows * in_stride, rng, 3.0f);
  DeviceBuffer<bf16> d_gu(gu), d_out(rows * out_stride);
  d_out.poison();
  RADIX_CUDA_CHECK(swiglu(d_gu.get(), in_stride, d_out.get(), out_stride, rows, inter, nullptr));
  const auto out = d_out.download();
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < inter; ++c) {
      const double g = to_float(gu[r * in_stride + c]);
      const double u = to_float(gu[r * in_stride + inter + c]);
      const double ref = g / (1 + std::exp(-g)) * u;
      ASSERT_NEAR(to_float(out[r * out_stride + c]), ref, bf16_tolerance(ref)) << r << "," << c;
    }
    for (int c = inter; c < out_stride; ++c) ASSERT_TRUE(is_poison(out[r * out_stride + c]));
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, SwigluTest,
                         ::testing::Values(SwigluCase{1, 3072, 0, 0}, SwigluCase{127, 3072, 0, 0},
                                           SwigluCase{129, 1024, 8, 8}, SwigluCase{7, 1001, 1, 3},
                                           SwigluCase{2, 12288, 0, 0}));

}  // namespace
}  // namespace radix::cuda::testing
