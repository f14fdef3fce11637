// Weights defined by an exact integer formula, so tools/make_fixtures.py (numpy) and these tests
// produce bit-identical fp32 tensors and only reference outputs need to be committed.
//
//   h = mix64(mix64(fnv1a64(name)) ^ i)       (i: the element's flat index; name without "model.")
//   norm weights (names ending in "norm.weight"): 1 + ((h >> 56) - 128) * 2^-10
//   embed_tokens.weight:                       ((h >> 40) - 2^23) * 2^-23    in [-1, 1)
//   every other matrix:                        ((h >> 40) - 2^23) * 2^-27    in [-1/16, 1/16)
// Every value is exactly representable in fp32 (and in bf16 it is not: tests stay in fp32).
#pragma once

#include <cmath>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/random_fill.h"
#include "model/decoder_weights.h"
#include "model/random_weights.h"
#include "model/weight_source.h"

namespace radix::testing {

inline bool is_norm_weight(const std::string& name) {
  return name.size() >= 11 && name.compare(name.size() - 11, 11, "norm.weight") == 0;
}

inline float formula_value(const std::string& name, uint64_t i, uint64_t seed) {
  const uint64_t h = mix64(seed ^ i);
  if (is_norm_weight(name)) {
    return 1.0f + static_cast<float>(static_cast<int64_t>(h >> 56) - 128) * (1.0f / 1024.0f);
  }
  const float k = static_cast<float>(static_cast<int64_t>(h >> 40) - (int64_t{1} << 23));
  return name == "embed_tokens.weight" ? std::ldexp(k, -23) : std::ldexp(k, -27);
}

inline uint64_t formula_seed(const std::string& name) { return mix64(fnv1a64(name)); }

inline float formula_value(const std::string& name, uint64_t i) {
  return formula_value(name, i, formula_seed(name));
}

inline std::vector<float> formula_tensor(const std::string& name, int64_t rows, int64_t cols) {
  std::vector<float> out(static_cast<size_t>(rows * cols));
  const uint64_t seed = formula_seed(name);
  for (size_t i = 0; i < out.size(); ++i) out[i] = formula_value(name, i, seed);
  return out;
}

class FormulaWeights final : public WeightSource {
 public:
  explicit FormulaWeights(const Qwen3Config& config, bool with_lm_head = false) {
    for (const ExpectedTensor& t : expected_decoder_tensors(config)) {
      if (t.name == "lm_head.weight" && !with_lm_head && config.tie_word_embeddings) continue;
      shapes_[t.name] = t.shape;
    }
  }
  bool contains(const std::string& name) const override { return shapes_.count(name) > 0; }
  std::array<int64_t, 2> shape(const std::string& name) const override {
    const auto it = shapes_.find(name);
    if (it == shapes_.end()) throw std::runtime_error("formula weights: no '" + name + "'");
    return it->second;
  }
  void write(const std::string& name, Backend& backend, const Tensor& dst) const override {
    const auto s = shape(name);
    const std::vector<float> v = formula_tensor(name, s[0], s[1]);
    backend.upload(dst, v.data(), DType::kF32);
  }
  void write_rows(const std::string& name, std::span<const int64_t> rows, Backend& backend,
                  const Tensor& dst) const override {
    const auto s = shape(name);
    std::vector<float> v(static_cast<size_t>(s[1]));
    for (size_t r = 0; r < rows.size(); ++r) {
      for (int64_t c = 0; c < s[1]; ++c) v[c] = formula_value(name, rows[r] * s[1] + c);
      backend.upload(dst.row_slice(static_cast<int64_t>(r), 1), v.data(), DType::kF32);
    }
  }

 private:
  std::map<std::string, std::array<int64_t, 2>> shapes_;
};

}  // namespace radix::testing
