// Tiny fp8 checkpoints for the loader tests: the formula model of small_fp8_config() with its
// projections quantised to e4m3 in the test (per tensor, per channel or per block), written next
// to an f32 folder of the same dequantised weights.
#pragma once

#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "fixture_util.h"
#include "safetensors_writer.h"

namespace radix::testing {

// e4m3fn decoded by its definition, independently of the loader's decoder: code 0 s eeee mmm is
// (-1)^s 2^(e-7) (1 + m/8), or 2^-6 (m/8) for e = 0; 0x7F / 0xFF are NaN.
inline float reference_e4m3(uint8_t code) {
  const int e = (code >> 3) & 15, m = code & 7;
  const double v = e == 0 ? std::pow(2.0, -6) * m / 8.0 : std::pow(2.0, e - 7) * (1 + m / 8.0);
  return static_cast<float>((code & 0x80) ? -v : v);
}

// The nearest e4m3 code to x (|x| <= 448), by search: the test's own quantiser.
inline uint8_t to_e4m3(float x) {
  uint8_t best = 0;
  for (int c = 0; c < 0x7F; ++c) {
    if (std::fabs(reference_e4m3(c) - std::fabs(x)) <
        std::fabs(reference_e4m3(best) - std::fabs(x))) {
      best = static_cast<uint8_t>(c);
    }
  }
  return x < 0 ? static_cast<uint8_t>(best | 0x80) : best;
}

enum class Scales { kTensor, kTensor1, kChannel, kChannel1, kBlock };

struct Quantised {
  RawTensor weight;                // F8_E4M3
  RawTensor scale;                 // F32
  std::vector<float> dequantised;  // e4m3 value * scale, fp32, [rows, cols]
};

inline constexpr int64_t kBlock = 16;  // weight_block_size of the block-wise folders

// Quantises a [rows, cols] weight the way fp8 exporters do (amax / 448 per tensor, row or block).
inline Quantised quantise(const std::vector<float>& w, int64_t rows, int64_t cols, Scales kind) {
  const int64_t br = kind == Scales::kBlock ? (rows + kBlock - 1) / kBlock : 1;
  const int64_t bc = kind == Scales::kBlock ? (cols + kBlock - 1) / kBlock : 1;
  const bool per_row = kind == Scales::kChannel || kind == Scales::kChannel1;
  const int64_t groups = per_row ? rows : br * bc;
  auto group_of = [&](int64_t r, int64_t c) {
    if (per_row) return r;
    if (kind == Scales::kBlock) return (r / kBlock) * bc + c / kBlock;
    return int64_t{0};
  };
  std::vector<float> amax(static_cast<size_t>(groups), 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      float& a = amax[group_of(r, c)];
      a = std::max(a, std::fabs(w[r * cols + c]));
    }
  }
  std::vector<float> scale(amax.size());
  for (size_t g = 0; g < scale.size(); ++g) scale[g] = amax[g] / 448.0f;
  Quantised q;
  q.weight = {"F8_E4M3", {rows, cols}, std::string(static_cast<size_t>(rows * cols), '\0')};
  q.dequantised.resize(w.size());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const float s = scale[group_of(r, c)];
      const uint8_t code = to_e4m3(s > 0 ? w[r * cols + c] / s : 0.0f);
      q.weight.bytes[r * cols + c] = static_cast<char>(code);
      q.dequantised[r * cols + c] = reference_e4m3(code) * s;
    }
  }
  std::vector<int64_t> shape;
  switch (kind) {
    case Scales::kTensor:
      break;  // a scalar, []
    case Scales::kTensor1:
      shape = {1};
      break;
    case Scales::kChannel:
      shape = {rows, 1};
      break;
    case Scales::kChannel1:
      shape = {rows};
      break;
    case Scales::kBlock:
      shape = {br, bc};
      break;
  }
  q.scale = f32_tensor(scale, shape);
  return q;
}

// head_dim 16 keeps the CPU tests small; the CUDA attention and qk-norm kernels take head_dim
// 64, 128 or 256 only, so a forward on the GPU asks for 64.
inline Qwen3Config small_fp8_config(int32_t head_dim = 16) {
  return small_decoder("qwen3-0.6b", head_dim, /*smaller=*/true);
}

inline bool is_projection(const std::string& name) {
  return name.find("_proj.weight") != std::string::npos;
}

struct Folders {
  std::filesystem::path fp8;        // projections in e4m3 with scales
  std::filesystem::path reference;  // the same model with the dequantised projections in f32
};

using ScaleLayout = std::function<std::optional<Scales>(const std::string&)>;
using TensorEdit = std::function<void(std::map<std::string, RawTensor>&)>;
using ConfigEdit = std::function<void(nlohmann::json&)>;

// The folders of model `c`. `kind_of` picks each projection's scale layout (nullopt: left
// unquantised, like an ignored_layers entry); `edit` / `edit_config` break the fp8 folder for the
// error tests.
inline Folders write_fp8_folders(const Qwen3Config& c, const std::string& name,
                                 const ScaleLayout& kind_of, const TensorEdit& edit = {},
                                 const ConfigEdit& edit_config = {}) {
  Folders f{temp_folder(name + "_fp8"), temp_folder(name + "_ref")};
  auto fp8 = formula_checkpoint(c, true);
  auto ref = fp8;
  nlohmann::json quant = {{"quant_method", "fp8"}, {"activation_scheme", "dynamic"}};
  for (const ExpectedTensor& t : expected_decoder_tensors(c)) {
    if (!t.required || !is_projection(t.name)) continue;
    const auto kind = kind_of(t.name);
    if (!kind) continue;
    if (*kind == Scales::kBlock) quant["weight_block_size"] = {kBlock, kBlock};
    const std::string key = "model." + t.name;
    const Quantised q =
        quantise(formula_tensor(t.name, t.shape[0], t.shape[1]), t.shape[0], t.shape[1], *kind);
    fp8[key] = q.weight;
    const std::string base = key.substr(0, key.size() - std::string(".weight").size());
    fp8[base + (*kind == Scales::kBlock ? ".weight_scale_inv" : ".weight_scale")] = q.scale;
    ref[key] = f32_tensor(q.dequantised, {t.shape[0], t.shape[1]});
  }
  nlohmann::json cfg = config_json(c);
  write_text(f.reference / "config.json", cfg.dump());
  write_safetensors((f.reference / "model.safetensors").string(), ref);
  cfg["quantization_config"] = quant;
  if (edit_config) edit_config(cfg);
  if (edit) edit(fp8);
  write_text(f.fp8 / "config.json", cfg.dump());
  write_safetensors((f.fp8 / "model.safetensors").string(), fp8);
  return f;
}

// The folders of small_fp8_config().
inline Folders write_fp8_folders(const std::string& name, const ScaleLayout& kind_of,
                                 const TensorEdit& edit = {}, const ConfigEdit& edit_config = {}) {
  return write_fp8_folders(small_fp8_config(), name, kind_of, edit, edit_config);
}

}  // namespace radix::testing
