// Gemma2 (Gemma2Model / Gemma2ForCausalLM): Gemma plus four norms per layer (around attention
// and around the MLP), attention logit soft-capping, softmax scale query_pre_attn_scalar^-0.5,
// a sliding window on the layers layer_types marks (every other one, from the first, in
// transformers 4 files) and a final soft-cap on the LM-head logits. bge-multilingual-gemma2.
#include <nlohmann/json.hpp>

#include "model/family.h"

namespace radix {
namespace {

using namespace config_json;

void parse(const nlohmann::json& j, DecoderConfig& c) {
  parse_gemma(j, c);
  c.sandwich_norms = true;
  c.query_pre_attn_scalar = get_number(j, "query_pre_attn_scalar", 256);
  c.attn_logit_softcap = get_number(j, "attn_logit_softcapping", 0);
  c.final_logit_softcap = get_number(j, "final_logit_softcapping", 0);
  c.sliding_window = get_int(j, "sliding_window", false, 0);
  parse_layer_types(j, c, [](int32_t l) { return l % 2 == 0; });
}

// Gemma2's layer after attention: the attention output and the MLP output are each normed before
// they join the residual, and the MLP input has its own norm.
void finish(const LayerContext& ctx, const LayerWeights& w, const Tensor& attn,
            const Tensor& residual, const Tensor& next_norm, const GemmInput& out_normed,
            const LayerScratch& s) {
  Backend& be = ctx.be;
  const NormWeight nw = ctx.c.norm_weight;
  project(be, attn, w.o, w.o_scale, s.delta, w.o_bias);
  be.rms_norm(s.delta, w.post_attention_norm, ctx.eps, s.tmp, nw);
  add_norm_into(ctx, residual, s.tmp, w.pre_mlp_norm, out_normed);
  gated_mlp(ctx, w, out_normed, s.delta, s);
  be.rms_norm(s.delta, w.post_mlp_norm, ctx.eps, s.tmp, nw);
  add_norm_into(ctx, residual, s.tmp, next_norm, out_normed);
}

const FamilyLayer kLayer{rope_attention, finish};

constexpr const char* kPresets[] = {"gemma2-9b", nullptr};

// gemma-2-9b (bge-multilingual-gemma2's shape).
DecoderConfig preset(const std::string&) {
  DecoderConfig c;
  c.hidden_size = 3584, c.intermediate_size = 14336, c.num_hidden_layers = 42;
  c.num_attention_heads = 16, c.num_key_value_heads = 8, c.head_dim = 256;
  c.vocab_size = 256000, c.max_position_embeddings = 8192, c.rms_norm_eps = 1e-6;
  c.rope_theta = 10000, c.tie_word_embeddings = true;
  c.norm_weight = NormWeight::kPlusOne, c.scale_embeddings = true, c.sandwich_norms = true;
  c.activation = Activation::kGeluTanh;
  c.query_pre_attn_scalar = 256, c.attn_logit_softcap = 50, c.final_logit_softcap = 30;
  c.sliding_window = 4096;
  for (int32_t l = 0; l < c.num_hidden_layers; ++l) c.sliding_layers.push_back(l % 2 == 0);
  c.architectures = {"Gemma2Model"};
  return c;
}

}  // namespace

extern const Family kGemma2Family{"gemma2", "gemma2", parse, &kLayer, kPresets, preset};

}  // namespace radix
