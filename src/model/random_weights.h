// Weights made on the backend from a seed: normal(0, 0.02) for matrices, ones for norm weights
// (zeros where the norm applies 1 + w), zeros for biases (what Hugging Face initialises), for
// benchmarks with the real shapes and for the demo model.
#pragma once

#include <map>
#include <string>

#include "model/decoder_config.h"
#include "model/weight_source.h"

namespace radix {

class RandomWeights final : public WeightSource {
 public:
  RandomWeights(const DecoderConfig& config, uint64_t seed);
  bool contains(const std::string& name) const override;
  std::array<int64_t, 2> shape(const std::string& name) const override;
  void write(const std::string& name, Backend& backend, const Tensor& dst) const override;
  void write_rows(const std::string& name, std::span<const int64_t> rows, Backend& backend,
                  const Tensor& dst) const override;

 private:
  uint64_t stream(const std::string& name) const;
  uint64_t seed_;
  float norm_value_ = 1.0f;
  std::map<std::string, std::array<int64_t, 2>> shapes_;
};

// FNV-1a 64 of a string: the per-tensor part of a weight stream's seed.
uint64_t fnv1a64(const std::string& text);

}  // namespace radix
