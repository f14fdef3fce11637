#include <cmath>
#include <vector>

#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/cpu_simd.h"
#include "backend/cpu/rope_rows.h"

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
  rotate_rows(qkv, s, n, hq + hkv, d, positions, inv_freq, threads,
              [&](float* row, const float* cos_t, const float* sin_t) {
                for (int h = 0; h < hq + hkv; ++h) rope_head(row + h * d, cos_t, sin_t, d);
              });
}

}  // namespace radix::cpu
