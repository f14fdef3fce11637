#include "model/random_weights.h"

#include <stdexcept>

#include "backend/random_fill.h"
#include "model/qwen3_weights.h"

namespace radix {
namespace {

constexpr float kInitStd = 0.02f;

bool is_norm(const std::string& name) {
  return name.size() >= 11 && name.compare(name.size() - 11, 11, "norm.weight") == 0;
}

}  // namespace

uint64_t fnv1a64(const std::string& text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

RandomWeights::RandomWeights(const Qwen3Config& config, uint64_t seed) : seed_(seed) {
  for (const ExpectedTensor& t : expected_qwen3_tensors(config)) shapes_[t.name] = t.shape;
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
  if (is_norm(name)) {
    backend.fill_constant(dst, 1.0f);
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
      backend.fill_constant(row, 1.0f);
    } else {
      backend.fill_random_normal(row, stream(name), kInitStd,
                                 static_cast<uint64_t>(rows[i] * cols));
    }
  }
}

}  // namespace radix
