// The Qwen3 weights as the forward uses them: on the backend, in its weight dtype, with q/k/v
// fused into one qkv weight and gate/up into one gate_up weight (one GEMM each).
#pragma once

#include <array>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/qwen3_config.h"
#include "model/weight_source.h"

namespace radix {

struct Qwen3LayerWeights {
  Buffer input_norm;  // [1, h]
  Buffer qkv;         // [(Hq + 2 Hkv) d, h] = [q_proj; k_proj; v_proj]
  Buffer q_norm;      // [1, d]
  Buffer k_norm;      // [1, d]
  Buffer o;           // [h, Hq d]
  Buffer post_norm;   // [1, h]
  Buffer gate_up;     // [2 I, h] = [gate_proj; up_proj]
  Buffer down;        // [h, I]
};

struct Qwen3Weights {
  Buffer embed;  // [V, h]
  std::vector<Qwen3LayerWeights> layers;
  Buffer final_norm;  // [1, h]
  Buffer yes_no;      // [2, h]: LM-head rows of "yes", "no" (empty if no head)
  Buffer score;       // [labels, h] (empty unless a classifier)
};

struct ExpectedTensor {
  std::string name;  // without the "model." prefix
  std::array<int64_t, 2> shape;
  bool required = true;
};

// Every tensor a Qwen3 checkpoint may hold, with its shape ([1, n] for vectors): the decoder
// (required), lm_head.weight (optional; required by the reranker when embeddings are untied) and
// score.weight (optional; required by the classifier).
std::vector<ExpectedTensor> expected_qwen3_tensors(const Qwen3Config& config);

struct WeightNeeds {
  bool reranker = false;    // load the two yes/no LM-head rows
  bool classifier = false;  // load score.weight
};

// Allocates and fills every weight on `backend`. Throws std::runtime_error naming the tensor when
// one is missing or has the wrong shape.
Qwen3Weights load_qwen3_weights(const Qwen3Config& config, const WeightSource& source,
                                Backend& backend, const WeightNeeds& needs);

}  // namespace radix
