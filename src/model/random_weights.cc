#include "model/random_weights.h"

#include <stdexcept>

#include "backend/random_fill.h"
#include "model/decoder_weights.h"

namespace radix {
namespace {

constexpr float kInitStd = 0.02f;

bool ends_with(const std::string& name, const char* suffix) {
  const std::string s(suffix);
  return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
}
bool is_norm(const std::string& name) { return ends_with(name, "norm.weight"); }
bool is_bias(const std::string& name) { return ends_with(name, ".bias"); }

}  // namespace

uint64_t fnv1a64(const std::string& text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

RandomWeights::RandomWeights(const DecoderConfig& config, uint64_t seed)
    : seed_(seed), norm_value_(config.norm_weight == NormWeight::kPlusOne ? 0.0f : 1.0f) {
  for (const ExpectedTensor& t : expected_decoder_tensors(config)) shapes_[t.name] = t.shape;
  if (config.tie_word_embeddings) shapes_.erase("lm_head.weight");
}

bool RandomWeights::contains(const std::string& name) const { return shapes_.count(name) > 0; }

std::array<int64_t, 2> RandomWeights::shape(const std::string& name) const {
  const auto it = shapes_.find(name);
  if (it == shapes_.end()) throw std::runtime_error("random weights: no tensor '" + name + "'");
  return it->second;
}

uint64_t RandomWeights::stream(const std::string& name) const {
  return mix64(seed_) ^ fnv1a64(name);
}

void RandomWeights::write(const std::string& name, Backend& backend, const Tensor& dst) const {
  if (is_bias(name)) {
    backend.fill_constant(dst, 0.0f);
  } else if (is_norm(name)) {
    backend.fill_constant(dst, norm_value_);
  } else {
    backend.fill_random_normal(dst, stream(name), kInitStd);
  }
}

void RandomWeights::write_rows(const std::string& name, std::span<const int64_t> rows,
                               Backend& backend, const Tensor& dst) const {
  const int64_t cols = shape(name)[1];
  for (size_t i = 0; i < rows.size(); ++i) {
    const Tensor row = dst.row_slice(static_cast<int64_t>(i), 1);
    if (is_norm(name)) {
      backend.fill_constant(row, norm_value_);
    } else {
      backend.fill_random_normal(row, stream(name), kInitStd,
                                 static_cast<uint64_t>(rows[i] * cols));
    }
  }
}

}  // namespace radix
