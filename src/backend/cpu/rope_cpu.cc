#include <cmath>
#include <vector>

#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/cpu_simd.h"

namespace radix::cpu {
namespace {

// x: [d] one head, in place: rotate-half with the row's cos/sin ([d/2]).
RADIX_CPU_CLONES void rope_head(float* x, const float* cos_t, const float* sin_t, int d) {
  const int half = d / 2;
#pragma omp simd
  for (int i = 0; i < half; ++i) {
    const float a = x[i];
    const float b = x[i + half];
    x[i] = a * cos_t[i] - b * sin_t[i];
    x[i + half] = b * cos_t[i] + a * sin_t[i];
  }
}

}  // namespace

void rope(float* qkv, int64_t s, int64_t n, int hq, int hkv, int d, const int32_t* positions,
          const float* inv_freq, int threads) {
  const int half = d / 2;
#pragma omp parallel num_threads(threads) if (n * (hq + hkv) * d > 16384)
  {
    std::vector<float> cos_t(half), sin_t(half);
#pragma omp for
    for (int64_t r = 0; r < n; ++r) {
      const float pos = static_cast<float>(positions[r]);
      for (int i = 0; i < half; ++i) {
        const float angle = pos * inv_freq[i];  // fp32 product, as HF's fp32 outer product
        cos_t[i] = std::cos(angle);
        sin_t[i] = std::sin(angle);
      }
      float* row = qkv + r * s;
      for (int h = 0; h < hq + hkv; ++h) rope_head(row + h * d, cos_t.data(), sin_t.data(), d);
    }
  }
}

}  // namespace radix::cpu
