#include "model/decoder_config.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "model/family.h"

namespace radix {

using nlohmann::json;
using std::to_string;

namespace config_json {

void fail(const std::string& what) { throw std::runtime_error("config.json: " + what); }

int32_t get_int(const json& j, const char* key, bool required, int32_t fallback) {
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

bool get_bool(const json& j, const char* key, bool fallback) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) fail(std::string("\"") + key + "\" must be a boolean");
  return it->get<bool>();
}

std::string get_string(const json& j, const char* key, const std::string& fallback) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_string()) fail(std::string("\"") + key + "\" must be a string");
  return it->get<std::string>();
}

bool is_set(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && !it->is_null();
}

namespace {

// One rope dict: transformers 4's rope_scaling ("type" or "rope_type") or 5's rope_parameters.
void parse_rope_dict(const json& rp, const char* where, DecoderConfig& c) {
  if (!rp.is_object()) fail(std::string("\"") + where + "\" must be an object");
  std::string type = get_string(rp, "rope_type", get_string(rp, "type", "default"));
  RopeScaling& s = c.rope_scaling;
  if (type == "default") {
    s.type = RopeScaling::Type::kDefault;
  } else if (type == "linear") {
    s.type = RopeScaling::Type::kLinear;
  } else if (type == "dynamic") {
    s.type = RopeScaling::Type::kDynamic;
  } else if (type == "llama3") {
    s.type = RopeScaling::Type::kLlama3;
  } else {
    fail(std::string(where) + ".rope_type \"" + type +
         "\" is not supported (radix supports default, linear, dynamic and llama3)");
  }
  c.rope_theta = get_number(rp, "rope_theta", c.rope_theta);
  if (s.type != RopeScaling::Type::kDefault) {
    s.factor = get_number(rp, "factor", 0);
    if (!(s.factor >= 1.0)) {
      fail(std::string(where) + ".factor must be >= 1 for rope_type " + type);
    }
  }
  if (s.type == RopeScaling::Type::kLlama3) {
    s.low_freq_factor = get_number(rp, "low_freq_factor", 1.0);
    s.high_freq_factor = get_number(rp, "high_freq_factor", 4.0);
    if (!(s.high_freq_factor > s.low_freq_factor && s.low_freq_factor > 0)) {
      fail(std::string(where) + ": llama3 needs high_freq_factor > low_freq_factor > 0");
    }
  }
  s.original_max_position_embeddings = get_int(rp, "original_max_position_embeddings", false, 0);
  if (s.type == RopeScaling::Type::kLlama3 && s.original_max_position_embeddings == 0) {
    fail(std::string(where) + ": llama3 needs original_max_position_embeddings");
  }
  const double attention_factor = get_number(rp, "attention_factor", 1.0);
  if (attention_factor != 1.0) {
    fail(std::string(where) + ".attention_factor " + to_string(attention_factor) +
         " is not supported (only 1)");
  }
}

}  // namespace

void parse_common(const json& j, DecoderConfig& c) {
  c.hidden_size = get_int(j, "hidden_size");
  c.intermediate_size = get_int(j, "intermediate_size");
  c.num_hidden_layers = get_int(j, "num_hidden_layers");
  c.num_attention_heads = get_int(j, "num_attention_heads");
  c.num_key_value_heads = get_int(j, "num_key_value_heads", false, c.num_attention_heads);
  c.head_dim = get_int(j, "head_dim", false,
                       c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0);
  c.vocab_size = get_int(j, "vocab_size");
  c.max_position_embeddings = get_int(j, "max_position_embeddings");
  c.rms_norm_eps = get_number(j, "rms_norm_eps", c.rms_norm_eps);
  c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", c.tie_word_embeddings);

  // RoPE: transformers 4 writes rope_theta (+ rope_scaling), transformers 5 rope_parameters.
  c.rope_theta = get_number(j, "rope_theta", c.rope_theta);
  if (is_set(j, "rope_scaling")) parse_rope_dict(j["rope_scaling"], "rope_scaling", c);
  if (is_set(j, "rope_parameters")) parse_rope_dict(j["rope_parameters"], "rope_parameters", c);
  if (get_number(j, "partial_rotary_factor", 1.0) != 1.0) {
    fail("partial_rotary_factor other than 1 is not supported");
  }

  // Bidirectional encoders built on a decoder (gte-Qwen2, EmbeddingGemma-style flags).
  if (!get_bool(j, "is_causal", true)) c.causal = false;
  if (get_bool(j, "use_bidirectional_attention", false)) c.causal = false;

  if (j.contains("architectures") && j["architectures"].is_array()) {
    for (const auto& a : j["architectures"]) {
      if (a.is_string()) c.architectures.push_back(a.get<std::string>());
    }
  }
  if (j.contains("id2label") && j["id2label"].is_object()) {
    c.num_labels = static_cast<int32_t>(j["id2label"].size());
  }
  if (is_set(j, "num_labels")) c.num_labels = get_int(j, "num_labels");
}

void parse_layer_types_array(const json& j, DecoderConfig& c) {
  if (!is_set(j, "layer_types")) return;
  const json& types = j["layer_types"];
  if (!types.is_array() || static_cast<int64_t>(types.size()) != c.num_hidden_layers) {
    fail("\"layer_types\" must be an array of num_hidden_layers entries");
  }
  for (int32_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string t = types[l].is_string() ? types[l].get<std::string>() : "";
    if (t == "sliding_attention") {
      c.sliding_layers[l] = true;
    } else if (t == "full_attention") {
      c.sliding_layers[l] = false;
    } else {
      fail("layer_types[" + to_string(l) + "] is \"" + t +
           "\" (radix knows sliding_attention and full_attention)");
    }
  }
}

Activation parse_gelu_tanh(const json& j) {
  const std::string act = get_string(j, "hidden_activation", get_string(j, "hidden_act", ""));
  if (act == "gelu_pytorch_tanh" || act == "gelu") return Activation::kGeluTanh;
  fail("hidden_activation \"" + act + "\" is not supported (gelu_pytorch_tanh)");
}

}  // namespace config_json

const char* rope_type_name(RopeScaling::Type type) {
  switch (type) {
    case RopeScaling::Type::kDefault:
      return "default";
    case RopeScaling::Type::kLinear:
      return "linear";
    case RopeScaling::Type::kDynamic:
      return "dynamic";
    case RopeScaling::Type::kLlama3:
      return "llama3";
  }
  return "?";
}

float DecoderConfig::attention_scale() const {
  const double base = query_pre_attn_scalar > 0 ? query_pre_attn_scalar : head_dim;
  return static_cast<float>(1.0 / std::sqrt(base));
}

int64_t DecoderConfig::layer_matmul_params() const {
  const int64_t h = hidden_size;
  return h * qkv_dim() + static_cast<int64_t>(q_dim()) * h + 3 * h * intermediate_size;
}

DecoderConfig parse_decoder_config(const json& j) {
  if (!j.is_object()) config_json::fail("not a JSON object");
  const std::string type = j.value("model_type", std::string());
  const Family& family = family_for_model_type(type);
  DecoderConfig c;
  c.family = family.name;
  family.parse(j, c);
  validate_decoder_config(c);
  return c;
}

DecoderConfig load_decoder_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::stringstream text;
  text << in.rdbuf();
  json j = json::parse(text.str(), nullptr, false);
  if (j.is_discarded()) throw std::runtime_error(path + ": not valid JSON");
  try {
    return parse_decoder_config(j);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

void validate_decoder_config(const DecoderConfig& c) {
  using config_json::fail;
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
  if (c.sliding_window < 0) fail("sliding_window must be >= 0");
  if (!(c.attn_logit_softcap >= 0) || !(c.final_logit_softcap >= 0)) {
    fail("soft-caps must be >= 0");
  }
  if (!c.causal && c.sliding_window > 0) {
    for (int32_t l = 0; l < c.num_hidden_layers; ++l) {
      if (c.layer_is_sliding(l)) fail("a bidirectional model with a sliding window");
    }
  }
}

DecoderConfig decoder_preset(const std::string& name) {
  std::string known;
  for (const Family* f : families()) {
    for (const char* const* p = f->presets; p != nullptr && *p != nullptr; ++p) {
      if (name == *p) {
        DecoderConfig c = f->preset(name);
        c.family = f->name;
        validate_decoder_config(c);
        return c;
      }
      known += known.empty() ? "" : ", ";
      known += *p;
    }
  }
  throw std::invalid_argument("unknown model shape '" + name + "' (expected " + known + ")");
}

}  // namespace radix
