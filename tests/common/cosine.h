// Cosine similarity of two float vectors, accumulated in double: the tests' one measure of how
// close an embedding or hidden state is to its reference.
#pragma once

#include <cmath>
#include <cstddef>

namespace radix::testing {

inline double cosine(const float* a, const float* b, size_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < n; ++i) {
    ab += double(a[i]) * b[i], aa += double(a[i]) * a[i], bb += double(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

}  // namespace radix::testing
