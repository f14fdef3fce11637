#include "model/decoder_layer.h"

namespace radix {

void project_qkv(const LayerContext& ctx, const LayerWeights& w, const Tensor& normed,
                 const Tensor& qkv) {
  project(ctx.be, normed, w.qkv, w.qkv_scale, qkv, w.qkv_bias);
}

void gated_mlp(const LayerContext& ctx, const LayerWeights& w, const Tensor& x, const Tensor& out,
               const LayerScratch& s) {
  project(ctx.be, x, w.gate_up, w.gate_up_scale, s.gate_up, w.gate_up_bias);
  ctx.be.gated_activation(s.gate_up, ctx.c.activation, s.act);
  project(ctx.be, s.act, w.down, w.down_scale, out, w.down_bias);
}

void finish_pre_norm_layer(const LayerContext& ctx, const LayerWeights& w, const Tensor& attn,
                           const Tensor& residual, const Tensor& next_norm,
                           const Tensor& out_normed, const LayerScratch& s) {
  Backend& be = ctx.be;
  const NormWeight nw = ctx.c.norm_weight;
  project(be, attn, w.o, w.o_scale, s.delta, w.o_bias);
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
