#include "backend/cuda/kernels/fill.cuh"

#include <cmath>

#include "backend/random_fill.h"
#include "gpu_test_util.h"

namespace radix::cuda::testing {
namespace {

TEST(FillRandomNormal, MatchesTheHostStreamForAnyViewShape) {
  RADIX_REQUIRE_GPU();
  const int64_t rows = 129, cols = 1001, stride = 1008;
  const uint64_t seed = 42, first = 12345;
  DeviceBuffer<float> f(rows * stride);
  DeviceBuffer<bf16> b(rows * stride);
  f.poison(), b.poison();
  RADIX_CUDA_CHECK(fill_random_normal(f.get(), rows, cols, stride, seed, 0.02f, first, nullptr));
  RADIX_CUDA_CHECK(fill_random_normal(b.get(), rows, cols, stride, seed, 0.02f, first, nullptr));
  const auto hf = f.download();
  const auto hb = b.download();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const float want = 0.02f * random_normal(seed, first + r * cols + c);
      // The device's logf/cosf may differ from the host's in the last bits.
      ASSERT_NEAR(hf[r * stride + c], want, 1e-6f + 1e-5f * std::fabs(want)) << r << "," << c;
      ASSERT_NEAR(to_float(hb[r * stride + c]), want, std::fabs(want) / 128 + 1e-6f);
    }
    for (int64_t c = cols; c < stride; ++c) ASSERT_TRUE(is_poison(hf[r * stride + c]));
  }
}

TEST(FillRandomNormal, HasTheMomentsOfANormal) {
  RADIX_REQUIRE_GPU();
  const int64_t n = 1 << 22;
  DeviceBuffer<bf16> a(n);
  RADIX_CUDA_CHECK(fill_random_normal(a.get(), 1, n, n, 7, 0.02f, 0, nullptr));
  const auto h = a.download();
  double sum = 0, sumsq = 0;
  for (const bf16 v : h) {
    const double x = to_float(v);
    ASSERT_TRUE(std::isfinite(x));
    sum += x, sumsq += x * x;
  }
  EXPECT_NEAR(sum / n, 0.0, 1e-4);
  EXPECT_NEAR(std::sqrt(sumsq / n), 0.02, 2e-4);
}

TEST(FillConstant, FillsTheViewOnly) {
  RADIX_REQUIRE_GPU();
  DeviceBuffer<int32_t> i(7 * 10);
  DeviceBuffer<bf16> b(7 * 10);
  i.poison(), b.poison();
  RADIX_CUDA_CHECK(fill_constant(i.get(), 7, 9, 10, int32_t{-5}, nullptr));
  RADIX_CUDA_CHECK(fill_constant(b.get(), 7, 9, 10, to_bf16(1.5f), nullptr));
  const auto hi = i.download();
  const auto hb = b.download();
  for (int r = 0; r < 7; ++r) {
    for (int c = 0; c < 9; ++c) {
      ASSERT_EQ(hi[r * 10 + c], -5);
      ASSERT_EQ(to_float(hb[r * 10 + c]), 1.5f);
    }
    ASSERT_EQ(hi[r * 10 + 9], -1);  // still the 0xFF poison
    ASSERT_TRUE(is_poison(hb[r * 10 + 9]));
  }
}

}  // namespace
}  // namespace radix::cuda::testing
