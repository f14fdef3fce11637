#include "model/qwen3_config.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

namespace radix {
namespace {

using nlohmann::json;
using std::to_string;

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error("config.json: " + what);
}

int32_t get_int(const json& j, const char* key, bool required = true, int32_t fallback = 0) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) fail(std::string("missing \"") + key + "\"");
    return fallback;
  }
  if (!it->is_number_integer()) fail(std::string("\"") + key + "\" must be an integer");
  const int64_t v = it->get<int64_t>();
  if (v < 0 || v > (int64_t{1} << 30))
    fail(std::string("\"") + key + "\" out of range: " + to_string(v));
  return static_cast<int32_t>(v);
}

double get_number(const json& j, const char* key, double fallback) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_number()) fail(std::string("\"") + key + "\" must be a number");
  return it->get<double>();
}

bool is_set(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && !it->is_null();
}

}  // namespace

int64_t Qwen3Config::layer_matmul_params() const {
  const int64_t h = hidden_size;
  return h * qkv_dim() + static_cast<int64_t>(q_dim()) * h + 3 * h * intermediate_size;
}

Qwen3Config parse_qwen3_config(const json& j) {
  if (!j.is_object()) fail("not a JSON object");
  const std::string type = j.value("model_type", std::string());
  if (type != "qwen3") {
    fail("model_type is \"" + type + "\"; radix supports \"qwen3\" only");
  }
  Qwen3Config c;
  c.hidden_size = get_int(j, "hidden_size");
  c.intermediate_size = get_int(j, "intermediate_size");
  c.num_hidden_layers = get_int(j, "num_hidden_layers");
  c.num_attention_heads = get_int(j, "num_attention_heads");
  c.num_key_value_heads = get_int(j, "num_key_value_heads", false, c.num_attention_heads);
  c.head_dim = get_int(j, "head_dim", false,
                       c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0);
  c.vocab_size = get_int(j, "vocab_size");
  c.max_position_embeddings = get_int(j, "max_position_embeddings");
  c.rms_norm_eps = get_number(j, "rms_norm_eps", 1e-6);
  if (j.contains("tie_word_embeddings") && !j["tie_word_embeddings"].is_null()) {
    if (!j["tie_word_embeddings"].is_boolean()) fail("\"tie_word_embeddings\" must be a boolean");
    c.tie_word_embeddings = j["tie_word_embeddings"].get<bool>();
  }

  // RoPE: transformers 4 writes rope_theta (+ rope_scaling), transformers 5 rope_parameters.
  c.rope_theta = get_number(j, "rope_theta", 1e6);
  if (is_set(j, "rope_scaling")) fail("rope_scaling is not supported (found a non-null value)");
  if (is_set(j, "rope_parameters")) {
    const json& rp = j["rope_parameters"];
    if (!rp.is_object()) fail("\"rope_parameters\" must be an object");
    const std::string rope_type = rp.value("rope_type", std::string("default"));
    if (rope_type != "default") {
      fail("rope_parameters.rope_type \"" + rope_type + "\" is not supported (only default)");
    }
    c.rope_theta = get_number(rp, "rope_theta", c.rope_theta);
  }
  if (j.value("use_sliding_window", false)) {
    fail("use_sliding_window is true; sliding-window attention is not supported");
  }
  if (j.value("attention_bias", false)) fail("attention_bias is true; not supported");
  const std::string act = j.value("hidden_act", std::string("silu"));
  if (act != "silu") fail("hidden_act \"" + act + "\" is not supported (only silu)");

  if (j.contains("architectures") && j["architectures"].is_array()) {
    for (const auto& a : j["architectures"]) {
      if (a.is_string()) c.architectures.push_back(a.get<std::string>());
    }
  }
  if (j.contains("id2label") && j["id2label"].is_object()) {
    c.num_labels = static_cast<int32_t>(j["id2label"].size());
  }
  if (is_set(j, "num_labels")) c.num_labels = get_int(j, "num_labels");
  validate_qwen3_config(c);
  return c;
}

Qwen3Config load_qwen3_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::stringstream text;
  text << in.rdbuf();
  json j = json::parse(text.str(), nullptr, false);
  if (j.is_discarded()) throw std::runtime_error(path + ": not valid JSON");
  try {
    return parse_qwen3_config(j);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

void validate_qwen3_config(const Qwen3Config& c) {
  auto positive = [](int32_t v, const char* name) {
    if (v <= 0) fail(std::string(name) + " must be positive, got " + to_string(v));
  };
  positive(c.hidden_size, "hidden_size");
  positive(c.intermediate_size, "intermediate_size");
  positive(c.num_hidden_layers, "num_hidden_layers");
  positive(c.num_attention_heads, "num_attention_heads");
  positive(c.num_key_value_heads, "num_key_value_heads");
  positive(c.head_dim, "head_dim");
  positive(c.vocab_size, "vocab_size");
  positive(c.max_position_embeddings, "max_position_embeddings");
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    fail("num_attention_heads (" + to_string(c.num_attention_heads) +
         ") is not a multiple of num_key_value_heads (" + to_string(c.num_key_value_heads) + ")");
  }
  if (c.head_dim % 2 != 0) fail("head_dim must be even for RoPE, got " + to_string(c.head_dim));
  if (!(c.rms_norm_eps > 0)) fail("rms_norm_eps must be positive");
  if (!(c.rope_theta > 0)) fail("rope_theta must be positive");
}

Qwen3Config qwen3_preset(const std::string& name) {
  Qwen3Config c;
  c.head_dim = 128;
  c.vocab_size = 151669;
  c.rope_theta = 1e6;
  c.rms_norm_eps = 1e-6;
  c.max_position_embeddings = 32768;
  c.architectures = {"Qwen3ForCausalLM"};
  if (name == "qwen3-0.6b") {
    c.hidden_size = 1024, c.num_hidden_layers = 28, c.num_attention_heads = 16;
    c.num_key_value_heads = 8, c.intermediate_size = 3072, c.tie_word_embeddings = true;
  } else if (name == "qwen3-4b") {
    c.hidden_size = 2560, c.num_hidden_layers = 36, c.num_attention_heads = 32;
    c.num_key_value_heads = 8, c.intermediate_size = 9728, c.tie_word_embeddings = true;
  } else if (name == "qwen3-8b") {
    c.hidden_size = 4096, c.num_hidden_layers = 36, c.num_attention_heads = 32;
    c.num_key_value_heads = 8, c.intermediate_size = 12288, c.tie_word_embeddings = false;
  } else {
    throw std::invalid_argument("unknown Qwen3 shape '" + name +
                                "' (expected qwen3-0.6b, qwen3-4b or qwen3-8b)");
  }
  return c;
}

}  // namespace radix
