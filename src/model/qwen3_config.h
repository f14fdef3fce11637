// The Qwen3 hyper-parameters radix needs, read from a Hugging Face config.json.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace radix {

struct Qwen3Config {
  int32_t hidden_size = 0;
  int32_t intermediate_size = 0;
  int32_t num_hidden_layers = 0;
  int32_t num_attention_heads = 0;
  int32_t num_key_value_heads = 0;
  int32_t head_dim = 0;
  double rope_theta = 1e6;
  double rms_norm_eps = 1e-6;
  int32_t vocab_size = 0;
  bool tie_word_embeddings = true;
  int32_t max_position_embeddings = 0;
  std::vector<std::string> architectures;  // e.g. "Qwen3ForCausalLM"
  int32_t num_labels = 0;                  // sequence classification: rows of score.weight

  int32_t q_dim() const { return num_attention_heads * head_dim; }
  int32_t kv_dim() const { return num_key_value_heads * head_dim; }
  int32_t qkv_dim() const { return q_dim() + 2 * kv_dim(); }
  // Parameters of one decoder layer's projections and MLP (what 2 * params * rows counts).
  int64_t layer_matmul_params() const;
};

// Parses config.json text. Throws std::runtime_error naming the field for a model type other than
// "qwen3", a missing or out-of-range field, or an unsupported option (rope_scaling, a sliding
// window in use, attention bias, an activation other than silu).
Qwen3Config parse_qwen3_config(const nlohmann::json& json);
Qwen3Config load_qwen3_config(const std::string& path);
// Checks internal consistency (positive sizes, heads divide, even head_dim); throws on failure.
void validate_qwen3_config(const Qwen3Config& config);

// The real shapes of ARCHITECTURE.md: "qwen3-0.6b", "qwen3-4b", "qwen3-8b". Throws on other names.
Qwen3Config qwen3_preset(const std::string& name);

}  // namespace radix
