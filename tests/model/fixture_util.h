// Reading the reference fixtures of tools/make_fixtures.py and building the tiny model.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "formula_weights.h"
#include "model/decoder_config.h"
#include "model/model.h"

namespace radix::testing {

inline std::string fixture_path(const std::string& name) {
  return std::string(RADIX_SOURCE_DIR) + "/tests/fixtures/" + name;
}

inline nlohmann::json read_fixture(const std::string& name) {
  std::ifstream in(fixture_path(name));
  if (!in) throw std::runtime_error("cannot open fixture " + fixture_path(name));
  std::stringstream text;
  text << in.rdbuf();
  return nlohmann::json::parse(text.str());
}

// The small decoders the model tests share, of `preset`'s family (its norms, rope and biases): two
// layers, rope theta 10^4, and either hidden 64 with 4 q / 2 kv heads and vocab 64 (many random
// trials, sequences that share prefixes) or, with `smaller`, hidden 32 with 2 / 1 heads and vocab
// 96 (model folders written to disk). Tests change what they need on top.
inline DecoderConfig small_decoder(const std::string& preset, int32_t head_dim,
                                   bool smaller = false) {
  DecoderConfig c = decoder_preset(preset);
  c.hidden_size = smaller ? 32 : 64;
  c.intermediate_size = smaller ? 48 : 96;
  c.num_hidden_layers = 2;
  c.num_attention_heads = smaller ? 2 : 4;
  c.num_key_value_heads = smaller ? 1 : 2;
  c.head_dim = head_dim;
  c.vocab_size = smaller ? 96 : 64;
  c.max_position_embeddings = smaller ? 128 : 512;
  c.rope_theta = 10000;
  return c;
}

// The tiny Qwen3 of qwen3_tiny.json with formula weights, on the CPU backend.
inline std::unique_ptr<Model> make_tiny_model(const nlohmann::json& fixture, int num_labels = 0,
                                              HeadKind head = HeadKind::kEmbedding) {
  ModelInfo info;
  info.spec = "formula:qwen3_tiny";
  info.config = parse_decoder_config(fixture.at("config"));
  info.config.num_labels = num_labels;
  info.head = head;
  const FormulaWeights weights(info.config);
  LoadOptions options;
  options.backend.threads = 2;
  return Model::create(info, weights, options);
}

// max |a - b| / max |b| (the relative error of a vector against a reference).
inline double rel_err(const float* a, const float* b, size_t n) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < n; ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
  }
  return scale == 0 ? diff : diff / scale;
}

// `shuffled` holds `batch`'s sequences in another order (shuffled[j] = batch[order[j]]): in every
// mode each sequence's pooled value is the same. In tree mode with deduplication it is
// bit-identical (same trie, same rows, same tiles, and the last layer and head run on the distinct
// last rows in trie order, whatever BLAS kernel rounds by row position: CI also runs this under
// OPENBLAS_CORETYPE=Haswell); where the flat layout moved (off, scatter, or a bidirectional model,
// which always runs flat) the attention tiles differ, so within `tol` relative.
inline void expect_order_invariant(Model& model, const RaggedBatch& batch,
                                   const RaggedBatch& shuffled, const std::vector<int>& order,
                                   double tol) {
  for (const AttentionMode mode :
       {AttentionMode::kTree, AttentionMode::kScatter, AttentionMode::kOff}) {
    ForwardOptions options;
    options.mode = mode;
    const ForwardResult a = model.forward(batch, options);
    const ForwardResult b = model.forward(shuffled, options);
    for (size_t j = 0; j < order.size(); ++j) {
      const float* got = b.values.data() + j * b.dim;
      const float* want = a.values.data() + order[j] * a.dim;
      if (mode == AttentionMode::kTree && model.info().dedup()) {
        EXPECT_TRUE(std::equal(got, got + b.dim, want)) << "sequence " << order[j];
      } else {
        EXPECT_LE(rel_err(got, want, b.dim), tol)
            << attention_mode_name(mode) << " sequence " << order[j];
      }
    }
  }
}

// Runs `batch` with attention off, then scatter and tree: each folded mode runs no more rows than
// off, and its hidden states (token by token) and pooled values are within `tol` relative of
// off's. `trace` names the case in a failure.
inline void expect_modes_agree(Model& model, const RaggedBatch& batch, double tol,
                               const std::string& trace) {
  const int64_t h = model.info().hidden_size();
  ForwardOptions options;
  options.return_hidden_states = true;
  options.mode = AttentionMode::kOff;
  const ForwardResult off = model.forward(batch, options);
  for (const AttentionMode mode : {AttentionMode::kScatter, AttentionMode::kTree}) {
    options.mode = mode;
    const ForwardResult r = model.forward(batch, options);
    EXPECT_LE(r.num_rows, off.num_rows);
    ASSERT_EQ(r.hidden_states.size(), off.hidden_states.size());
    for (int64_t t = 0; t < batch.num_tokens(); ++t) {
      ASSERT_LE(rel_err(r.hidden_states.data() + t * h, off.hidden_states.data() + t * h, h), tol)
          << trace << " mode " << attention_mode_name(mode) << " token " << t;
    }
    ASSERT_EQ(r.values.size(), off.values.size());
    EXPECT_LE(rel_err(r.values.data(), off.values.data(), off.values.size()), tol)
        << trace << " mode " << attention_mode_name(mode);
  }
}

// Without hidden states the last layer's o_proj and MLP run on each sequence's last row only: in
// every mode the head's values equal the full forward's within `tol` relative. Give it a batch of
// more sequences than trie rows (copies of one sequence): the row-sized buffers must then hold a
// row per sequence.
inline void expect_last_rows_match_full_forward(Model& model,
                                                const std::vector<RaggedBatch>& batches,
                                                double tol) {
  for (const RaggedBatch& batch : batches) {
    for (const AttentionMode mode :
         {AttentionMode::kOff, AttentionMode::kScatter, AttentionMode::kTree}) {
      ForwardOptions options;
      options.mode = mode;
      const ForwardResult pruned = model.forward(batch, options);
      options.return_hidden_states = true;
      const ForwardResult full = model.forward(batch, options);
      ASSERT_EQ(pruned.values.size(), full.values.size());
      ASSERT_FALSE(pruned.values.empty());
      EXPECT_LE(rel_err(pruned.values.data(), full.values.data(), full.values.size()), tol)
          << attention_mode_name(mode) << ", " << batch.num_sequences() << " sequences";
    }
  }
}

}  // namespace radix::testing
