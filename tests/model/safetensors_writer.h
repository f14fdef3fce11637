// Writes safetensors files and model folders for the loader tests (valid ones and broken ones).
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "formula_weights.h"
#include "model/decoder_weights.h"

namespace radix::testing {

struct RawTensor {
  std::string dtype = "F32";
  std::vector<int64_t> shape;
  std::string bytes;
};

inline uint16_t to_bf16(float f) {  // round to nearest even
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  bits += 0x7FFF + ((bits >> 16) & 1);
  return static_cast<uint16_t>(bits >> 16);
}

inline RawTensor f32_tensor(const std::vector<float>& v, std::vector<int64_t> shape) {
  RawTensor t{"F32", std::move(shape), std::string(v.size() * 4, '\0')};
  std::memcpy(t.bytes.data(), v.data(), v.size() * 4);
  return t;
}

inline RawTensor bf16_tensor(const std::vector<float>& v, std::vector<int64_t> shape) {
  RawTensor t{"BF16", std::move(shape), std::string(v.size() * 2, '\0')};
  for (size_t i = 0; i < v.size(); ++i) {
    const uint16_t b = to_bf16(v[i]);
    std::memcpy(t.bytes.data() + 2 * i, &b, 2);
  }
  return t;
}

// The header JSON and the data region; `edit` may corrupt the header before it is written.
inline void write_safetensors(const std::string& path, const std::map<std::string, RawTensor>& ts,
                              const std::function<void(nlohmann::json&)>& edit = {}) {
  nlohmann::json header = nlohmann::json::object();
  std::string data;
  for (const auto& [name, t] : ts) {
    header[name] = {{"dtype", t.dtype},
                    {"shape", t.shape},
                    {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
    data += t.bytes;
  }
  header["__metadata__"] = {{"format", "pt"}};
  if (edit) edit(header);
  std::string text = header.dump();
  while (text.size() % 8 != 0) text += ' ';
  std::ofstream out(path, std::ios::binary);
  const uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xFF));
  out << text << data;
}

// Every tensor of `config` with formula weights, under Qwen3ForCausalLM names ("model." prefix)
// or Qwen3Model names.
inline std::map<std::string, RawTensor> formula_checkpoint(const Qwen3Config& config, bool prefix,
                                                           bool bf16 = false) {
  std::map<std::string, RawTensor> out;
  for (const ExpectedTensor& t : expected_decoder_tensors(config)) {
    if (!t.required) continue;
    const auto v = formula_tensor(t.name, t.shape[0], t.shape[1]);
    std::vector<int64_t> shape = t.shape[0] == 1 && t.name.find("norm") != std::string::npos
                                     ? std::vector<int64_t>{t.shape[1]}
                                     : std::vector<int64_t>{t.shape[0], t.shape[1]};
    out[(prefix ? "model." : "") + t.name] = bf16 ? bf16_tensor(v, shape) : f32_tensor(v, shape);
  }
  return out;
}

inline nlohmann::json config_json(const Qwen3Config& c) {
  return {{"architectures", {"Qwen3ForCausalLM"}},
          {"model_type", "qwen3"},
          {"hidden_size", c.hidden_size},
          {"intermediate_size", c.intermediate_size},
          {"num_hidden_layers", c.num_hidden_layers},
          {"num_attention_heads", c.num_attention_heads},
          {"num_key_value_heads", c.num_key_value_heads},
          {"head_dim", c.head_dim},
          {"vocab_size", c.vocab_size},
          {"max_position_embeddings", c.max_position_embeddings},
          {"rope_theta", c.rope_theta},
          {"rms_norm_eps", c.rms_norm_eps},
          {"tie_word_embeddings", c.tie_word_embeddings},
          {"rope_scaling", nullptr},
          {"sliding_window", nullptr},
          {"use_sliding_window", false}};
}

inline void write_text(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

// A fresh empty folder under the test temp dir.
inline std::filesystem::path temp_folder(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("radix_model_test_" + std::to_string(::getpid()) + "_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace radix::testing
