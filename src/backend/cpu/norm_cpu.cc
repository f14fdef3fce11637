#include <cmath>

#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/cpu_simd.h"

namespace radix::cpu {
namespace {

RADIX_CPU_CLONES void norm_row(const float* x, const float* w, float* out, int64_t h, float eps,
                               bool plus_one) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < h; ++i) sum += x[i] * x[i];
  const float inv = 1.0f / std::sqrt(sum / static_cast<float>(h) + eps);
  if (plus_one) {
#pragma omp simd
    for (int64_t i = 0; i < h; ++i) out[i] = (x[i] * inv) * (1.0f + w[i]);
  } else {
#pragma omp simd
    for (int64_t i = 0; i < h; ++i) out[i] = w[i] * (x[i] * inv);
  }
}

RADIX_CPU_CLONES void add_row(float* residual, const float* delta, int64_t h) {
#pragma omp simd
  for (int64_t i = 0; i < h; ++i) residual[i] += delta[i];
}

}  // namespace

void rms_norm(const float* x, int64_t sx, const float* w, float* out, int64_t so, int64_t n,
              int64_t h, float eps, bool plus_one, int threads) {
#pragma omp parallel for num_threads(threads) if (n * h > 16384)
  for (int64_t r = 0; r < n; ++r) norm_row(x + r * sx, w, out + r * so, h, eps, plus_one);
}

void add_rms_norm(float* residual, int64_t sr, const float* delta, int64_t sd, const float* w,
                  float* normed, int64_t sn, int64_t n, int64_t h, float eps, bool plus_one,
                  int threads) {
#pragma omp parallel for num_threads(threads) if (n * h > 16384)
  for (int64_t r = 0; r < n; ++r) {
    add_row(residual + r * sr, delta + r * sd, h);
    norm_row(residual + r * sr, w, normed + r * sn, h, eps, plus_one);
  }
}

}  // namespace radix::cpu
