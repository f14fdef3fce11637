#include "backend/cuda/kernels/small_linear.cuh"

#include <cmath>

#include "gpu_test_util.h"

namespace radix::cuda::testing {
namespace {

template <typename TX, typename TO>
void check_small_linear(int n, int m, int k, bool accumulate, bool with_bias = false) {
  std::mt19937 rng(n * 7 + m * 3 + k);
  auto x16 = random_bf16(static_cast<size_t>(n) * k, rng);
  std::vector<TX> x(x16.size());
  for (size_t i = 0; i < x.size(); ++i) x[i] = TX(to_float(x16[i]));
  auto w = random_bf16(static_cast<size_t>(m) * k, rng, 0.02f);
  auto y0 = random_bf16(static_cast<size_t>(n) * m, rng);
  std::vector<TO> y(y0.size());
  for (size_t i = 0; i < y.size(); ++i) y[i] = TO(to_float(y0[i]));
  DeviceBuffer<TX> d_x(x);
  DeviceBuffer<bf16> d_w(w);
  auto bias = random_bf16(m, rng);
  DeviceBuffer<TO> d_y(y);
  DeviceBuffer<bf16> d_bias(bias);
  if (!accumulate) d_y.poison();
  RADIX_CUDA_CHECK(small_linear(d_x.get(), k, d_w.get(), k, d_y.get(), m, n, m, k, accumulate,
                                nullptr, with_bias ? d_bias.get() : nullptr));
  const auto out = d_y.download();
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < m; ++j) {
      double ref =
          (accumulate ? to_float(y0[i * m + j]) : 0.0) + (with_bias ? to_float(bias[j]) : 0.0);
      double mag = std::fabs(ref);
      for (int c = 0; c < k; ++c) {
        const double t = double(to_float(x16[i * k + c])) * to_float(w[j * k + c]);
        ref += t;
        mag += std::fabs(t);
      }
      const double tol = (sizeof(TO) == 2 ? std::fabs(ref) / 128 : 0.0) + 1e-5 * mag + 1e-7;
      ASSERT_NEAR(static_cast<float>(out[i * m + j]), ref, tol) << i << "," << j;
    }
  }
}

TEST(SmallLinear, RerankerHeadShapes) {
  RADIX_REQUIRE_GPU();
  check_small_linear<bf16, float>(1, 2, 1024, false);
  check_small_linear<bf16, float>(129, 2, 4096, false);
  check_small_linear<bf16, float>(127, 3, 1001, true);
  check_small_linear<bf16, bf16>(40, 8, 1024, false);
  check_small_linear<bf16, bf16>(33, 5, 1000, true);
  check_small_linear<float, float>(17, 2, 1024, false);
  check_small_linear<float, bf16>(17, 2, 1003, true);
}

TEST(SmallLinear, WithBias) {
  RADIX_REQUIRE_GPU();
  check_small_linear<bf16, float>(129, 2, 4096, false, true);
  check_small_linear<bf16, float>(127, 3, 1001, true, true);
  check_small_linear<bf16, bf16>(33, 5, 1000, true, true);
  check_small_linear<float, bf16>(17, 2, 1003, false, true);
}

}  // namespace
}  // namespace radix::cuda::testing
