// Checkpoints whose projections are already fp8: config.json's `quantization_config` with
// `quant_method: "fp8"` (AutoFP8, llm-compressor's fp8 export, transformers' FineGrainedFP8),
// projection weights stored as F8_E4M3 with a scale tensor beside each. What is read and what is
// refused: docs/models.md, "fp8 checkpoints".
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace radix {

// The parts of quantization_config radix acts on.
struct Fp8Scheme {
  // activation_scheme "static": the checkpoint carries input_scale tensors. radix quantises
  // activations per row at run time (dynamic), so they are validated and not used.
  bool static_activations = false;
  // weight_block_size [rows, cols] (FineGrainedFP8): one scale per block, in weight_scale_inv.
  int64_t block_rows = 0, block_cols = 0;
  bool block_wise() const { return block_rows > 0; }
};

// Reads config.json's quantization_config: nullopt when there is none; the scheme for
// quant_method "fp8" with a float8_e4m3 format (or none named); throws std::runtime_error naming
// `where` for any other method (compressed-tensors, gptq, awq, bitsandbytes, ...) or format, or
// a malformed weight_block_size.
std::optional<Fp8Scheme> read_fp8_scheme(const nlohmann::json& config, const std::string& where);

// OCP fp8 e4m3 (torch.float8_e4m3fn, safetensors F8_E4M3) to float; exact. 0x7F / 0xFF are NaN.
float e4m3_to_float(uint8_t v);

// Whether the scale of a [rows, cols] weight applies per tensor, per row or per block.
enum class Fp8ScaleKind : uint8_t { kPerTensor, kPerChannel, kBlock };

// Classifies a scale tensor's shape for a [rows, cols] weight: per tensor ([] or [1] or [1, 1]),
// per channel ([rows] or [rows, 1]), or, for a block-wise scheme, per block
// ([ceil(rows / block_rows), ceil(cols / block_cols)], the only shape accepted there). Throws
// std::runtime_error naming `scale_name` and both shapes otherwise.
Fp8ScaleKind classify_fp8_scale(const std::vector<int64_t>& scale_shape, int64_t rows, int64_t cols,
                                const Fp8Scheme& scheme, const std::string& scale_name);

// The dequantised weight, row-major [rows, cols] floats: e4m3 value * its scale, in fp32.
// `scales` holds the scale tensor's values (per `kind`: 1, rows, or the block grid).
void dequantize_fp8(const uint8_t* q, int64_t rows, int64_t cols, const float* scales,
                    Fp8ScaleKind kind, const Fp8Scheme& scheme, float* out);

}  // namespace radix
