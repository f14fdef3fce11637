#include "model/model_folder.h"

#include <algorithm>
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

SafetensorsWeights::SafetensorsWeights(const std::string& folder, const DecoderConfig& config)
    : folder_(folder), set_(folder) {
  std::map<std::string, std::array<int64_t, 2>> expected;
  std::map<std::string, bool> required;
  for (const ExpectedTensor& t : expected_decoder_tensors(config)) {
    expected[t.name] = t.shape;
    required[t.name] = t.required;
  }
  for (const auto& [file_name, tensor] : set_.tensors()) {
    std::string name = file_name;
    if (name.rfind("model.", 0) == 0 && !expected.count(name)) name = name.substr(6);
    if (!expected.count(name)) {
      throw std::runtime_error(folder + ": unexpected tensor '" + file_name + "' for a " +
                               config.family + " model with this config.json");
    }
    if (by_name_.count(name)) {
      throw std::runtime_error(folder + ": tensor '" + name + "' appears twice (with and " +
                               "without the model. prefix)");
    }
    if (!tensor->supported()) {
      throw std::runtime_error(folder + ": tensor '" + file_name + "' has dtype " +
                               tensor->dtype_name + " (radix reads F32, BF16 and F16)");
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
  check_finite(t, t.data, static_cast<size_t>(dst.rows * dst.cols), 0);
  backend.upload(dst, t.data, t.dtype);
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
