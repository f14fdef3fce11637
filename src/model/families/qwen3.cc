// Qwen3 (Qwen3Model / Qwen3ForCausalLM / Qwen3ForSequenceClassification): per-head q/k RMSNorm
// fused with RoPE, no biases, SwiGLU. Qwen3-Embedding and Qwen3-Reranker.
#include <nlohmann/json.hpp>

#include "model/family.h"

namespace radix {
namespace {

using namespace config_json;

void parse(const nlohmann::json& j, DecoderConfig& c) {
  c.tie_word_embeddings = true;
  parse_common(j, c);
  if (c.rope_scaling.type != RopeScaling::Type::kDefault) {
    fail(std::string("rope_type \"") + rope_type_name(c.rope_scaling.type) +
         "\" is not supported for qwen3 (only default)");
  }
  c.qk_norm = true;
  if (get_bool(j, "attention_bias", false)) fail("attention_bias is true; not supported");
  const std::string act = get_string(j, "hidden_act", "silu");
  if (act != "silu") fail("hidden_act \"" + act + "\" is not supported (only silu)");
  // transformers: layers from max_window_layers on slide when use_sliding_window is set.
  if (get_bool(j, "use_sliding_window", false)) {
    c.sliding_window = get_int(j, "sliding_window");
    const int32_t first = get_int(j, "max_window_layers", false, 0);
    parse_layer_types(j, c, [&](int32_t l) { return l >= first; });
  }
}

void attention(const LayerContext& ctx, const LayerWeights& w, const GemmInput& normed,
               const Tensor& qkv, const Tensor& attn) {
  project_qkv(ctx, w, normed, qkv);
  ctx.be.qk_norm_rope(qkv, ctx.shape, w.q_norm, w.k_norm, ctx.positions, ctx.eps,
                      static_cast<float>(ctx.c.rope_theta));
  ctx.attend(qkv, attn);
}

const FamilyLayer kLayer{attention, finish_pre_norm_layer};

constexpr const char* kPresets[] = {"qwen3-0.6b", "qwen3-4b", "qwen3-8b", nullptr};

DecoderConfig preset(const std::string& name) {
  DecoderConfig c;
  c.qk_norm = true;
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
  } else {  // qwen3-8b
    c.hidden_size = 4096, c.num_hidden_layers = 36, c.num_attention_heads = 32;
    c.num_key_value_heads = 8, c.intermediate_size = 12288, c.tie_word_embeddings = false;
  }
  return c;
}

}  // namespace

extern const Family kQwen3Family{"qwen3", "qwen3", parse, &kLayer, kPresets, preset};

}  // namespace radix
