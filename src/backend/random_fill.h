// Counter-based random numbers for weights: element i of a tensor filled from `seed` is a pure
// function of (seed, i), so any backend can fill in parallel, in any order, on the host or the
// device, and get the same values (up to the last bits of log/cos on the device).
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define RADIX_HOST_DEVICE __host__ __device__
#else
#define RADIX_HOST_DEVICE
#endif

namespace radix {

// splitmix64 finaliser: a bijective mix of 64 bits.
RADIX_HOST_DEVICE inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// A standard normal value for element i of the stream `seed` (Box-Muller on two 24-bit uniforms).
RADIX_HOST_DEVICE inline float random_normal(uint64_t seed, uint64_t i) {
  const uint64_t bits = mix64(mix64(seed) ^ i);
  // u1 in (0, 1] so the log is finite; u2 in [0, 1).
  const float u1 = (static_cast<float>(bits >> 40) + 1.0f) * (1.0f / 16777216.0f);
  const float u2 = static_cast<float>((bits >> 16) & 0xFFFFFFull) * (1.0f / 16777216.0f);
  return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530717958647692f * u2);
}

}  // namespace radix
