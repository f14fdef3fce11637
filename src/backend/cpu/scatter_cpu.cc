#include <cstring>
#include <string>

#include "backend/cpu/cpu_kernels.h"

namespace radix::cpu {

void scatter_rows(const void* src, int64_t ss, const int32_t* index, int64_t n, void* out,
                  int64_t so, int64_t out_rows, int64_t cols, int threads) {
  for (int64_t r = 0; r < n; ++r) {
    if (index[r] >= out_rows) {
      throw BackendError("scatter_rows: index[" + std::to_string(r) +
                         "] = " + std::to_string(index[r]) + " but the output has " +
                         std::to_string(out_rows) + " rows");
    }
  }
  const auto* in = static_cast<const char*>(src);
  auto* o = static_cast<char*>(out);
  const size_t row_bytes = static_cast<size_t>(cols) * 4;
#pragma omp parallel for num_threads(threads) if (n * cols > 65536)
  for (int64_t r = 0; r < n; ++r) {
    if (index[r] >= 0) std::memcpy(o + index[r] * so * 4, in + r * ss * 4, row_bytes);
  }
}

}  // namespace radix::cpu
