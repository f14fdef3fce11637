#include "backend/cuda/gemm.h"

#include <cmath>

#include "gpu_test_util.h"

namespace radix::cuda::testing {
namespace {

struct GemmCase {
  int m, n, k;
  int pad;            // extra columns in every row stride
  int offset;         // element offset of every buffer (breaks 256-byte alignment when nonzero)
  bool f32_out;       // fp32 output instead of bf16
  bool accumulate;    // y += x @ w^T
  bool bias = false;  // + bias[j] in the epilogue (its own aligned buffer, of y's type)
};

class GemmTest : public ::testing::TestWithParam<GemmCase> {};

// Runs one case through `gemm` and compares every output with a double-precision reference.
void expect_matches_reference(Gemm& gemm, const GemmCase& c) {
  const auto [m, n, k, pad, offset, f32_out, accumulate, with_bias] = c;
  const int64_t ldx = k + pad, ldw = k + pad, ldy = n + pad;
  std::mt19937 rng(m * 3 + n * 5 + k);
  auto x = random_bf16(offset + m * ldx, rng);
  auto w = random_bf16(offset + n * ldw, rng, 0.05f);
  // Initial y (read when accumulating); bf16-exact values so both output types start equal.
  auto y0_16 = random_bf16(offset + m * ldy, rng);
  std::vector<float> y0(y0_16.size());
  for (size_t i = 0; i < y0.size(); ++i) y0[i] = to_float(y0_16[i]);
  DeviceBuffer<bf16> d_x(x), d_w(w), d_y16(y0_16);
  DeviceBuffer<float> d_y32(y0);
  if (!accumulate) d_y16.poison(), d_y32.poison();
  // bf16-exact bias values, so that both bias types hold the same numbers.
  const auto bias16 = random_bf16(n, rng, 2.0f);
  std::vector<float> bias(n);
  for (int j = 0; j < n; ++j) bias[j] = to_float(bias16[j]);
  DeviceBuffer<bf16> d_bias16(bias16);
  DeviceBuffer<float> d_bias32(bias);

  if (f32_out) {
    gemm.f32_out(d_x.get() + offset, ldx, d_w.get() + offset, ldw, d_y32.get() + offset, ldy, m, n,
                 k, accumulate, nullptr, with_bias ? d_bias32.get() : nullptr);
  } else {
    gemm.bf16_out(d_x.get() + offset, ldx, d_w.get() + offset, ldw, d_y16.get() + offset, ldy, m, n,
                  k, accumulate, nullptr, with_bias ? d_bias16.get() : nullptr);
  }
  const auto y16 = d_y16.download();
  const auto y32 = d_y32.download();

  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      double ref = 0, mag = 0;
      for (int p = 0; p < k; ++p) {
        const double t =
            double(to_float(x[offset + i * ldx + p])) * to_float(w[offset + j * ldw + p]);
        ref += t;
        mag += std::fabs(t);
      }
      const int64_t at = offset + i * ldy + j;
      if (with_bias) {
        ref += bias[j];
        mag += std::fabs(bias[j]);
      }
      if (accumulate) {
        ref += y0[at];
        mag += std::fabs(y0[at]);
      }
      // fp32 accumulation: error grows with the sum of magnitudes, not the result. A bf16 output
      // adds one rounding of the result, and when accumulating cuBLASLt may round x @ w^T to bf16
      // before adding y (seen on an H100): a rounding at the scale of the terms, not the sum.
      const float got = f32_out ? y32[at] : to_float(y16[at]);
      const double rounded = f32_out ? 0.0 : (accumulate ? std::fabs(ref) + mag : std::fabs(ref));
      const double tol = rounded / 128 + 1e-5 * mag + 1e-6;
      ASSERT_NEAR(got, ref, tol) << i << "," << j;
    }
    if (!accumulate) {
      for (int64_t j = n; j < ldy; ++j) {
        ASSERT_TRUE(f32_out ? is_poison(y32[offset + i * ldy + j])
                            : is_poison(y16[offset + i * ldy + j]));
      }
    }
  }
}

TEST_P(GemmTest, MatchesDoubleReference) {
  RADIX_REQUIRE_GPU();
  Gemm gemm(/*autotune=*/GetParam().m == 129);
  // Few rows go to the skinny kernel where its preconditions hold, else to cuBLASLt: both paths.
  gemm.set_skinny(true);
  expect_matches_reference(gemm, GetParam());
  gemm.set_skinny(false);
  expect_matches_reference(gemm, GetParam());
}

INSTANTIATE_TEST_SUITE_P(Shapes, GemmTest,
                         ::testing::Values(GemmCase{1, 256, 1024, 0, 0, false, false},
                                           GemmCase{127, 384, 256, 0, 0, false, false},
                                           GemmCase{129, 512, 128, 0, 0, false, false},
                                           GemmCase{129, 256, 512, 0, 0, true, true},
                                           GemmCase{1, 128, 384, 0, 0, true, true},
                                           GemmCase{127, 128, 384, 0, 0, true, false},
                                           GemmCase{129, 128, 256, 0, 0, false, true},
                                           GemmCase{64, 72, 40, 8, 0, false, false},
                                           GemmCase{33, 64, 64, 0, 4, false, false},
                                           GemmCase{33, 64, 64, 0, 4, true, true},
                                           GemmCase{300, 1000, 1024, 0, 0, false, false},
                                           // Bias epilogue: both output types, accumulating,
                                           // autotuned (m 129), odd and padded shapes.
                                           GemmCase{1, 256, 1024, 0, 0, false, false, true},
                                           GemmCase{127, 384, 256, 0, 0, false, false, true},
                                           GemmCase{129, 512, 128, 0, 0, false, false, true},
                                           GemmCase{129, 256, 512, 0, 0, true, true, true},
                                           GemmCase{127, 128, 384, 0, 0, true, false, true},
                                           GemmCase{64, 72, 40, 8, 0, false, false, true},
                                           GemmCase{33, 64, 64, 0, 4, true, true, true},
                                           GemmCase{300, 1000, 1024, 0, 0, false, true, true}));

TEST(Gemm, CachesOnePlanPerShape) {
  RADIX_REQUIRE_GPU();
  std::mt19937 rng(1);
  auto x = random_bf16(64 * 128, rng), w = random_bf16(256 * 128, rng);
  DeviceBuffer<bf16> d_x(x), d_w(w), d_y(64 * 256);
  Gemm gemm;
  gemm.set_skinny(false);  // cuBLASLt's plans are what is counted
  for (int rep = 0; rep < 3; ++rep) {
    gemm.bf16_out(d_x.get(), 128, d_w.get(), 128, d_y.get(), 256, 64, 256, 128, false, nullptr);
    gemm.bf16_out(d_x.get(), 128, d_w.get(), 128, d_y.get(), 256, 32, 256, 128, false, nullptr);
  }
  EXPECT_EQ(gemm.cached_shapes(), 2u);
  // M = 0 is a no-op and caches nothing.
  gemm.bf16_out(d_x.get(), 128, d_w.get(), 128, d_y.get(), 256, 0, 256, 128, false, nullptr);
  EXPECT_EQ(gemm.cached_shapes(), 2u);
}

// Autotuning times the candidates once per power-of-two bucket of M; other Ms of the bucket reuse
// that algorithm (each still gets its own descriptors) and must compute the same products.
TEST(Gemm, AutotunedChoiceServesItsWholeBucket) {
  RADIX_REQUIRE_GPU();
  Gemm gemm(/*autotune=*/true);
  for (const int m : {129, 200, 256}) {
    expect_matches_reference(gemm, GemmCase{m, 512, 256, 0, 0, false, false});
  }
  EXPECT_EQ(gemm.cached_shapes(), 3u);
  EXPECT_EQ(gemm.tuned_shapes(), 1u);
  expect_matches_reference(gemm, GemmCase{257, 512, 256, 0, 0, false, false});  // next bucket
  expect_matches_reference(gemm, GemmCase{131, 512, 256, 0, 0, true, true});    // another key
  EXPECT_EQ(gemm.tuned_shapes(), 3u);
}

// Without autotune the heuristic is asked once per step of row counts (multiples of 16 up to 128,
// eighths of an octave above): every M of a step takes that choice, each with its own
// descriptors, and must compute the same products.
TEST(Gemm, HeuristicChoiceServesItsRowStep) {
  RADIX_REQUIRE_GPU();
  Gemm gemm;
  gemm.set_skinny(false);
  for (const int m : {129, 140, 144}) {  // one step: (128, 144]
    expect_matches_reference(gemm, GemmCase{m, 512, 256, 0, 0, false, false});
  }
  EXPECT_EQ(gemm.cached_shapes(), 3u);
  EXPECT_EQ(gemm.chosen_shapes(), 1u);
  expect_matches_reference(gemm, GemmCase{145, 512, 256, 0, 0, false, false});   // next step
  expect_matches_reference(gemm, GemmCase{1000, 512, 256, 0, 0, false, false});  // (960, 1024]
  expect_matches_reference(gemm, GemmCase{1024, 512, 256, 0, 0, false, false});  // same step
  EXPECT_EQ(gemm.chosen_shapes(), 3u);
  expect_matches_reference(gemm, GemmCase{7, 512, 256, 0, 0, true, true});  // another key, exact
  EXPECT_EQ(gemm.chosen_shapes(), 4u);
}

TEST(Gemm, RejectsBadShapes) {
  RADIX_REQUIRE_GPU();
  Gemm gemm;
  EXPECT_THROW(gemm.bf16_out(nullptr, 8, nullptr, 16, nullptr, 8, 4, 8, 16, false, nullptr),
               CudaError);
  const auto* misaligned = reinterpret_cast<const bf16*>(uintptr_t{1} << 20) + 1;
  EXPECT_THROW(
      gemm.bf16_out(nullptr, 16, nullptr, 16, nullptr, 8, 4, 8, 16, false, nullptr, misaligned),
      CudaError);
}

// With and without a bias are different plans of one shape; the bias pointer of each call is
// the one used (the cached descriptor must not keep the first call's).
TEST(Gemm, BiasPointerFollowsEachCall) {
  RADIX_REQUIRE_GPU();
  std::mt19937 rng(2);
  const int m = 16, n = 64, k = 32;
  auto x = random_bf16(m * k, rng), w = random_bf16(n * k, rng);
  std::vector<bf16> ones(n, to_bf16(1.0f)), twos(n, to_bf16(2.0f));
  DeviceBuffer<bf16> d_x(x), d_w(w), d_y0(m * n), d_y1(m * n), d_y2(m * n), d_b1(ones), d_b2(twos);
  Gemm gemm;
  gemm.set_skinny(false);  // cuBLASLt's cached descriptor is what is tested
  gemm.bf16_out(d_x.get(), k, d_w.get(), k, d_y0.get(), n, m, n, k, false, nullptr);
  gemm.bf16_out(d_x.get(), k, d_w.get(), k, d_y1.get(), n, m, n, k, false, nullptr, d_b1.get());
  gemm.bf16_out(d_x.get(), k, d_w.get(), k, d_y2.get(), n, m, n, k, false, nullptr, d_b2.get());
  EXPECT_EQ(gemm.cached_shapes(), 2u);
  const auto y0 = d_y0.download(), y1 = d_y1.download(), y2 = d_y2.download();
  for (int i = 0; i < m * n; ++i) {
    const float base = to_float(y0[i]);
    ASSERT_NEAR(to_float(y1[i]), base + 1.0f, bf16_tolerance(base + 1.0) + 1e-2) << i;
    ASSERT_NEAR(to_float(y2[i]), base + 2.0f, bf16_tolerance(base + 2.0) + 1e-2) << i;
  }
}

}  // namespace
}  // namespace radix::cuda::testing
