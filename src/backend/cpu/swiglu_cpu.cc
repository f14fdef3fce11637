#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/cpu_simd.h"
#include "backend/cpu/fast_exp.h"

namespace radix::cpu {
namespace {

RADIX_CPU_CLONES void swiglu_row(const float* gate, const float* up, float* out, int64_t i) {
#pragma omp simd
  for (int64_t c = 0; c < i; ++c) out[c] = gate[c] / (1.0f + fast_exp(-gate[c])) * up[c];
}

}  // namespace

void swiglu(const float* gate_up, int64_t sg, float* out, int64_t so, int64_t n, int64_t i,
            int threads) {
#pragma omp parallel for num_threads(threads) if (n * i > 16384)
  for (int64_t r = 0; r < n; ++r)
    swiglu_row(gate_up + r * sg, gate_up + r * sg + i, out + r * so, i);
}

}  // namespace radix::cpu
