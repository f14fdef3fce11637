// exp(x) for fp32 in a form the compiler vectorises (no libm call): range reduction by ln 2 in two
// parts and a degree-6 polynomial, then scaling by 2^n through the exponent bits. Relative error
// below 2 ulp over the range used here (softmax and SiLU arguments); exp(-inf) = 0.
#pragma once

#include <cstdint>
#include <cstring>

namespace radix::cpu {

__attribute__((always_inline)) inline float fast_exp(float x) {
  // Below -87.3 the result is subnormal or zero; above 88.7 it overflows. Clamp, then flush.
  const bool underflow = x < -87.33654f;
  x = x > 88.72283f ? 88.72283f : x;
  x = underflow ? -87.33654f : x;
  // Round to nearest by adding and removing 1.5 * 2^23 (vectorises, unlike a rounding call).
  const float shifted = x * 1.44269504088896341f + 12582912.0f;
  const float n = shifted - 12582912.0f;
  // ln 2 split so that n * kLn2Hi is exact for |n| < 2^8.
  const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187045e-06f;
  float p = 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return underflow ? 0.0f : p * scale;
}

}  // namespace radix::cpu
