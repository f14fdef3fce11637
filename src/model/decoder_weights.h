// A decoder's weights as the forward uses them: on the backend, each in the dtype its role needs
// (projections optionally fp8, see WeightNeeds::fp8_projections; the rest weight_dtype()), with
// q/k/v fused into one qkv weight and gate/up into one gate_up weight (one GEMM each). Which
// tensors exist follows the config's family options (biases, q/k-norms, Gemma2's extra norms).
#pragma once

#include <array>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/decoder_config.h"
#include "model/weight_source.h"

namespace radix {

struct LayerWeights {
  Buffer input_norm;           // [1, h]
  Buffer qkv;                  // [(Hq + 2 Hkv) d, h] = [q_proj; k_proj; v_proj]
  Buffer qkv_bias;             // [1, (Hq + 2 Hkv) d] (qkv_bias) or empty
  Buffer q_norm, k_norm;       // [1, d] (qk_norm) or empty
  Buffer o;                    // [h, Hq d]
  Buffer o_bias;               // [1, h] (o_bias) or empty
  Buffer post_attention_norm;  // [1, h]: pre-MLP norm, or (Gemma2) the norm of attention output
  Buffer pre_mlp_norm;         // [1, h] (Gemma2 pre_feedforward_layernorm) or empty
  Buffer post_mlp_norm;        // [1, h] (Gemma2 post_feedforward_layernorm) or empty
  Buffer gate_up;              // [2 I, h] = [gate_proj; up_proj]
  Buffer gate_up_bias;         // [1, 2 I] (mlp_bias) or empty
  Buffer down;                 // [h, I]
  Buffer down_bias;            // [1, h] (mlp_bias) or empty
  // With fp8 projections (WeightNeeds::fp8_projections) qkv, o, gate_up and down are kF8E4M3 and
  // these hold their per-output-channel scales, [1, rows] f32; empty otherwise.
  Buffer qkv_scale, o_scale, gate_up_scale, down_scale;
};

// out = x @ w^T + bias (+ out when accumulate) through Backend::linear, or Backend::linear_fp8
// when w is an fp8 projection (w_scale its per-channel scales; the backend quantises x per row).
void project(Backend& backend, const Tensor& x, const Tensor& w, const Tensor& w_scale,
             const Tensor& out, const Tensor& bias, bool accumulate = false);

struct DecoderWeights {
  Buffer embed;  // [V, h]
  std::vector<LayerWeights> layers;
  Buffer final_norm;  // [1, h]
  Buffer head_rows;   // [k, h]: the LM-head rows the reranker reads (empty if none)
  Buffer score;       // [labels, h] (empty unless a classifier)
  Buffer inv_freq;    // [1, d/2] f32: the rope table (rebuilt per batch for dynamic scaling)
};

struct ExpectedTensor {
  std::string name;  // without the "model." prefix
  std::array<int64_t, 2> shape;
  bool required = true;
};

// Every tensor a checkpoint of this config may hold, with its shape ([1, n] for vectors): the
// decoder (required), lm_head.weight (optional; required by the reranker when embeddings are
// untied) and score.weight (optional; required by the classifier).
std::vector<ExpectedTensor> expected_decoder_tensors(const DecoderConfig& config);

struct WeightNeeds {
  std::vector<int32_t> head_rows;  // LM-head rows to load (the reranker's tokens), or none
  bool classifier = false;         // load score.weight
  // Projections (q/k/v, o, gate/up, down) as e4m3 with per-channel scales: as the checkpoint
  // stores them when it is an fp8 one with per-tensor or per-channel scales, else quantised on
  // the backend; norms, embeddings and head rows keep weight_dtype(). Without it, fp8-stored
  // projections are dequantised (value * scale) into weight_dtype().
  bool fp8_projections = false;
};

// Allocates and fills every weight on `backend`. Throws std::runtime_error naming the tensor when
// one is missing or has the wrong shape.
DecoderWeights load_decoder_weights(const DecoderConfig& config, const WeightSource& source,
                                    Backend& backend, const WeightNeeds& needs);

}  // namespace radix
