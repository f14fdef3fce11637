// The heads applied to the final-normed hidden states: each sequence's last token (embedding
// with last-token pooling, reranker, classifier) or all of its tokens (mean pooling).
#pragma once

#include <vector>

#include "backend/backend.h"
#include "model/decoder_weights.h"
#include "model/model.h"

namespace radix {

// Throws std::invalid_argument when `head` cannot be served by these weights or the options are
// out of range (e.g. dimensions beyond the hidden size).
void check_head_options(HeadKind head, const ForwardOptions& options, const ModelInfo& info,
                        const DecoderWeights& weights);

// Columns of ForwardResult::values for this head.
int32_t head_dim_of(HeadKind head, const ForwardOptions& options, const ModelInfo& info);

// The head in two halves, so that a forward can queue its device work with the layers' (and
// record it with them, docs/backend.md "Recorded work") and read it after.
// enqueue_head: queues the head's device work on last_normed ([rows, hidden] on the backend) and
// returns what read_head reads: the final-normed rows themselves (embedding) or their logits in
// `scratch` (reranker: the LM-head rows; classifier: score.weight).
Tensor enqueue_head(HeadKind head, const DecoderWeights& weights, Backend& backend,
                    const Tensor& last_normed, const Buffer& scratch);
// read_head: downloads the first `rows` rows of enqueue_head's output and fills result.values
// (and yes_no_logits), one entry per row. Embedding: truncate to `dimensions`, L2-normalise if
// asked. Reranker: Gemma2's soft-cap, score = sigmoid(yes - no) or sigmoid(logit) for one token.
void read_head(HeadKind head, const ForwardOptions& options, const ModelInfo& info,
               Backend& backend, const Tensor& head_out, int64_t rows, ForwardResult& result);

// Mean pooling (sentence-transformers pooling_mode_mean_tokens): per sequence, the mean of its
// tokens' final-normed rows (rows_host: [rows, hidden]; scatter: token -> row), accumulated in
// double, then truncated and normalised as the embedding head. Fills result.values and dim.
void mean_pool_embeddings(const std::vector<float>& rows_host, const std::vector<int32_t>& scatter,
                          const std::vector<int32_t>& cu_seqlens, const ForwardOptions& options,
                          const ModelInfo& info, ForwardResult& result);

// In place on rows of `dim` floats: x / max(||x||, 1e-12) (torch.nn.functional.normalize).
void l2_normalize_rows(float* data, int64_t rows, int64_t dim);

}  // namespace radix
