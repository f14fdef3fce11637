// Gemma (GemmaModel / GemmaForCausalLM): RMSNorm with (1 + w), embeddings times sqrt(hidden),
// GeGLU with tanh-approximated GELU, head_dim 256 and one KV head in the real models.
// bge-reranker-v2-gemma (the "Yes" logit).
#include <nlohmann/json.hpp>

#include "model/family.h"

namespace radix {

void config_json::parse_gemma(const nlohmann::json& j, DecoderConfig& c) {
  c.tie_word_embeddings = true;
  c.rope_theta = 10000;
  parse_common(j, c);
  c.qkv_bias = c.o_bias = get_bool(j, "attention_bias", false);
  c.norm_weight = NormWeight::kPlusOne;
  c.scale_embeddings = true;
  c.activation = parse_gelu_tanh(j);
}

extern const Family kGemmaFamily{"gemma", "gemma", config_json::parse_gemma, &kPreNormRopeLayer,
                                 nullptr, nullptr};

}  // namespace radix
