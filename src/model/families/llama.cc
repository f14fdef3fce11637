// Llama (LlamaModel / LlamaForCausalLM): RoPE with llama3 / linear / dynamic scaling,
// attention_bias (q, k, v and o) and mlp_bias, SwiGLU. Llama-3-based embedders and rerankers.
#include <nlohmann/json.hpp>

#include "model/family.h"

namespace radix {
namespace {

using namespace config_json;

void parse(const nlohmann::json& j, DecoderConfig& c) {
  c.tie_word_embeddings = false;
  c.rope_theta = 10000;
  parse_common(j, c);
  c.qkv_bias = c.o_bias = get_bool(j, "attention_bias", false);
  c.mlp_bias = get_bool(j, "mlp_bias", false);
  const std::string act = get_string(j, "hidden_act", "silu");
  if (act != "silu") fail("hidden_act \"" + act + "\" is not supported (only silu)");
}

constexpr const char* kPresets[] = {"llama3-8b", nullptr};

// Llama-3.1-8B: llama3 rope scaling over 8192 original positions.
DecoderConfig preset(const std::string&) {
  DecoderConfig c;
  c.hidden_size = 4096, c.intermediate_size = 14336, c.num_hidden_layers = 32;
  c.num_attention_heads = 32, c.num_key_value_heads = 8, c.head_dim = 128;
  c.vocab_size = 128256, c.max_position_embeddings = 131072, c.rms_norm_eps = 1e-5;
  c.rope_theta = 500000;
  c.rope_scaling = {RopeScaling::Type::kLlama3, 8.0, 1.0, 4.0, 8192};
  c.tie_word_embeddings = false;
  c.architectures = {"LlamaForCausalLM"};
  return c;
}

}  // namespace

extern const Family kLlamaFamily{"llama", "llama", parse, &kPreNormRopeLayer, kPresets, preset};

}  // namespace radix
