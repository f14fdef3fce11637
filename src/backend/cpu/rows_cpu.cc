#include <algorithm>

#include "backend/cpu/cpu_kernels.h"

namespace radix::cpu {

void scale_rows(float* x, int64_t sx, int64_t n, int64_t c, float scale, int threads) {
#pragma omp parallel for num_threads(threads) if (n * c > 65536)
  for (int64_t r = 0; r < n; ++r) {
    float* row = x + r * sx;
    for (int64_t i = 0; i < c; ++i) row[i] *= scale;
  }
}

void broadcast_bias(const float* bias, float* out, int64_t so, int64_t n, int64_t m,
                    bool accumulate, int threads) {
#pragma omp parallel for num_threads(threads) if (n * m > 65536)
  for (int64_t r = 0; r < n; ++r) {
    float* row = out + r * so;
    if (accumulate) {
      for (int64_t i = 0; i < m; ++i) row[i] += bias[i];
    } else {
      std::copy(bias, bias + m, row);
    }
  }
}

}  // namespace radix::cpu
