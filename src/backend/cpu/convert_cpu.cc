#include <cstring>

#include "backend/cpu/cpu_kernels.h"

namespace radix::cpu {
namespace {

float bf16_to_f32(uint16_t v) {
  const uint32_t bits = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24, exact in fp32.
    float f = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
    std::memcpy(&bits, &f, 4);
    bits |= sign;
  } else if (exponent == 31) {
    bits = sign | 0x7f800000u | (mantissa << 13);  // inf or nan
  } else {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace

void convert_to_f32(const void* src, DType src_dtype, float* dst, int64_t count) {
  const auto* bytes = static_cast<const unsigned char*>(src);
  switch (src_dtype) {
    case DType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(count) * 4);
      return;
    case DType::kBF16:
      for (int64_t i = 0; i < count; ++i) {
        uint16_t v;  // memcpy: safetensors data need not be 2-byte aligned
        std::memcpy(&v, bytes + 2 * i, 2);
        dst[i] = bf16_to_f32(v);
      }
      return;
    case DType::kF16:
      for (int64_t i = 0; i < count; ++i) {
        uint16_t v;
        std::memcpy(&v, bytes + 2 * i, 2);
        dst[i] = f16_to_f32(v);
      }
      return;
    case DType::kI32:
    case DType::kF8E4M3:
      break;
  }
  throw BackendError(std::string("convert_to_f32: cannot convert ") + dtype_name(src_dtype) +
                     " to f32");
}

}  // namespace radix::cpu
