// Test-only: another WeightSource's tensors rounded to bf16 and widened back to fp32, so that the
// CPU backend (fp32) runs on exactly the weight values the CUDA backend stores (it keeps every
// weight in bf16, converted with __float2bfloat16: round to nearest, ties to even). The CPU forward
// on these weights separates the two error sources of a bf16 GPU run: the weights' rounding (a
// property of the checkpoint, measured against transformers' fp32 outputs) and bf16 activations
// (the CUDA forward against this one). docs/numerics.md has the numbers.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "model/weight_source.h"

namespace radix::testing {

// Round to nearest even at bf16's 8-bit mantissa; NaN stays NaN, overflow goes to inf, as
// __float2bfloat16 does.
inline float round_to_bf16(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  if ((bits & 0x7F800000u) == 0x7F800000u && (bits & 0x007FFFFFu) != 0) return v;  // NaN
  bits += 0x7FFFu + ((bits >> 16) & 1u);
  bits &= 0xFFFF0000u;
  std::memcpy(&v, &bits, 4);
  return v;
}

class Bf16RoundedWeights final : public WeightSource {
 public:
  explicit Bf16RoundedWeights(const WeightSource& inner) : inner_(inner) {}
  bool contains(const std::string& name) const override { return inner_.contains(name); }
  std::array<int64_t, 2> shape(const std::string& name) const override {
    return inner_.shape(name);
  }
  void write(const std::string& name, Backend& backend, const Tensor& dst) const override {
    inner_.write(name, backend, dst);
    round_in_place(backend, dst);
  }
  void write_rows(const std::string& name, std::span<const int64_t> rows, Backend& backend,
                  const Tensor& dst) const override {
    inner_.write_rows(name, rows, backend, dst);
    round_in_place(backend, dst);
  }

 private:
  // dst may be a row or column slice of a fused weight: download/upload follow its stride.
  static void round_in_place(Backend& backend, const Tensor& dst) {
    if (dst.dtype != DType::kF32) return;  // a bf16 backend rounded it on upload already
    std::vector<float> host(static_cast<size_t>(dst.numel()));
    backend.download(dst, host.data());
    for (float& v : host) v = round_to_bf16(v);
    backend.upload(dst, host.data(), DType::kF32);
  }
  const WeightSource& inner_;
};

}  // namespace radix::testing
