// The heads applied to the final-normed hidden state of each sequence's last token.
#pragma once

#include "backend/backend.h"
#include "model/model.h"
#include "model/qwen3_weights.h"

namespace radix {

// Throws std::invalid_argument when `head` cannot be served by these weights or the options are
// out of range (e.g. dimensions beyond the hidden size).
void check_head_options(HeadKind head, const ForwardOptions& options, const Qwen3Config& config,
                        const Qwen3Weights& weights);

// Columns of ForwardResult::values for this head.
int32_t head_dim_of(HeadKind head, const ForwardOptions& options, const Qwen3Config& config);

// last_normed: [seqs, hidden] on the backend. Embedding: download, truncate to `dimensions`,
// L2-normalise if asked. Reranker: the two-row LM-head GEMV, score = sigmoid(yes - no).
// Classifier: score.weight logits. Fills result.values (and yes_no_logits).
void apply_head(HeadKind head, const ForwardOptions& options, const Qwen3Config& config,
                const Qwen3Weights& weights, Backend& backend, const Tensor& last_normed,
                const Buffer& scratch, ForwardResult& result);

// In place on rows of `dim` floats: x / max(||x||, 1e-12) (torch.nn.functional.normalize).
void l2_normalize_rows(float* data, int64_t rows, int64_t dim);

}  // namespace radix
