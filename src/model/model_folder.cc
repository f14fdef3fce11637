#include "model/model_folder.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "model/decoder_weights.h"

namespace radix {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::to_string;

std::string shape_str_of(const Tensor& t) {
  return std::string(dtype_name(t.dtype)) + " [" + to_string(t.rows) + ", " + to_string(t.cols) +
         "]";
}

json read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  std::stringstream text;
  text << in.rdbuf();
  json j = json::parse(text.str(), nullptr, false);
  if (j.is_discarded()) throw std::runtime_error(path.string() + ": not valid JSON");
  return j;
}

std::string read_pooling(const fs::path& path) {
  const json j = read_json(path);
  if (!j.is_object()) throw std::runtime_error(path.string() + ": not a JSON object");
  std::vector<std::string> modes;
  for (const char* key : {"pooling_mode_cls_token", "pooling_mode_mean_tokens",
                          "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens",
                          "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"}) {
    if (j.value(key, false)) modes.emplace_back(key);
  }
  if (modes.size() == 1 && modes[0] == "pooling_mode_lasttoken") return "lasttoken";
  if (modes.size() == 1 && modes[0] == "pooling_mode_mean_tokens") return "mean";
  if (modes.empty()) throw std::runtime_error(path.string() + ": no pooling mode is enabled");
  std::string names;
  for (const auto& m : modes) names += (names.empty() ? "" : ", ") + m;
  throw std::runtime_error(path.string() + ": pooling " + names +
                           " is not supported (radix pools the last token or the mean)");
}

}  // namespace

ModelInfo read_model_folder(const std::string& folder, bool reranker_tokens_given) {
  const fs::path dir(folder);
  if (!fs::is_directory(dir)) {
    throw std::runtime_error("model folder '" + folder + "' does not exist or is not a directory");
  }
  ModelInfo info;
  info.spec = folder;
  info.config = load_decoder_config((dir / "config.json").string());
  const fs::path pooling = dir / "1_Pooling" / "config.json";
  const fs::path st_config = dir / "config_sentence_transformers.json";
  const bool sentence_transformers = fs::exists(pooling) || fs::exists(st_config);
  if (fs::exists(pooling)) info.pooling = read_pooling(pooling);
  if (fs::exists(st_config)) {
    const json j = read_json(st_config);
    if (j.contains("prompts") && j["prompts"].is_object()) {
      for (auto it = j["prompts"].begin(); it != j["prompts"].end(); ++it) {
        if (!it.value().is_string()) {
          throw std::runtime_error(st_config.string() + ": prompt '" + it.key() +
                                   "' is not a string");
        }
        info.prompts[it.key()] = it.value().get<std::string>();
      }
    }
    if (j.contains("default_prompt_name") && j["default_prompt_name"].is_string()) {
      info.default_prompt_name = j["default_prompt_name"].get<std::string>();
    }
  }
  bool classifier = false;
  for (const auto& a : info.config.architectures) {
    if (a.find("ForSequenceClassification") != std::string::npos) classifier = true;
  }
  // A causal LM without sentence-transformers files is taken for a reranker when its reranker
  // tokens are known: named by the caller (LoadOptions::reranker_tokens), or, for Qwen3, the
  // Qwen3-Reranker yes/no ids when the vocabulary holds them. Otherwise the embedding head.
  const bool has_yes_no =
      reranker_tokens_given || (info.config.family == "qwen3" &&
                                info.config.vocab_size > std::max(kRerankYesId, kRerankNoId));
  if (classifier) {
    info.head = HeadKind::kClassifier;
  } else if (sentence_transformers || !has_yes_no) {
    info.head = HeadKind::kEmbedding;
  } else {
    info.head = HeadKind::kReranker;
  }
  const fs::path rerank_template = dir / kRerankTemplateFile;
  if (fs::exists(rerank_template)) {
    std::ifstream in(rerank_template);
    if (!in) throw std::runtime_error("cannot open " + rerank_template.string());
    std::stringstream text;
    text << in.rdbuf();
    try {
      info.rerank_template = parse_rerank_template(text.str(), rerank_template.string());
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(e.what());
    }
  }
  if (fs::exists(dir / "tokenizer.json")) info.tokenizer_path = (dir / "tokenizer.json").string();
  return info;
}

namespace {

// The projection weights an fp8 checkpoint may store as F8_E4M3 (q/k/v, o, gate/up, down).
bool is_projection(const std::string& name) {
  const std::string suffix = "_proj.weight";
  return name.size() > suffix.size() &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// "x.weight_scale" -> "x.weight" for the fp8 side tensors (kind: what follows ".weight"), else "".
std::string scaled_weight(const std::string& name, std::string& kind) {
  for (const char* s : {".weight_scale_inv", ".weight_scale", ".input_scale"}) {
    const std::string suffix(s);
    if (name.size() > suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      kind = suffix.substr(1);
      return name.substr(0, name.size() - suffix.size()) + ".weight";
    }
  }
  return "";
}

// A small scale tensor's values as floats (F32 or BF16, as fp8 exporters write them).
std::vector<float> scale_values(const SafetensorsTensor& t, const std::string& where) {
  const size_t n = t.nbytes / std::max<size_t>(1, dtype_size(t.dtype));
  std::vector<float> out(n);
  if (t.dtype_name == "F32") {
    std::memcpy(out.data(), t.data, n * 4);
  } else if (t.dtype_name == "BF16") {
    for (size_t i = 0; i < n; ++i) {
      uint16_t v;
      std::memcpy(&v, static_cast<const char*>(t.data) + 2 * i, 2);
      const uint32_t bits = static_cast<uint32_t>(v) << 16;
      std::memcpy(&out[i], &bits, 4);
    }
  } else {
    throw std::runtime_error(where + ": fp8 scale '" + t.name + "' has dtype " + t.dtype_name +
                             " (radix reads F32 or BF16 scales)");
  }
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(out[i]) || out[i] < 0) {
      throw std::runtime_error(where + ": fp8 scale '" + t.name + "' holds " +
                               std::to_string(out[i]) + " at element " + to_string(i) +
                               " (scales must be finite and non-negative); the checkpoint is "
                               "corrupt");
    }
  }
  return out;
}

}  // namespace

SafetensorsWeights::SafetensorsWeights(const std::string& folder, const DecoderConfig& config)
    : folder_(folder), set_(folder) {
  const fs::path config_path = fs::path(folder) / "config.json";
  if (fs::exists(config_path)) {
    fp8_scheme_ = read_fp8_scheme(read_json(config_path), config_path.string());
  }
  std::map<std::string, std::array<int64_t, 2>> expected;
  std::map<std::string, bool> required;
  for (const ExpectedTensor& t : expected_decoder_tensors(config)) {
    expected[t.name] = t.shape;
    required[t.name] = t.required;
  }
  std::map<std::string, const SafetensorsTensor*> scales, input_scales;  // by weight name
  for (const auto& [file_name, tensor] : set_.tensors()) {
    std::string name = file_name;
    if (name.rfind("model.", 0) == 0 && !expected.count(name)) name = name.substr(6);
    std::string kind;
    const std::string weight = scaled_weight(name, kind);
    if (!weight.empty() && fp8_scheme_ && expected.count(weight) && is_projection(weight)) {
      auto& into = kind == "input_scale" ? input_scales : scales;
      if (into.count(weight)) {
        throw std::runtime_error(folder + ": '" + weight + "' has two scale tensors (" +
                                 into[weight]->name + " and " + file_name + ")");
      }
      into[weight] = tensor;
      continue;
    }
    if (!expected.count(name)) {
      throw std::runtime_error(folder + ": unexpected tensor '" + file_name + "' for a " +
                               config.family + " model with this config.json" +
                               (weight.empty() || fp8_scheme_
                                    ? std::string()
                                    : " (an fp8 scale, but config.json has no "
                                      "quantization_config with quant_method \"fp8\")"));
    }
    if (by_name_.count(name)) {
      throw std::runtime_error(folder + ": tensor '" + name + "' appears twice (with and " +
                               "without the model. prefix)");
    }
    if (tensor->dtype == DType::kF8E4M3) {
      if (!fp8_scheme_) {
        throw std::runtime_error(folder + ": tensor '" + file_name + "' has dtype F8_E4M3 but " +
                                 "config.json has no quantization_config with quant_method " +
                                 "\"fp8\" to give its scale");
      }
      if (!is_projection(name)) {
        throw std::runtime_error(folder + ": tensor '" + file_name + "' has dtype F8_E4M3; " +
                                 "radix reads fp8 only for the q/k/v/o/gate/up/down projection " +
                                 "weights (norms, embeddings and heads must be F32, BF16 or F16)");
      }
    } else if (!tensor->supported()) {
      throw std::runtime_error(folder + ": tensor '" + file_name + "' has dtype " +
                               tensor->dtype_name + " (radix reads F32, BF16 and F16" +
                               (fp8_scheme_ ? ", and F8_E4M3 projections)" : ")"));
    }
    const auto want = expected[name];
    const bool vector = want[0] == 1 && tensor->shape.size() == 1;
    const bool matches = vector ? tensor->shape[0] == want[1]
                                : tensor->shape.size() == 2 && tensor->shape[0] == want[0] &&
                                      tensor->shape[1] == want[1];
    if (!matches) {
      std::string got;
      for (const int64_t d : tensor->shape) got += (got.empty() ? "" : ", ") + to_string(d);
      throw std::runtime_error(
          folder + ": tensor '" + file_name + "' has shape [" + got +
          "] but config.json implies [" +
          (want[0] == 1 ? to_string(want[1]) : to_string(want[0]) + ", " + to_string(want[1])) +
          "]");
    }
    by_name_[name] = tensor;
  }
  for (const auto& [name, req] : required) {
    if (req && !by_name_.count(name)) {
      throw std::runtime_error(folder + ": missing tensor '" + name + "' (or 'model." + name +
                               "')");
    }
  }
  read_fp8_scales(scales, input_scales);
}

void SafetensorsWeights::read_fp8_scales(
    const std::map<std::string, const SafetensorsTensor*>& scales,
    const std::map<std::string, const SafetensorsTensor*>& input_scales) {
  for (const auto& [name, scale] : scales) {
    const auto it = by_name_.find(name);
    if (it == by_name_.end() || it->second->dtype != DType::kF8E4M3) {
      throw std::runtime_error(
          folder_ + ": fp8 scale '" + scale->name + "' belongs to '" + name + "', which is " +
          (it == by_name_.end() ? "missing" : it->second->dtype_name) + ", not F8_E4M3");
    }
  }
  for (const auto& [name, t] : by_name_) {
    if (t->dtype != DType::kF8E4M3) continue;
    const auto found = scales.find(name);
    if (found == scales.end()) {
      throw std::runtime_error(folder_ + ": tensor '" + t->name + "' is F8_E4M3 but has no " +
                               (fp8_scheme_->block_wise() ? "weight_scale_inv" : "weight_scale") +
                               " tensor beside it");
    }
    Fp8Scales s;
    s.kind = classify_fp8_scale(found->second->shape, t->shape[0], t->shape[1], *fp8_scheme_,
                                found->second->name);
    s.values = scale_values(*found->second, folder_);
    fp8_[name] = std::move(s);
  }
  for (const auto& [name, t] : input_scales) {
    const auto w = by_name_.find(name);
    if (w == by_name_.end() || w->second->dtype != DType::kF8E4M3) {
      throw std::runtime_error(folder_ + ": input scale '" + t->name + "' belongs to '" + name +
                               "', which is not an F8_E4M3 weight");
    }
    if (scale_values(*t, folder_).size() != 1) {
      throw std::runtime_error(folder_ + ": input scale '" + t->name +
                               "' must hold one value (a static per-tensor activation scale)");
    }
  }
  if (!input_scales.empty() || (fp8_scheme_ && fp8_scheme_->static_activations)) {
    std::fprintf(stderr,
                 "radix: %s: the checkpoint's static activation scales (input_scale) are not "
                 "used; radix quantises activations per row at run time (--dtype fp8) or not at "
                 "all\n",
                 folder_.c_str());
  }
}

// NaN or Inf in a weight would come out as NaN embeddings for every input: refuse the folder.
void SafetensorsWeights::check_finite(const SafetensorsTensor& t, const void* data, size_t count,
                                      int64_t first) const {
  const int64_t bad = first_non_finite(data, t.dtype, count);
  if (bad >= 0) {
    throw std::runtime_error(folder_ + ": tensor '" + t.name + "' holds a non-finite value (NaN " +
                             "or Inf) at element " + to_string(first + bad) +
                             "; the checkpoint is corrupt");
  }
}

const SafetensorsTensor& SafetensorsWeights::get(const std::string& name) const {
  const auto it = by_name_.find(name);
  if (it == by_name_.end()) throw std::runtime_error(folder_ + ": no tensor '" + name + "'");
  return *it->second;
}

bool SafetensorsWeights::contains(const std::string& name) const {
  return by_name_.count(name) > 0;
}

std::array<int64_t, 2> SafetensorsWeights::shape(const std::string& name) const {
  const SafetensorsTensor& t = get(name);
  if (t.shape.size() == 1) return {1, t.shape[0]};
  return {t.shape[0], t.shape[1]};
}

void SafetensorsWeights::write(const std::string& name, Backend& backend, const Tensor& dst) const {
  const SafetensorsTensor& t = get(name);
  const size_t count = static_cast<size_t>(dst.rows * dst.cols);
  check_finite(t, t.data, count, 0);
  const auto fp8 = fp8_.find(name);
  if (fp8 == fp8_.end()) {
    backend.upload(dst, t.data, t.dtype);
    return;
  }
  std::vector<float> values(count);
  dequantize_fp8(static_cast<const uint8_t*>(t.data), dst.rows, dst.cols, fp8->second.values.data(),
                 fp8->second.kind, *fp8_scheme_, values.data());
  backend.upload(dst, values.data(), DType::kF32);
}

bool SafetensorsWeights::stored_fp8(const std::string& name) const { return fp8_.count(name) > 0; }

bool SafetensorsWeights::write_fp8(const std::string& name, Backend& backend, const Tensor& dst,
                                   const Tensor& scale) const {
  const auto fp8 = fp8_.find(name);
  if (fp8 == fp8_.end() || fp8->second.kind == Fp8ScaleKind::kBlock) return false;
  const SafetensorsTensor& t = get(name);
  if (dst.dtype != DType::kF8E4M3 || dst.rows != t.shape[0] || dst.cols != t.shape[1] ||
      scale.dtype != DType::kF32 || scale.numel() != dst.rows) {
    throw std::runtime_error("write_fp8 '" + name + "': destination " + shape_str_of(dst) +
                             " and scale " + shape_str_of(scale) + " do not fit the tensor");
  }
  check_finite(t, t.data, static_cast<size_t>(dst.rows * dst.cols), 0);
  const std::vector<float>& v = fp8->second.values;
  std::vector<float> rows(static_cast<size_t>(dst.rows));
  for (size_t r = 0; r < rows.size(); ++r) {
    rows[r] = fp8->second.kind == Fp8ScaleKind::kPerTensor ? v[0] : v[r];
  }
  backend.upload(dst, t.data, DType::kF8E4M3);
  backend.upload(scale, rows.data(), DType::kF32);
  return true;
}

void SafetensorsWeights::write_rows(const std::string& name, std::span<const int64_t> rows,
                                    Backend& backend, const Tensor& dst) const {
  const SafetensorsTensor& t = get(name);
  const auto s = shape(name);
  const size_t row_bytes = static_cast<size_t>(s[1]) * dtype_size(t.dtype);
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i] < 0 || rows[i] >= s[0]) {
      throw std::runtime_error("tensor '" + name + "' has no row " + to_string(rows[i]));
    }
    const char* row = static_cast<const char*>(t.data) + rows[i] * row_bytes;
    check_finite(t, row, static_cast<size_t>(s[1]), rows[i] * s[1]);
    backend.upload(dst.row_slice(static_cast<int64_t>(i), 1), row, t.dtype);
  }
}

}  // namespace radix
