// Where a model's weights come from: a safetensors folder, random values made on the backend, or a
// formula (tests). The model asks for each tensor by its Hugging Face name without the "model."
// prefix ("embed_tokens.weight", "layers.3.mlp.gate_proj.weight", "norm.weight", "lm_head.weight",
// "score.weight") and has the source write it into a backend tensor, possibly a row slice of a
// fused weight (q/k/v into one qkv weight, gate/up into one gate_up weight). A checkpoint may store
// projections already in fp8 (docs/models.md, "fp8 checkpoints"): write() dequantises those, and
// write_fp8() hands them over as stored.
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

  // Whether `name` is stored as e4m3 with a scale tensor beside it (an fp8 checkpoint's
  // projection). write() then writes the dequantised values (e4m3 value * scale, in fp32).
  virtual bool stored_fp8(const std::string& /*name*/) const { return false; }
  // For a stored_fp8 tensor with a per-tensor or per-channel scale: writes the e4m3 bytes as
  // stored into dst ([rows, cols] kF8E4M3) and one scale per row into scale ([1, rows] kF32,
  // contiguous; a per-tensor scale repeated) and returns true. Returns false and writes nothing
  // otherwise (not fp8, or block-wise scales, which one scale per row cannot express).
  virtual bool write_fp8(const std::string& /*name*/, Backend& /*backend*/, const Tensor& /*dst*/,
                         const Tensor& /*scale*/) const {
    return false;
  }
};

}  // namespace radix
