#include <cmath>

#include "backend/cpu/cpu_kernels.h"

namespace radix::cpu {

void swiglu(const float* gate_up, int64_t sg, float* out, int64_t so, int64_t n, int64_t i,
            int threads) {
#pragma omp parallel for num_threads(threads) if (n * i > 16384)
  for (int64_t r = 0; r < n; ++r) {
    const float* gate = gate_up + r * sg;
    const float* up = gate + i;
    float* o = out + r * so;
    for (int64_t c = 0; c < i; ++c) o[c] = gate[c] / (1.0f + std::exp(-gate[c])) * up[c];
  }
}

}  // namespace radix::cpu
