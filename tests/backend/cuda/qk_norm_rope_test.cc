#include "backend/cuda/kernels/qk_norm_rope.cuh"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <tuple>
#include <utility>
#include <vector>

#include "backend/cuda/kernels/qk_norm_rope_paths.cuh"
#include "gpu_test_util.h"

namespace radix::cuda::testing {
namespace {

struct RopeCase {
  int rows, hq, hkv, head_dim, extra_cols;  // extra_cols: v and padding, left untouched
  int base_offset = 0;  // elements qkv starts past a 16-byte boundary (nonzero: the fallback)
};

// Which entry point a case runs: qk_norm_rope() (the 16-byte path where the row stride and the
// pointers allow it, else the fallback), or one of its kernels alone (the 16-byte one with one or
// two rows a block).
enum class Entry { kPublic, kVectorized, kVectorized2Rows, kFallback };

cudaError_t call(Entry e, bf16* qkv, int64_t stride, const int32_t* pos, const bf16* qw,
                 const bf16* kw, int rows, int hq, int hkv, int d, float theta, float eps) {
  switch (e) {
    case Entry::kVectorized:
      return detail::qk_norm_rope_vectorized(qkv, stride, pos, qw, kw, rows, hq, hkv, d, theta, eps,
                                             nullptr, 1);
    case Entry::kVectorized2Rows:
      return detail::qk_norm_rope_vectorized(qkv, stride, pos, qw, kw, rows, hq, hkv, d, theta, eps,
                                             nullptr, 2);
    case Entry::kFallback:
      return detail::qk_norm_rope_fallback(qkv, stride, pos, qw, kw, rows, hq, hkv, d, theta, eps,
                                           nullptr);
    default:
      return qk_norm_rope(qkv, stride, pos, qw, kw, rows, hq, hkv, d, theta, eps, nullptr);
  }
}

// Whether the 16-byte path can take the case (device allocations are 256-byte aligned).
bool vectorizable(const RopeCase& c) {
  const int64_t stride = static_cast<int64_t>(c.hq + c.hkv) * c.head_dim + c.extra_cols;
  return stride % 8 == 0 && c.base_offset % 8 == 0;
}

struct Inputs {
  int64_t stride;
  std::vector<bf16> qkv, qw, kw;
  std::vector<int32_t> pos;
};

Inputs make_inputs(const RopeCase& c) {
  Inputs in;
  in.stride = static_cast<int64_t>(c.hq + c.hkv) * c.head_dim + c.extra_cols;
  std::mt19937 rng(c.rows * 31 + c.hq * 7 + c.head_dim + c.extra_cols);
  in.qkv = random_bf16(c.rows * in.stride, rng, 2.0f);
  in.qw = random_bf16(c.head_dim, rng);
  in.kw = random_bf16(c.head_dim, rng);
  in.pos.resize(c.rows);
  std::uniform_int_distribution<int> pd(0, 4095);
  for (auto& p : in.pos) p = pd(rng);
  if (c.rows > 1) in.pos[1] = 0;
  return in;
}

// Runs one entry on the case's inputs and returns the qkv rows it leaves (or the error, with an
// empty vector).
std::pair<cudaError_t, std::vector<bf16>> run_entry(Entry e, const RopeCase& c, const Inputs& in,
                                                    float theta, float eps) {
  std::vector<bf16> padded(c.base_offset + in.qkv.size());
  std::copy(in.qkv.begin(), in.qkv.end(), padded.begin() + c.base_offset);
  DeviceBuffer<bf16> d_qkv(padded), d_qw(in.qw), d_kw(in.kw);
  DeviceBuffer<int32_t> d_pos(in.pos);
  const cudaError_t err = call(e, d_qkv.get() + c.base_offset, in.stride, d_pos.get(), d_qw.get(),
                               d_kw.get(), c.rows, c.hq, c.hkv, c.head_dim, theta, eps);
  if (err != cudaSuccess) return {err, {}};
  const auto out = d_qkv.download();
  return {cudaSuccess, std::vector<bf16>(out.begin() + c.base_offset, out.end())};
}

std::vector<RopeCase> rope_cases() {
  return {RopeCase{1, 16, 8, 128, 8 * 128}, RopeCase{127, 16, 8, 128, 8 * 128},
          RopeCase{129, 32, 8, 128, 8 * 128}, RopeCase{17, 4, 2, 64, 2 * 64 + 8},
          RopeCase{9, 2, 1, 256, 256}, RopeCase{33, 3, 3, 128, 0},
          // head_dim 64 and 256 with Qwen3-like GQA head counts (4, 8 and 16 lanes a half).
          RopeCase{33, 16, 8, 64, 8 * 64}, RopeCase{7, 32, 8, 64, 0}, RopeCase{11, 16, 8, 256, 0},
          RopeCase{5, 7, 1, 256, 8},
          // Rows of more than 1,024 16-byte slots: two blocks a row (Qwen3-32B's 64 + 8 heads;
          // 65 + 8 splits 37 / 36; 32 + 8 heads of 256 split 20 / 20).
          RopeCase{9, 64, 8, 128, 8 * 128}, RopeCase{3, 65, 8, 128, 0},
          RopeCase{4, 32, 8, 256, 8 * 256},
          // Odd row strides: rows not aligned for the vector accesses (the fallback).
          RopeCase{5, 2, 1, 128, 1}, RopeCase{6, 2, 1, 256, 3}, RopeCase{13, 16, 8, 64, 5},
          RopeCase{7, 32, 8, 128, 3},
          // An aligned stride on a base 2 bytes past a 16-byte boundary (the fallback).
          RopeCase{9, 16, 8, 128, 8 * 128, 1}};
}

class QkNormRopeTest : public ::testing::TestWithParam<std::tuple<RopeCase, Entry>> {};

TEST_P(QkNormRopeTest, MatchesScalarReference) {
  RADIX_REQUIRE_GPU();
  const auto [c, entry] = GetParam();
  const auto [rows, hq, hkv, d, extra, offset] = c;
  const float theta = 1e6f, eps = 1e-6f;
  const Inputs in = make_inputs(c);
  const int64_t stride = in.stride;
  const auto [err, out] = run_entry(entry, c, in, theta, eps);
  if ((entry == Entry::kVectorized || entry == Entry::kVectorized2Rows) && !vectorizable(c)) {
    // The 16-byte path refuses, launching nothing; qk_norm_rope() takes the fallback here.
    EXPECT_EQ(err, cudaErrorNotSupported);
    return;
  }
  RADIX_CUDA_CHECK(err);

  const auto& qkv = in.qkv;
  const int half = d / 2;
  for (int r = 0; r < rows; ++r) {
    for (int h = 0; h < hq + hkv; ++h) {
      const bf16* x = &qkv[r * stride + h * d];
      const bf16* w = h < hq ? in.qw.data() : in.kw.data();
      double ss = 0;
      for (int i = 0; i < d; ++i) ss += double(to_float(x[i])) * to_float(x[i]);
      const double inv = 1.0 / std::sqrt(ss / d + eps);
      for (int j = 0; j < half; ++j) {
        const double a = to_float(x[j]) * inv * to_float(w[j]);
        const double b = to_float(x[half + j]) * inv * to_float(w[half + j]);
        // The kernel's angle is float32, like the Hugging Face reference's.
        const float inv_freq = 1.0f / std::pow(theta, static_cast<float>(2 * j) / d);
        const double angle = static_cast<float>(in.pos[r]) * inv_freq;
        const double ref_lo = a * std::cos(angle) - b * std::sin(angle);
        const double ref_hi = b * std::cos(angle) + a * std::sin(angle);
        const float got_lo = to_float(out[r * stride + h * d + j]);
        const float got_hi = to_float(out[r * stride + h * d + half + j]);
        ASSERT_NEAR(got_lo, ref_lo, bf16_tolerance(ref_lo) + 2e-3) << r << " h" << h << " j" << j;
        ASSERT_NEAR(got_hi, ref_hi, bf16_tolerance(ref_hi) + 2e-3) << r << " h" << h << " j" << j;
      }
    }
    // v heads and padding columns are not touched.
    for (int64_t col = static_cast<int64_t>(hq + hkv) * d; col < stride; ++col) {
      ASSERT_EQ(to_float(out[r * stride + col]), to_float(qkv[r * stride + col]));
    }
  }
}

// qk_norm_rope() runs the kernel it should (bit for bit the same output; the 16-byte kernel's too
// with two rows a block), and the two kernels agree to one bf16 step
// (detail::qk_norm_rope_paths_agree) where both can run.
class QkNormRopePathsTest : public ::testing::TestWithParam<RopeCase> {};

TEST_P(QkNormRopePathsTest, PublicRunsItsKernelAndPathsAgree) {
  RADIX_REQUIRE_GPU();
  const RopeCase c = GetParam();
  const float theta = 1e6f, eps = 1e-6f;
  const Inputs in = make_inputs(c);
  const auto [err_pub, pub] = run_entry(Entry::kPublic, c, in, theta, eps);
  const auto [err_fb, fb] = run_entry(Entry::kFallback, c, in, theta, eps);
  RADIX_CUDA_CHECK(err_pub);
  RADIX_CUDA_CHECK(err_fb);
  if (!vectorizable(c)) {
    ASSERT_EQ(pub.size(), fb.size());
    EXPECT_EQ(std::memcmp(pub.data(), fb.data(), pub.size() * sizeof(bf16)), 0);
    return;
  }
  const auto [err_vec, vec] = run_entry(Entry::kVectorized, c, in, theta, eps);
  const auto [err_vec2, vec2] = run_entry(Entry::kVectorized2Rows, c, in, theta, eps);
  RADIX_CUDA_CHECK(err_vec);
  RADIX_CUDA_CHECK(err_vec2);
  ASSERT_EQ(vec.size(), pub.size());
  ASSERT_EQ(vec2.size(), pub.size());
  size_t differ = 0;
  for (size_t i = 0; i < vec.size(); ++i) {
    // One row a block or two: the same arithmetic per element.
    ASSERT_EQ(std::memcmp(&vec[i], &pub[i], sizeof(bf16)), 0) << "element " << i;
    ASSERT_EQ(std::memcmp(&vec2[i], &pub[i], sizeof(bf16)), 0) << "element " << i;
    const float a = to_float(vec[i]), b = to_float(fb[i]);
    ASSERT_TRUE(detail::qk_norm_rope_paths_agree(a, b)) << "element " << i << ": " << a << " " << b;
    differ += a != b;
  }
  // How often the two summation orders round differently (informational).
  RecordProperty("elements_differing", static_cast<int>(differ));
}

INSTANTIATE_TEST_SUITE_P(Shapes, QkNormRopeTest,
                         ::testing::Combine(::testing::ValuesIn(rope_cases()),
                                            ::testing::Values(Entry::kPublic, Entry::kVectorized,
                                                              Entry::kVectorized2Rows,
                                                              Entry::kFallback)));
INSTANTIATE_TEST_SUITE_P(Shapes, QkNormRopePathsTest, ::testing::ValuesIn(rope_cases()));

TEST(QkNormRope, RejectsUnsupportedHeadDim) {
  EXPECT_EQ(
      qk_norm_rope(nullptr, 96 * 3, nullptr, nullptr, nullptr, 4, 2, 1, 96, 1e6f, 1e-6f, nullptr),
      cudaErrorInvalidValue);
  EXPECT_EQ(
      qk_norm_rope(nullptr, 100, nullptr, nullptr, nullptr, 4, 2, 1, 128, 1e6f, 1e-6f, nullptr),
      cudaErrorInvalidValue);
  // The kernels alone check the same arguments first.
  EXPECT_EQ(detail::qk_norm_rope_vectorized(nullptr, 96 * 3, nullptr, nullptr, nullptr, 4, 2, 1, 96,
                                            1e6f, 1e-6f, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(detail::qk_norm_rope_vectorized(nullptr, 128 * 3, nullptr, nullptr, nullptr, 4, 2, 1,
                                            128, 1e6f, 1e-6f, nullptr, 3),
            cudaErrorInvalidValue);
  EXPECT_EQ(detail::qk_norm_rope_fallback(nullptr, 100, nullptr, nullptr, nullptr, 4, 2, 1, 128,
                                          1e6f, 1e-6f, nullptr),
            cudaErrorInvalidValue);
}

}  // namespace
}  // namespace radix::cuda::testing
