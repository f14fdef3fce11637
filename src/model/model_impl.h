// Model internals shared by model.cc (loading) and decoder_forward.cc (the forward).
#pragma once

#include <memory>

#include "backend/backend.h"
#include "core/fold_plan.h"
#include "model/decoder_weights.h"
#include "model/family.h"
#include "model/model.h"
#include "model/recorded_forwards.h"

namespace radix {

// Activations, allocated for the largest batch seen so far and reused (views of the first rows).
struct DecoderArena {
  int64_t rows = 0, tokens = 0, seqs = 0;  // capacities
  uint64_t generation = 0;                 // moves whenever reserve allocates a buffer
  // Per compact row.
  Buffer residual, normed, qkv, attn, delta, tmp, gate_up, act;
  // fp8 projections only: the e4m3 forms of normed and act with their per-row f32 scales.
  Buffer normed_fp8, normed_scale, act_fp8, act_scale;
  Buffer ids, positions, subtree_end, gather;
  // Per flat token (scatter mode).
  Buffer qkv_flat, attn_flat, scatter, positions_flat;
  // Per sequence.
  Buffer last_residual, last_attn, last_normed, head_out, last_rows, cu_seqlens;

  void reserve(Backend& backend, const DecoderConfig& c, int64_t need_rows, int64_t need_tokens,
               int64_t need_seqs, int64_t head_cols, bool fp8 = false);
};

struct Model::Impl {
  ModelInfo info;
  std::unique_ptr<Backend> backend;
  const Family* family = nullptr;
  DecoderWeights weights;
  DecoderArena arena;
  FoldPlan plan;              // reused batch after batch, when the caller brings none
  RecordedForwards recorded;  // small tree batches' recordings, by bucket

  ForwardResult forward(const RaggedBatch& batch, const ForwardOptions& options);
  ForwardResult forward(const RaggedBatch& batch, const FoldPlan& plan,
                        const ForwardOptions& options);
  // The mode a batch runs in: the one asked for, or off for a bidirectional model.
  AttentionMode effective_mode(AttentionMode asked) const;
};

}  // namespace radix
