#include <cmath>
#include <vector>

#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/cpu_simd.h"
#include "backend/cpu/rope_rows.h"

namespace radix::cpu {
namespace {

// x: [d] one head, in place: RMSNorm with w, then rotate-half with the row's cos/sin ([d/2]).
RADIX_CPU_CLONES void norm_rope_head(float* x, const float* w, const float* cos_t,
                                     const float* sin_t, int d, float eps) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int i = 0; i < d; ++i) sum += x[i] * x[i];
  const float inv = 1.0f / std::sqrt(sum / static_cast<float>(d) + eps);
  const int half = d / 2;
#pragma omp simd
  for (int i = 0; i < half; ++i) {
    const float a = w[i] * (x[i] * inv);
    const float b = w[i + half] * (x[i + half] * inv);
    x[i] = a * cos_t[i] - b * sin_t[i];
    x[i + half] = b * cos_t[i] + a * sin_t[i];
  }
}

}  // namespace

void qk_norm_rope(float* qkv, int64_t s, int64_t n, int hq, int hkv, int d, const float* qw,
                  const float* kw, const int32_t* positions, float eps, float theta, int threads) {
  const int half = d / 2;
  // inv_freq as Hugging Face computes it, in fp32: 1 / theta^(float(2i) / d).
  std::vector<float> inv_freq(half);
  for (int i = 0; i < half; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(d);
    inv_freq[i] = 1.0f / std::pow(static_cast<float>(theta), exponent);
  }
  rotate_rows(qkv, s, n, hq + hkv, d, positions, inv_freq.data(), threads,
              [&](float* row, const float* cos_t, const float* sin_t) {
                for (int h = 0; h < hq; ++h) norm_rope_head(row + h * d, qw, cos_t, sin_t, d, eps);
                for (int h = 0; h < hkv; ++h) {
                  norm_rope_head(row + (hq + h) * d, kw, cos_t, sin_t, d, eps);
                }
              });
}

}  // namespace radix::cpu
