#include <cstring>
#include <string>

#include "backend/cpu/cpu_kernels.h"

namespace radix::cpu {

void gather_rows(const void* src, int64_t ss, int64_t src_rows, const int32_t* index, void* out,
                 int64_t so, int64_t n, int64_t cols, int threads) {
  for (int64_t r = 0; r < n; ++r) {
    if (index[r] >= src_rows) {
      throw BackendError("gather_rows: index[" + std::to_string(r) +
                         "] = " + std::to_string(index[r]) + " but the source has " +
                         std::to_string(src_rows) + " rows");
    }
  }
  const auto* in = static_cast<const char*>(src);
  auto* o = static_cast<char*>(out);
  const size_t row_bytes = static_cast<size_t>(cols) * 4;
#pragma omp parallel for num_threads(threads) if (n * cols > 65536)
  for (int64_t r = 0; r < n; ++r) {
    char* dst = o + r * so * 4;
    if (index[r] < 0) {
      std::memset(dst, 0, row_bytes);
    } else {
      std::memcpy(dst, in + index[r] * ss * 4, row_bytes);
    }
  }
}

}  // namespace radix::cpu
