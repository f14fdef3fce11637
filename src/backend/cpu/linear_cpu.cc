#include <cblas.h>

#include <algorithm>

#include "backend/cpu/cpu_kernels.h"

namespace radix::cpu {

void linear(const float* x, int64_t sx, const float* w, int64_t sw, float* out, int64_t so,
            int64_t n, int64_t m, int64_t k, bool accumulate, int threads) {
  if (n == 0 || m == 0) return;
  const float beta = accumulate ? 1.0f : 0.0f;
  if (k == 0) {
    if (!accumulate) {
      for (int64_t r = 0; r < n; ++r) std::fill(out + r * so, out + r * so + m, 0.0f);
    }
    return;
  }
  auto gemm = [&](int64_t r0, int64_t rows, int64_t c0, int64_t cols) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(rows),
                static_cast<blasint>(cols), static_cast<blasint>(k), 1.0f, x + r0 * sx,
                static_cast<blasint>(sx), w + c0 * sw, static_cast<blasint>(sw), beta,
                out + r0 * so + c0, static_cast<blasint>(so));
  };
  const double flops =
      2.0 * static_cast<double>(n) * static_cast<double>(m) * static_cast<double>(k);
  const int parts = flops < 2e6 ? 1 : threads;
  if (parts == 1) {
    gemm(0, n, 0, m);
    return;
  }
  // Split the larger side into `parts` blocks, in multiples of 16 to keep the kernels' tiles whole.
  const bool by_rows = n >= m || n >= 64 * parts;
  const int64_t extent = by_rows ? n : m;
  const int64_t block = (extent + parts - 1) / parts;
  const int64_t aligned = std::max<int64_t>(16, (block + 15) / 16 * 16);
#pragma omp parallel for num_threads(parts) schedule(static, 1)
  for (int p = 0; p < parts; ++p) {
    const int64_t begin = p * aligned;
    if (begin >= extent) continue;
    const int64_t len = std::min(aligned, extent - begin);
    if (by_rows) {
      gemm(begin, len, 0, m);
    } else {
      gemm(0, n, begin, len);
    }
  }
}

}  // namespace radix::cpu
