#include "model/decoder_layer.h"

namespace radix {

void project_input(Backend& be, const GemmInput& in, const Tensor& w, const Tensor& w_scale,
                   const Tensor& out, const Tensor& bias, bool accumulate) {
  if (in.x.dtype == DType::kF8E4M3) {
    be.linear_fp8(in.x, in.scale, w, w_scale, out, accumulate, bias);
  } else {
    project(be, in.x, w, w_scale, out, bias, accumulate);
  }
}

void add_norm_into(const LayerContext& ctx, const Tensor& residual, const Tensor& delta,
                   const Tensor& weight, const GemmInput& out) {
  ctx.be.add_rms_norm(residual, delta, weight, ctx.eps, out.x, ctx.c.norm_weight, out.scale);
}

void project_qkv(const LayerContext& ctx, const LayerWeights& w, const GemmInput& normed,
                 const Tensor& qkv) {
  project_input(ctx.be, normed, w.qkv, w.qkv_scale, qkv, w.qkv_bias);
}

void project_add_norm(const LayerContext& ctx, const GemmInput& in, const Tensor& w,
                      const Tensor& w_scale, const Tensor& bias, const Tensor& residual,
                      const Tensor& delta, const Tensor& weight, const GemmInput& out) {
  if (!ctx.accumulate_residual) {
    project_input(ctx.be, in, w, w_scale, delta, bias);
    add_norm_into(ctx, residual, delta, weight, out);
    return;
  }
  project_input(ctx.be, in, w, w_scale, residual, bias, /*accumulate=*/true);
  ctx.be.rms_norm(residual, weight, ctx.eps, out.x, ctx.c.norm_weight, out.scale);
}

void gate_and_activate(const LayerContext& ctx, const LayerWeights& w, const GemmInput& x,
                       const LayerScratch& s) {
  project_input(ctx.be, x, w.gate_up, w.gate_up_scale, s.gate_up, w.gate_up_bias);
  ctx.be.gated_activation(s.gate_up, ctx.c.activation, s.act.x, s.act.scale);
}

void gated_mlp(const LayerContext& ctx, const LayerWeights& w, const GemmInput& x,
               const Tensor& out, const LayerScratch& s) {
  gate_and_activate(ctx, w, x, s);
  project_input(ctx.be, s.act, w.down, w.down_scale, out, w.down_bias);
}

void finish_pre_norm_layer(const LayerContext& ctx, const LayerWeights& w, const Tensor& attn,
                           const Tensor& residual, const Tensor& next_norm,
                           const GemmInput& out_normed, const LayerScratch& s) {
  project_add_norm(ctx, GemmInput{attn, Tensor{}}, w.o, w.o_scale, w.o_bias, residual, s.delta,
                   w.post_attention_norm, out_normed);
  gate_and_activate(ctx, w, out_normed, s);
  project_add_norm(ctx, s.act, w.down, w.down_scale, w.down_bias, residual, s.delta, next_norm,
                   out_normed);
}

void rope_attention(const LayerContext& ctx, const LayerWeights& w, const GemmInput& normed,
                    const Tensor& qkv, const Tensor& attn) {
  project_qkv(ctx, w, normed, qkv);
  ctx.be.rope(qkv, ctx.shape, ctx.positions, ctx.inv_freq);
  ctx.attend(qkv, attn);
}

}  // namespace radix

namespace radix {
const FamilyLayer kPreNormRopeLayer{rope_attention, finish_pre_norm_layer};
}  // namespace radix
