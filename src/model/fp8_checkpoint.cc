#include "model/fp8_checkpoint.h"

#include <cmath>
#include <limits>
#include <stdexcept>

namespace radix {
namespace {

using std::to_string;

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s;
  for (const int64_t d : shape) s += (s.empty() ? "" : ", ") + to_string(d);
  return "[" + s + "]";
}

}  // namespace

std::optional<Fp8Scheme> read_fp8_scheme(const nlohmann::json& config, const std::string& where) {
  if (!config.is_object() || !config.contains("quantization_config") ||
      config["quantization_config"].is_null()) {
    return std::nullopt;
  }
  const nlohmann::json& q = config["quantization_config"];
  auto fail = [&](const std::string& what) {
    throw std::runtime_error(where + ": quantization_config " + what);
  };
  if (!q.is_object()) fail("is not a JSON object");
  const std::string method = q.value("quant_method", std::string());
  if (method != "fp8") {
    fail("has quant_method '" + method +
         "'; radix reads unquantised checkpoints (F32, BF16, F16) and quant_method \"fp8\" "
         "(F8_E4M3 weights with weight_scale tensors)");
  }
  // transformers' FineGrainedFP8 names the format in "fmt"; AutoFP8 writes none (e4m3).
  const std::string fmt = q.value("fmt", std::string("e4m3"));
  if (fmt != "e4m3" && fmt != "float8_e4m3fn") {
    fail("has fmt '" + fmt + "'; radix reads float8 e4m3 weights only");
  }
  Fp8Scheme scheme;
  const std::string activations = q.value("activation_scheme", std::string("dynamic"));
  if (activations == "static") {
    scheme.static_activations = true;
  } else if (activations != "dynamic") {
    fail("has activation_scheme '" + activations + "' (expected dynamic or static)");
  }
  if (q.contains("weight_block_size") && !q["weight_block_size"].is_null()) {
    const nlohmann::json& b = q["weight_block_size"];
    if (!b.is_array() || b.size() != 2 || !b[0].is_number_unsigned() ||
        !b[1].is_number_unsigned() || b[0].get<int64_t>() <= 0 || b[1].get<int64_t>() <= 0) {
      fail("weight_block_size must be two positive integers, got " + b.dump());
    }
    scheme.block_rows = b[0].get<int64_t>();
    scheme.block_cols = b[1].get<int64_t>();
  }
  return scheme;
}

float e4m3_to_float(uint8_t v) {
  const int exponent = (v >> 3) & 0xF;
  const int mantissa = v & 0x7;
  const float sign = (v & 0x80) ? -1.0f : 1.0f;
  if (exponent == 0xF && mantissa == 0x7) return std::numeric_limits<float>::quiet_NaN();
  if (exponent == 0) return sign * std::ldexp(static_cast<float>(mantissa), -9);  // subnormal
  return sign * std::ldexp(static_cast<float>(8 + mantissa), exponent - 10);
}

Fp8ScaleKind classify_fp8_scale(const std::vector<int64_t>& shape, int64_t rows, int64_t cols,
                                const Fp8Scheme& scheme, const std::string& scale_name) {
  int64_t numel = 1;
  for (const int64_t d : shape) numel *= d;
  if (scheme.block_wise()) {
    const int64_t br = (rows + scheme.block_rows - 1) / scheme.block_rows;
    const int64_t bc = (cols + scheme.block_cols - 1) / scheme.block_cols;
    if (shape.size() == 2 && shape[0] == br && shape[1] == bc) return Fp8ScaleKind::kBlock;
    throw std::runtime_error("fp8 scale '" + scale_name + "' has shape " + shape_text(shape) +
                             " but weight_block_size [" + to_string(scheme.block_rows) + ", " +
                             to_string(scheme.block_cols) + "] over a [" + to_string(rows) + ", " +
                             to_string(cols) + "] weight needs [" + to_string(br) + ", " +
                             to_string(bc) + "]");
  }
  if (shape.size() <= 2 && numel == 1 && rows != 1) return Fp8ScaleKind::kPerTensor;
  const bool rows_vector = (shape.size() == 1 && shape[0] == rows) ||
                           (shape.size() == 2 && shape[0] == rows && shape[1] == 1);
  if (rows_vector) return Fp8ScaleKind::kPerChannel;
  if (shape.size() <= 2 && numel == 1) return Fp8ScaleKind::kPerTensor;
  throw std::runtime_error("fp8 scale '" + scale_name + "' has shape " + shape_text(shape) +
                           " for a [" + to_string(rows) + ", " + to_string(cols) +
                           "] weight; radix reads a per-tensor scale ([] or [1]) or one per "
                           "output channel ([" +
                           to_string(rows) + "] or [" + to_string(rows) + ", 1])");
}

void dequantize_fp8(const uint8_t* q, int64_t rows, int64_t cols, const float* scales,
                    Fp8ScaleKind kind, const Fp8Scheme& scheme, float* out) {
  float table[256];
  for (int i = 0; i < 256; ++i) table[i] = e4m3_to_float(static_cast<uint8_t>(i));
  const int64_t block_cols = scheme.block_wise() ? scheme.block_cols : 1;
  const int64_t blocks_per_row = scheme.block_wise() ? (cols + block_cols - 1) / block_cols : 0;
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* in = q + r * cols;
    float* o = out + r * cols;
    switch (kind) {
      case Fp8ScaleKind::kPerTensor:
      case Fp8ScaleKind::kPerChannel: {
        const float s = scales[kind == Fp8ScaleKind::kPerTensor ? 0 : r];
        for (int64_t c = 0; c < cols; ++c) o[c] = table[in[c]] * s;
        break;
      }
      case Fp8ScaleKind::kBlock: {
        const float* row_scales = scales + (r / scheme.block_rows) * blocks_per_row;
        for (int64_t c = 0; c < cols; ++c) o[c] = table[in[c]] * row_scales[c / block_cols];
        break;
      }
    }
  }
}

}  // namespace radix
