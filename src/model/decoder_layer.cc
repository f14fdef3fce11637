#include "model/decoder_layer.h"

namespace radix {

void project_qkv(const LayerContext& ctx, const LayerWeights& w, const Tensor& normed,
                 const Tensor& qkv) {
  ctx.be.linear(normed, w.qkv, qkv, false, w.qkv_bias);
}

void gated_mlp(const LayerContext& ctx, const LayerWeights& w, const Tensor& x, const Tensor& out,
               const LayerScratch& s) {
  ctx.be.linear(x, w.gate_up, s.gate_up, false, w.gate_up_bias);
  ctx.be.gated_activation(s.gate_up, ctx.c.activation, s.act);
  ctx.be.linear(s.act, w.down, out, false, w.down_bias);
}

void finish_pre_norm_layer(const LayerContext& ctx, const LayerWeights& w, const Tensor& attn,
                           const Tensor& residual, const Tensor& next_norm,
                           const Tensor& out_normed, const LayerScratch& s) {
  Backend& be = ctx.be;
  const NormWeight nw = ctx.c.norm_weight;
  be.linear(attn, w.o, s.delta, false, w.o_bias);
  be.add_rms_norm(residual, s.delta, w.post_attention_norm, ctx.eps, out_normed, nw);
  gated_mlp(ctx, w, out_normed, s.delta, s);
  be.add_rms_norm(residual, s.delta, next_norm, ctx.eps, out_normed, nw);
}

void rope_attention(const LayerContext& ctx, const LayerWeights& w, const Tensor& normed,
                    const Tensor& qkv, const Tensor& attn) {
  project_qkv(ctx, w, normed, qkv);
  ctx.be.rope(qkv, ctx.shape, ctx.positions, ctx.inv_freq);
  ctx.attend(qkv, attn);
}

}  // namespace radix

namespace radix {
const FamilyLayer kPreNormRopeLayer{rope_attention, finish_pre_norm_layer};
}  // namespace radix
