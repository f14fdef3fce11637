// The interface between the shared forward (decoder_forward.cc: plan, uploads, masks, scatter,
// last-layer pruning, heads) and a family's layer function (src/model/families/). A layer is
// split where the last-layer pruning cuts it: `attention` runs on every row (the last rows attend
// to all their ancestors), `finish` (o_proj onwards) runs on every row or, in the last layer, on
// each sequence's last row alone.
#pragma once

#include <functional>

#include "backend/backend.h"
#include "model/decoder_config.h"
#include "model/decoder_weights.h"

namespace radix {

struct LayerContext {
  Backend& be;
  const DecoderConfig& c;
  AttentionShape shape;  // heads, the config's scale and soft-cap
  float eps;
  Tensor positions;  // [n] i32: each row's position
  Tensor inv_freq;   // [1, head_dim / 2] f32: the rope table (families using Backend::rope)
  // Runs attention over `qkv` into `out` ([n, q_dim]) in the batch's mode, with the current
  // layer's mask (its sliding window included).
  std::function<void(const Tensor& qkv, const Tensor& out)> attend;
  // Whether project_add_norm lets the projection add itself into the residual (else through
  // the delta scratch and add_norm_into).
  bool accumulate_residual = true;
};

// The rows a projection reads: activation-dtype rows (the backend quantises them itself for an
// fp8 weight), or, in the fp8 forward, the same rows as e4m3 with one f32 scale per row, written
// by the kernel that produced them (the norm, the gated activation) so that no separate
// quantisation pass runs. Norms and activations write into it with the helpers below.
struct GemmInput {
  Tensor x;      // [r, k]: the activation dtype, or kF8E4M3
  Tensor scale;  // [r, 1] f32 when x is kF8E4M3, else empty
  GemmInput first_rows(int64_t r) const {
    return {x.first_rows(r), scale.data == nullptr ? Tensor{} : scale.first_rows(r)};
  }
};

// Scratch rows for `finish` (first_rows of the arena, as many rows as the call works on).
struct LayerScratch {
  Tensor delta;    // [r, hidden]
  Tensor tmp;      // [r, hidden]
  Tensor gate_up;  // [r, 2 * intermediate]
  GemmInput act;   // [r, intermediate]: the down projection's input
};

struct FamilyLayer {
  // normed: the layer's input-normed rows. Writes the projected (and rotated) q/k/v into `qkv`
  // and the attention output into `attn`.
  void (*attention)(const LayerContext& ctx, const LayerWeights& w, const GemmInput& normed,
                    const Tensor& qkv, const Tensor& attn);
  // attn -> residual (updated in place); out_normed = next_norm(residual), where next_norm is
  // the next layer's input norm or the final norm.
  void (*finish)(const LayerContext& ctx, const LayerWeights& w, const Tensor& attn,
                 const Tensor& residual, const Tensor& next_norm, const GemmInput& out_normed,
                 const LayerScratch& s);
};

// Building blocks the family files share.
// out = in @ w^T + bias (+ out when accumulate): Backend::linear, or Backend::linear_fp8 for an
// fp8 weight (with in's scales when in is e4m3).
void project_input(Backend& be, const GemmInput& in, const Tensor& w, const Tensor& w_scale,
                   const Tensor& out, const Tensor& bias, bool accumulate = false);
// residual += delta; out = norm(residual), in out's form (Backend::add_rms_norm).
void add_norm_into(const LayerContext& ctx, const Tensor& residual, const Tensor& delta,
                   const Tensor& weight, const GemmInput& out);
// qkv = normed @ [q; k; v]^T (+ bias).
void project_qkv(const LayerContext& ctx, const LayerWeights& w, const GemmInput& normed,
                 const Tensor& qkv);
// residual += in @ w^T (+ bias); out = norm(residual), in out's form. With
// ctx.accumulate_residual the projection adds itself into the residual in its GEMM's epilogue,
// whatever the residual's dtype: the product is never rounded to the activation dtype nor makes
// a round trip through memory, and the norm reads one tensor instead of two (on the GPU the
// epilogue's extra traffic mostly hides behind the GEMM's arithmetic; the norm's does not).
// Otherwise delta = the projection, then add_norm_into.
void project_add_norm(const LayerContext& ctx, const GemmInput& in, const Tensor& w,
                      const Tensor& w_scale, const Tensor& bias, const Tensor& residual,
                      const Tensor& delta, const Tensor& weight, const GemmInput& out);
// s.act = act(gate(x)) * up(x) (+ biases), through s.gate_up: the down projection's input.
void gate_and_activate(const LayerContext& ctx, const LayerWeights& w, const GemmInput& x,
                       const LayerScratch& s);
// out = down(act(gate(x)) * up(x)) (+ biases), through s.gate_up and s.act.
void gated_mlp(const LayerContext& ctx, const LayerWeights& w, const GemmInput& x,
               const Tensor& out, const LayerScratch& s);
// The pre-norm layer of Llama, Mistral, Qwen2, Qwen3 and Gemma after attention:
// residual += o_proj(attn); h = post_attention_norm(residual); residual += mlp(h);
// out_normed = next_norm(residual).
void finish_pre_norm_layer(const LayerContext& ctx, const LayerWeights& w, const Tensor& attn,
                           const Tensor& residual, const Tensor& next_norm,
                           const GemmInput& out_normed, const LayerScratch& s);
// Attention of the families without q/k-norm: project, rotate with the table, attend.
void rope_attention(const LayerContext& ctx, const LayerWeights& w, const GemmInput& normed,
                    const Tensor& qkv, const Tensor& attn);

}  // namespace radix

namespace radix {
// The pre-norm layer with RoPE from the table and a gated MLP: Llama, Mistral, Qwen2 and Gemma
// (their differences are config options the blocks above read: biases, (1 + w) norms, GeGLU).
extern const FamilyLayer kPreNormRopeLayer;
}  // namespace radix
