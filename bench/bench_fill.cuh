// Deterministic device-side fill values for the CUDA micro-benchmarks: a hash of the element index
// and a seed, so every run times the same data without a host-side generator or an upload.
#pragma once

#include <cstdint>

namespace radix::bench {

// Roughly uniform in [-0.5, 0.5), from element i and the seed.
__device__ __forceinline__ float hashed_uniform(int64_t i, uint32_t seed) {
  uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed;
  h ^= h >> 15;
  h *= 2246822519u;
  h ^= h >> 13;
  return static_cast<float>(h & 0xffff) / 65536.0f - 0.5f;
}

}  // namespace radix::bench
