// Where a model's weights come from: a safetensors folder, random values made on the backend, or a
// formula (tests). The model asks for each tensor by its Hugging Face name without the "model."
// prefix ("embed_tokens.weight", "layers.3.mlp.gate_proj.weight", "norm.weight", "lm_head.weight",
// "score.weight") and has the source write it into a backend tensor, possibly a row slice of a
// fused weight (q/k/v into one qkv weight, gate/up into one gate_up weight).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>

#include "backend/backend.h"

namespace radix {

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  virtual bool contains(const std::string& name) const = 0;
  // [rows, cols]; a 1-D tensor of n values is [1, n]. Throws if absent.
  virtual std::array<int64_t, 2> shape(const std::string& name) const = 0;
  // Writes the tensor into dst (dst.rows x dst.cols == shape(name), checked by the caller),
  // converting to dst.dtype through Backend::upload or filling it on the backend.
  virtual void write(const std::string& name, Backend& backend, const Tensor& dst) const = 0;
  // Writes rows `rows` of the tensor into consecutive rows of dst (the reranker's yes/no rows of
  // the LM head or the tied embedding), without materialising the rest of it.
  virtual void write_rows(const std::string& name, std::span<const int64_t> rows, Backend& backend,
                          const Tensor& dst) const = 0;
};

}  // namespace radix
