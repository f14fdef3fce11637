// The row loop the CPU RoPE ops share: each row's rotation angles pos * inv_freq[i] as fp32
// products (as Hugging Face's fp32 outer product computes them), their cosines and sines, then the
// op's own work on the row's heads, rows spread over OpenMP threads.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace radix::cpu {

// rotate_row(row, cos_t, sin_t) for each of the n rows of qkv (row stride s); cos_t and sin_t
// hold d / 2 values. `heads` only sizes the work for the parallel-or-not choice.
template <typename RotateRow>
void rotate_rows(float* qkv, int64_t s, int64_t n, int heads, int d, const int32_t* positions,
                 const float* inv_freq, int threads, RotateRow rotate_row) {
  const int half = d / 2;
#pragma omp parallel num_threads(threads) if (n * heads * d > 16384)
  {
    std::vector<float> cos_t(half), sin_t(half);
#pragma omp for
    for (int64_t r = 0; r < n; ++r) {
      const float pos = static_cast<float>(positions[r]);
      for (int i = 0; i < half; ++i) {
        const float angle = pos * inv_freq[i];
        cos_t[i] = std::cos(angle);
        sin_t[i] = std::sin(angle);
      }
      rotate_row(qkv + r * s, cos_t.data(), sin_t.data());
    }
  }
}

}  // namespace radix::cpu
