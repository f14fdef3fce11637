// The gated activations (SwiGLU, GeGLU with tanh-approximated GELU) against a double-precision
// scalar reference of the same formulas as transformers (silu, gelu_pytorch_tanh).
#include "backend/cuda/kernels/gated_activation.cuh"

#include <cmath>
#include <string>
#include <tuple>

#include "gpu_test_util.h"

namespace radix::cuda::testing {
namespace {

struct GatedCase {
  int rows, inter, in_pad, out_pad;
};

double reference(GateActivation act, double g, double u) {
  if (act == GateActivation::kSilu) return g / (1 + std::exp(-g)) * u;
  const double k = std::sqrt(2.0 / M_PI);
  return 0.5 * g * (1 + std::tanh(k * (g + 0.044715 * g * g * g))) * u;
}

class GatedActivationTest : public ::testing::TestWithParam<std::tuple<GateActivation, GatedCase>> {
};

TEST_P(GatedActivationTest, MatchesScalarReference) {
  RADIX_REQUIRE_GPU();
  const auto [act, c] = GetParam();
  const auto [rows, inter, in_pad, out_pad] = c;
  const int64_t in_stride = 2 * inter + in_pad, out_stride = inter + out_pad;
  std::mt19937 rng(rows + inter);
  auto gu = random_bf16(rows * in_stride, rng, 3.0f);
  DeviceBuffer<bf16> d_gu(gu), d_out(rows * out_stride);
  d_out.poison();
  RADIX_CUDA_CHECK(
      gated_activation(act, d_gu.get(), in_stride, d_out.get(), out_stride, rows, inter, nullptr));
  const auto out = d_out.download();
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < inter; ++c) {
      const double g = to_float(gu[r * in_stride + c]);
      const double u = to_float(gu[r * in_stride + inter + c]);
      const double ref = reference(act, g, u);
      ASSERT_NEAR(to_float(out[r * out_stride + c]), ref, bf16_tolerance(ref)) << r << "," << c;
    }
    for (int c = inter; c < out_stride; ++c) ASSERT_TRUE(is_poison(out[r * out_stride + c]));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, GatedActivationTest,
    ::testing::Combine(::testing::Values(GateActivation::kSilu, GateActivation::kGeluTanh),
                       ::testing::Values(GatedCase{1, 3072, 0, 0}, GatedCase{127, 3072, 0, 0},
                                         GatedCase{129, 1024, 8, 8}, GatedCase{7, 1001, 1, 3},
                                         GatedCase{2, 12288, 0, 0}, GatedCase{3, 16384, 0, 0})),
    [](const auto& info) {
      const GatedCase c = std::get<1>(info.param);
      return std::string(std::get<0>(info.param) == GateActivation::kSilu ? "silu" : "gelu_tanh") +
             "_r" + std::to_string(c.rows) + "_i" + std::to_string(c.inter) + "_p" +
             std::to_string(c.in_pad) + "_" + std::to_string(c.out_pad);
    });

TEST(GatedActivationArguments, RejectedWithInvalidValue) {
  auto* p = reinterpret_cast<bf16*>(uintptr_t{1} << 20);
  EXPECT_EQ(gated_activation(GateActivation::kGeluTanh, p, 10, p, 5, 1, 6, nullptr),
            cudaErrorInvalidValue);  // in_stride < 2 * inter
  EXPECT_EQ(gated_activation(GateActivation::kGeluTanh, p, 12, p, 5, 1, 6, nullptr),
            cudaErrorInvalidValue);  // out_stride < inter
  EXPECT_EQ(gated_activation(GateActivation::kSilu, p, 12, p, 6, -1, 6, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(gated_activation(static_cast<GateActivation>(7), p, 12, p, 6, 1, 6, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(gated_activation(GateActivation::kGeluTanh, p, 12, p, 6, 0, 6, nullptr), cudaSuccess);
}

}  // namespace
}  // namespace radix::cuda::testing
