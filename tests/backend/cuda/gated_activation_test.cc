// The gated activations (SwiGLU, GeGLU with tanh-approximated GELU) against a double-precision
// scalar reference of the same formulas as transformers (silu, gelu_pytorch_tanh).
#include "backend/cuda/kernels/gated_activation.cuh"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "backend/cuda/kernels/fp8.cuh"
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

// The e4m3 form on the shapes of each of its paths: the pipelined fast path with 1, 2, 3, 6 chunks
// a thread (inter 3072, 1000 with idle threads, 12288, 17000), enough rows that every block
// cycles through its stages more than once, padded strides; and the fallback (inter 33000 too
// long; inter 1001, a stride or a pointer off the 16-byte chunk). The fast path must give the
// fallback's bytes and scales bit for bit (zero rows, NaN and infinite products included), and
// both the host reference up to fp32 noise (the device's __expf / tanhf differ in the last bits).
// act(gate) * up in fp32 as the kernel computes it, up to the device's __expf / tanhf.
float act_f32(GateActivation act, float g, float u) {
  if (act == GateActivation::kSilu) return g / (1.0f + std::exp(-g)) * u;
  const float inner = 0.7978845608028654f * (g + 0.044715f * g * g * g);
  return 0.5f * g * (1.0f + std::tanh(inner)) * u;
}

struct E4m3Case {
  int rows, inter, in_pad, out_pad, in_offset, out_offset;  // offsets in elements / bytes
  bool fast;  // the fast path takes it (else the fallback runs)
};

class GatedActivationE4m3Test
    : public ::testing::TestWithParam<std::tuple<GateActivation, E4m3Case>> {};

TEST_P(GatedActivationE4m3Test, FastPathEqualsFallbackAndHostReference) {
  RADIX_REQUIRE_GPU();
  const auto [act, c] = GetParam();
  const auto [rows, inter, in_pad, out_pad, in_offset, out_offset, fast] = c;
  const int64_t in_stride = 2 * inter + in_pad, out_stride = inter + out_pad;
  std::mt19937 rng(rows * 31 + inter);
  std::vector<bf16> gu = random_bf16(rows * in_stride + in_offset, rng, 3.0f);
  bf16* h = gu.data() + in_offset;
  // Row 1 zero; row 2 of a larger magnitude; row 3 with a NaN gate; row 4 with an infinite up
  // (its product is infinite, the scale infinite, every other code 0 and its own NaN).
  for (int col = 0; col < 2 * inter && rows > 1; ++col) h[in_stride + col] = to_bf16(0.0f);
  for (int col = 0; col < 2 * inter && rows > 2; ++col) {
    h[2 * in_stride + col] = to_bf16(to_float(h[2 * in_stride + col]) * 40.0f);
  }
  if (rows > 3) h[3 * in_stride + inter / 3] = to_bf16(NAN);
  if (rows > 4) {
    h[4 * in_stride + inter / 2] = to_bf16(1.0f);  // act(1) * inf is inf for both activations
    h[4 * in_stride + inter + inter / 2] = to_bf16(INFINITY);
  }
  DeviceBuffer<bf16> d_gu(gu);
  const size_t out_size = static_cast<size_t>(rows * out_stride + out_offset);
  DeviceBuffer<uint8_t> q_fast(out_size), q_ref(out_size);
  DeviceBuffer<float> s_fast(rows), s_ref(rows);
  RADIX_CUDA_CHECK(cudaMemset(q_fast.get(), 0x5A, out_size));
  RADIX_CUDA_CHECK(cudaMemset(q_ref.get(), 0x5A, out_size));
  s_fast.poison();
  s_ref.poison();
  const bf16* in = d_gu.get() + in_offset;
  RADIX_CUDA_CHECK(gated_activation_e4m3(act, in, in_stride, q_fast.get() + out_offset, out_stride,
                                         s_fast.get(), rows, inter, nullptr));
  RADIX_CUDA_CHECK(gated_activation_e4m3_fallback(act, in, in_stride, q_ref.get() + out_offset,
                                                  out_stride, s_ref.get(), rows, inter, nullptr));
  const std::vector<uint8_t> got = q_fast.download(), want = q_ref.download();
  const std::vector<float> gs = s_fast.download(), ws = s_ref.download();
  for (int r = 0; r < rows; ++r) {
    ASSERT_EQ(std::memcmp(&gs[r], &ws[r], 4), 0) << "scale of row " << r;
  }
  // The path the case is meant to reach is the one that ran: the fast path alone takes the case
  // (and writes the same), or refuses it.
  {
    DeviceBuffer<uint8_t> q_staged(out_size);
    DeviceBuffer<float> s_staged(rows);
    RADIX_CUDA_CHECK(cudaMemset(q_staged.get(), 0x5A, out_size));
    const cudaError_t staged =
        gated_activation_e4m3_staged(act, in, in_stride, q_staged.get() + out_offset, out_stride,
                                     s_staged.get(), rows, inter, kE4m3StageBudget, nullptr);
    ASSERT_EQ(staged, fast ? cudaSuccess : cudaErrorNotSupported) << cudaGetErrorString(staged);
    if (fast) {
      ASSERT_TRUE(q_staged.download() == got);
    }
  }
  for (size_t i = 0; i < out_size; ++i) ASSERT_EQ(got[i], want[i]) << "byte " << i;
  for (int r = 0; r < rows; ++r) {
    for (int64_t col = inter; col < out_stride; ++col) {
      ASSERT_EQ(got[out_offset + r * out_stride + col], 0x5A) << "padding written, row " << r;
    }
  }
  // The host reference: fp32 products, amax without NaNs, codes within half an e4m3 step.
  for (int r = 0; r < rows; ++r) {
    std::vector<float> p(inter);
    float amax = 0.0f;
    for (int col = 0; col < inter; ++col) {
      const float g = to_float(h[r * in_stride + col]),
                  u = to_float(h[r * in_stride + inter + col]);
      p[col] = act_f32(act, g, u);
      amax = std::max(amax, std::fabs(p[col]));
    }
    const uint8_t* q = got.data() + out_offset + r * out_stride;
    if (std::isinf(amax)) {
      ASSERT_TRUE(std::isinf(gs[r])) << "row " << r;
      continue;
    }
    ASSERT_NEAR(gs[r], amax / 448.0f, 1e-5 * amax / 448.0f + 1e-30) << "row " << r;
    if (amax == 0.0f) {
      ASSERT_EQ(gs[r], 0.0f);
    }
    const float inv = gs[r] > 0 ? 1.0f / gs[r] : 0.0f;
    for (int col = 0; col < inter; ++col) {
      const double code = e4m3_to_float(q[col]);
      if (std::isnan(p[col])) {
        ASSERT_TRUE(std::isnan(code)) << "row " << r << " col " << col;
        continue;
      }
      const double v = double(p[col]) * inv;
      // One e4m3 step is at most 2^-3 |v| (normal) or 2^-9 (subnormal): half of it, plus 1e-4
      // relative for the fp32 differences of exp / tanh, plus what a few ulps of 1 in the
      // gelu's 1 + tanh (device tanhf against the host's) make of 0.5 |g u| where that sum
      // cancels (large negative gates: a small product with a large relative error).
      const double g = to_float(h[r * in_stride + col]),
                   u = to_float(h[r * in_stride + inter + col]);
      const double half_step = std::max(std::fabs(v) / 16.0, 1.0 / 1024.0);
      const double noise = 1e-4 * std::fabs(v) + 2.4e-7 * 0.5 * std::fabs(g * u) * inv;
      ASSERT_LE(std::fabs(code - v), half_step * (1 + 1e-3) + noise)
          << "row " << r << " col " << col << " v " << v << " code " << code;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Paths, GatedActivationE4m3Test,
    ::testing::Combine(
        ::testing::Values(GateActivation::kSilu, GateActivation::kGeluTanh),
        ::testing::Values(
            // fast path
            E4m3Case{37, 3072, 0, 0, 0, 0, true}, E4m3Case{3000, 3072, 0, 0, 0, 0, true},
            E4m3Case{37, 1000, 0, 0, 0, 0, true}, E4m3Case{600, 12288, 0, 0, 0, 0, true},
            E4m3Case{7, 17000, 8, 8, 0, 0, true}, E4m3Case{1, 3072, 0, 0, 0, 0, true},
            E4m3Case{9, 1024, 16, 24, 8, 8, true},
            // fallback
            E4m3Case{3, 33000, 0, 0, 0, 0, false}, E4m3Case{7, 1001, 1, 3, 0, 0, false},
            E4m3Case{9, 1024, 4, 0, 0, 0, false}, E4m3Case{9, 1024, 0, 0, 4, 0, false},
            E4m3Case{9, 1024, 0, 0, 0, 4, false}, E4m3Case{9, 1024, 0, 2, 0, 0, false})),
    [](const auto& info) {
      const E4m3Case c = std::get<1>(info.param);
      return std::string(std::get<0>(info.param) == GateActivation::kSilu ? "silu" : "gelu_tanh") +
             "_r" + std::to_string(c.rows) + "_i" + std::to_string(c.inter) + "_p" +
             std::to_string(c.in_pad) + "_" + std::to_string(c.out_pad) + "_o" +
             std::to_string(c.in_offset) + "_" + std::to_string(c.out_offset);
    });

// The fast path with other stage budgets (two stages up to eight; the benchmark's variants) gives
// the fallback's bytes too; a shape the fast path cannot take is refused, not run another way.
TEST(GatedActivationE4m3Staged, AnyBudgetEqualsFallback) {
  RADIX_REQUIRE_GPU();
  const int rows = 700, inter = 3072;
  std::mt19937 rng(5);
  DeviceBuffer<bf16> gu(random_bf16(static_cast<size_t>(rows) * 2 * inter, rng, 3.0f));
  DeviceBuffer<uint8_t> q_ref(static_cast<size_t>(rows) * inter), q(q_ref.size());
  DeviceBuffer<float> s_ref(rows), s(rows);
  RADIX_CUDA_CHECK(gated_activation_e4m3_fallback(GateActivation::kSilu, gu.get(), 2 * inter,
                                                  q_ref.get(), inter, s_ref.get(), rows, inter,
                                                  nullptr));
  const std::vector<uint8_t> want = q_ref.download();
  const std::vector<float> want_s = s_ref.download();
  for (int budget : {1024, 16 * 1024, 48 * 1024, 200 * 1024}) {
    q.poison();
    s.poison();
    RADIX_CUDA_CHECK(gated_activation_e4m3_staged(GateActivation::kSilu, gu.get(), 2 * inter,
                                                  q.get(), inter, s.get(), rows, inter, budget,
                                                  nullptr));
    const std::vector<uint8_t> got = q.download();
    const std::vector<float> got_s = s.download();
    ASSERT_EQ(std::memcmp(got_s.data(), want_s.data(), 4 * rows), 0) << "budget " << budget;
    ASSERT_TRUE(got == want) << "budget " << budget;
  }
  EXPECT_EQ(
      gated_activation_e4m3_staged(GateActivation::kSilu, gu.get(), 2 * inter - 2, q.get(), inter,
                                   s.get(), rows, inter - 1, kE4m3StageBudget, nullptr),
      cudaErrorNotSupported);
}

TEST(GatedActivationE4m3Arguments, RejectedWithInvalidValue) {
  auto* p = reinterpret_cast<bf16*>(uintptr_t{1} << 20);
  auto* q = reinterpret_cast<uint8_t*>(uintptr_t{1} << 20);
  auto* s = reinterpret_cast<float*>(uintptr_t{1} << 20);
  const auto act = GateActivation::kSilu;
  EXPECT_EQ(gated_activation_e4m3(act, p, 10, q, 5, s, 1, 6, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(gated_activation_e4m3(act, p, 12, q, 5, s, 1, 6, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(gated_activation_e4m3(act, p, 12, q, 6, nullptr, 1, 6, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(gated_activation_e4m3(static_cast<GateActivation>(7), p, 16, q, 8, s, 1, 8, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(gated_activation_e4m3_fallback(act, p, 10, q, 5, s, 1, 6, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(gated_activation_e4m3(act, p, 12, q, 6, s, 0, 6, nullptr), cudaSuccess);
}

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
