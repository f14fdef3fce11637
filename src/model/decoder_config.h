// The hyper-parameters of every decoder family radix runs, in one plain struct. A family's file
// (src/model/families/) fills it from config.json; the shared forward and the family's layer
// function read it. Fields a family does not use keep their defaults.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "backend/backend.h"

namespace radix {

// RoPE frequency scaling, as transformers' rope_type (ROPE_INIT_FUNCTIONS). radix computes the
// inv_freq table on the host (src/model/rope.h); every type here has attention factor 1.
struct RopeScaling {
  enum class Type : uint8_t { kDefault, kLinear, kDynamic, kLlama3 };
  Type type = Type::kDefault;
  double factor = 1.0;                           // linear, dynamic, llama3
  double low_freq_factor = 1.0;                  // llama3
  double high_freq_factor = 4.0;                 // llama3
  int32_t original_max_position_embeddings = 0;  // llama3, dynamic (0: max_position_embeddings)
};
const char* rope_type_name(RopeScaling::Type type);

struct DecoderConfig {
  std::string family;  // the registry's name: "qwen3", "mistral", "qwen2", "llama", "gemma", ...
  int32_t hidden_size = 0;
  int32_t intermediate_size = 0;
  int32_t num_hidden_layers = 0;
  int32_t num_attention_heads = 0;
  int32_t num_key_value_heads = 0;
  int32_t head_dim = 0;
  double rope_theta = 1e6;
  RopeScaling rope_scaling;
  double rms_norm_eps = 1e-6;
  int32_t vocab_size = 0;
  bool tie_word_embeddings = true;
  int32_t max_position_embeddings = 0;
  std::vector<std::string> architectures;  // e.g. "Qwen3ForCausalLM"
  int32_t num_labels = 0;                  // sequence classification: rows of score.weight

  // Family options (what the layer functions and the weight list read).
  bool qk_norm = false;           // per-head q/k RMSNorm before RoPE (Qwen3)
  bool qkv_bias = false;          // q/k/v projections have a bias (Qwen2; Llama attention_bias)
  bool o_bias = false;            // o_proj has a bias (Llama attention_bias)
  bool mlp_bias = false;          // gate/up/down have a bias (Llama mlp_bias)
  bool sandwich_norms = false;    // Gemma2: norms after attention and MLP, and before the MLP
  bool scale_embeddings = false;  // Gemma: embeddings times sqrt(hidden) in the model dtype
  Activation activation = Activation::kSiLU;
  NormWeight norm_weight = NormWeight::kPlain;  // Gemma: (1 + w)
  double query_pre_attn_scalar = 0;             // Gemma2: softmax scale = this^-0.5 (0: head_dim)
  double attn_logit_softcap = 0;                // Gemma2: attention scores soft-capped (0: off)
  double final_logit_softcap = 0;               // Gemma2: LM-head logits soft-capped (0: off)
  // Sliding window in positions (0: none) and, per layer, whether the layer uses it.
  int32_t sliding_window = 0;
  std::vector<bool> sliding_layers;
  // false: bidirectional attention (is_causal false, use_bidirectional_attention): the model runs
  // without prefix dedup.
  bool causal = true;

  int32_t q_dim() const { return num_attention_heads * head_dim; }
  int32_t kv_dim() const { return num_key_value_heads * head_dim; }
  int32_t qkv_dim() const { return q_dim() + 2 * kv_dim(); }
  bool layer_is_sliding(int32_t layer) const {
    return sliding_window > 0 && layer < static_cast<int32_t>(sliding_layers.size()) &&
           sliding_layers[layer];
  }
  float attention_scale() const;
  // Parameters of one decoder layer's projections and MLP (what 2 * params * rows counts).
  int64_t layer_matmul_params() const;
};
// The name the model layer had when it ran Qwen3 alone.
using Qwen3Config = DecoderConfig;

// Parses config.json: the family comes from model_type through the registry
// (src/model/family_registry.cc), which parses the shared fields and then the family's own.
// Throws std::runtime_error naming the field for an unknown model_type, a missing or out-of-range
// field, or an unsupported option.
DecoderConfig parse_decoder_config(const nlohmann::json& json);
DecoderConfig load_decoder_config(const std::string& path);
// Checks internal consistency (positive sizes, heads divide, even head_dim); throws on failure.
void validate_decoder_config(const DecoderConfig& config);

// The real shapes of `random:<name>` (qwen3-0.6b|4b|8b, mistral-7b, qwen2-7b, llama3-8b,
// gemma2-9b). Throws std::invalid_argument listing them for another name.
DecoderConfig decoder_preset(const std::string& name);

// config.json helpers for the family files: each throws std::runtime_error("config.json: ...").
namespace config_json {
[[noreturn]] void fail(const std::string& what);
int32_t get_int(const nlohmann::json& j, const char* key, bool required = true,
                int32_t fallback = 0);
double get_number(const nlohmann::json& j, const char* key, double fallback);
bool get_bool(const nlohmann::json& j, const char* key, bool fallback);
std::string get_string(const nlohmann::json& j, const char* key, const std::string& fallback);
bool is_set(const nlohmann::json& j, const char* key);
// The shared decoder fields: sizes, eps, vocabulary, tying, architectures, labels, RoPE
// (transformers 4 rope_theta / rope_scaling and 5 rope_parameters), and the causal flags.
void parse_common(const nlohmann::json& j, DecoderConfig& c);
// Per-layer attention types: transformers 5 layer_types ("sliding_attention" /
// "full_attention") when present, else `fallback(layer)`.
template <typename Fallback>
void parse_layer_types(const nlohmann::json& j, DecoderConfig& c, Fallback fallback);
void parse_layer_types_array(const nlohmann::json& j, DecoderConfig& c);
// Gemma's activation: hidden_activation, else hidden_act; gelu_pytorch_tanh (and gelu, which
// transformers maps to the tanh approximation for Gemma) -> kGeluTanh.
Activation parse_gelu_tanh(const nlohmann::json& j);
// Gemma's fields (tied embeddings, theta 10000, attention_bias, (1 + w) norms, scaled
// embeddings, tanh-GELU), which Gemma2 extends (src/model/families/gemma.cc).
void parse_gemma(const nlohmann::json& j, DecoderConfig& c);
}  // namespace config_json

template <typename Fallback>
void config_json::parse_layer_types(const nlohmann::json& j, DecoderConfig& c, Fallback fallback) {
  c.sliding_layers.assign(c.num_hidden_layers, false);
  parse_layer_types_array(j, c);
  if (!c.sliding_layers.empty() && is_set(j, "layer_types")) return;
  for (int32_t l = 0; l < c.num_hidden_layers; ++l) c.sliding_layers[l] = fallback(l);
}

}  // namespace radix
