#include <cmath>

#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/cpu_simd.h"
#include "backend/cpu/fast_exp.h"

namespace radix::cpu {
namespace {

RADIX_CPU_CLONES void swiglu_row(const float* gate, const float* up, float* out, int64_t i) {
#pragma omp simd
  for (int64_t c = 0; c < i; ++c) out[c] = gate[c] / (1.0f + fast_exp(-gate[c])) * up[c];
}

// PyTorch's gelu(approximate="tanh"): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
void geglu_tanh_row(const float* gate, const float* up, float* out, int64_t i) {
  constexpr float kBeta = 0.7978845608028654f;  // sqrt(2 / pi)
  constexpr float kKappa = 0.044715f;
  for (int64_t c = 0; c < i; ++c) {
    const float x = gate[c];
    const float inner = kBeta * (x + kKappa * x * x * x);
    out[c] = 0.5f * x * (1.0f + std::tanh(inner)) * up[c];
  }
}

}  // namespace

void gated_activation(const float* gate_up, int64_t sg, Activation act, float* out, int64_t so,
                      int64_t n, int64_t i, int threads) {
#pragma omp parallel for num_threads(threads) if (n * i > 16384)
  for (int64_t r = 0; r < n; ++r) {
    const float* gate = gate_up + r * sg;
    if (act == Activation::kSiLU) {
      swiglu_row(gate, gate + i, out + r * so, i);
    } else {
      geglu_tanh_row(gate, gate + i, out + r * so, i);
    }
  }
}

}  // namespace radix::cpu
