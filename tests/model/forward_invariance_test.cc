// Invariances that define the correctness of dedup (STYLE.md 7): off, scatter and tree agree on
// random tries; a batch equals each of its inputs run alone; shuffling inputs changes nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "fixture_util.h"
#include "model/demo_model.h"
#include "model/model.h"
#include "random_batch.h"

namespace radix::testing {
namespace {

// Small enough for many random trials, head_dim 32, vocab 64 so random sequences share prefixes.
Qwen3Config small_config() { return small_decoder("qwen3-0.6b", 32); }

std::unique_ptr<Model> small_model() {
  ModelInfo info;
  info.spec = "formula:small";
  info.config = small_config();
  LoadOptions options;
  options.backend.threads = 2;
  return Model::create(info, FormulaWeights(info.config), options);
}

// Random sequences over a small alphabet: shared prefixes, duplicates, single tokens.
RaggedBatch random_batch(std::mt19937& rng, int num_seqs, int max_len, int alphabet) {
  return testing::random_batch(rng, num_seqs, max_len, 0, alphabet - 1);
}

std::vector<float> sequence_slice(const RaggedBatch& b, const std::vector<float>& hidden, int s,
                                  int h) {
  return std::vector<float>(hidden.begin() + static_cast<int64_t>(b.cu_seqlens[s]) * h,
                            hidden.begin() + static_cast<int64_t>(b.cu_seqlens[s + 1]) * h);
}

constexpr double kModeRelTol = 1e-5;  // same math, different attention tiling (docs/numerics.md)

TEST(ForwardInvariance, ModesAgreeOnRandomTries) {
  auto model = small_model();
  std::mt19937 rng(1);
  for (int trial = 0; trial < 12; ++trial) {
    const RaggedBatch batch = random_batch(rng, 1 + trial % 9, 1 + 8 * (trial % 5), 1 + trial % 4);
    expect_modes_agree(*model, batch, kModeRelTol, "trial " + std::to_string(trial));
  }
}

// Without hidden states the last layer's o_proj and MLP run on each sequence's last row only;
// the head's values must equal those of the full forward. The first batch of a fresh model has
// 40 copies of one sequence (3 rows, 40 sequences), so the row-sized buffers must hold a row per
// sequence, not just per trie row.
TEST(ForwardInvariance, LastLayerOnLastRowsMatchesTheFullForward) {
  auto model = small_model();
  std::mt19937 rng(4);
  std::vector<RaggedBatch> batches;
  RaggedBatch copies;
  for (int s = 0; s < 40; ++s) copies.add_sequence(std::vector<int32_t>{5, 9, 2});
  batches.push_back(copies);
  for (int trial = 0; trial < 6; ++trial) batches.push_back(random_batch(rng, 3 + trial, 20, 3));
  expect_last_rows_match_full_forward(*model, batches, kModeRelTol);
}

TEST(ForwardInvariance, ABatchEqualsEachInputRunAlone) {
  auto model = small_model();
  std::mt19937 rng(2);
  const int h = model->info().hidden_size();
  for (const AttentionMode mode :
       {AttentionMode::kOff, AttentionMode::kScatter, AttentionMode::kTree}) {
    const RaggedBatch batch = random_batch(rng, 8, 30, 2);
    ForwardOptions options;
    options.mode = mode;
    options.return_hidden_states = true;
    const ForwardResult together = model->forward(batch, options);
    for (int s = 0; s < batch.num_sequences(); ++s) {
      RaggedBatch alone;
      alone.add_sequence(std::vector<int32_t>(batch.ids.begin() + batch.cu_seqlens[s],
                                              batch.ids.begin() + batch.cu_seqlens[s + 1]));
      const ForwardResult r = model->forward(alone, options);
      const auto want = sequence_slice(batch, together.hidden_states, s, h);
      ASSERT_EQ(r.hidden_states.size(), want.size());
      for (size_t t = 0; t < want.size() / h; ++t) {
        EXPECT_LE(rel_err(r.hidden_states.data() + t * h, want.data() + t * h, h), kModeRelTol)
            << attention_mode_name(mode) << " sequence " << s << " token " << t;
      }
      EXPECT_LE(rel_err(r.values.data(), together.values.data() + s * h, h), kModeRelTol);
    }
  }
}

TEST(ForwardInvariance, ShufflingInputsChangesNothing) {
  auto model = small_model();
  std::mt19937 rng(3);
  const RaggedBatch batch = random_batch(rng, 11, 25, 3);
  std::vector<int> order;
  const RaggedBatch shuffled = shuffled_batch(batch, rng, order);
  ASSERT_TRUE(model->info().dedup());  // so tree mode is held to bit-identical results
  expect_order_invariant(*model, batch, shuffled, order, kModeRelTol);
}

TEST(ForwardInvariance, ArenaReuseAcrossBatchSizesGivesTheSameResults) {
  auto model = small_model();
  std::mt19937 rng(4);
  const RaggedBatch small = random_batch(rng, 2, 5, 4);
  const RaggedBatch big = random_batch(rng, 12, 60, 4);
  const ForwardResult first = model->forward(small);
  model->forward(big);
  const ForwardResult again = model->forward(small);
  EXPECT_EQ(first.values, again.values);
}

TEST(ForwardHeads, DimensionsTruncateThenNormalise) {
  auto model = small_model();
  RaggedBatch batch;
  batch.add_sequence(std::vector<int32_t>{1, 2, 3});
  batch.add_sequence(std::vector<int32_t>{1, 2, 4, 5});
  ForwardOptions raw;
  raw.normalize = false;
  const ForwardResult full = model->forward(batch, raw);
  ForwardOptions truncated;
  truncated.dimensions = 16;
  const ForwardResult r = model->forward(batch, truncated);
  ASSERT_EQ(r.dim, 16);
  for (int s = 0; s < 2; ++s) {
    double norm = 0;
    for (int i = 0; i < 16; ++i) norm += full.values[s * 64 + i] * full.values[s * 64 + i];
    norm = std::sqrt(norm);
    for (int i = 0; i < 16; ++i)
      EXPECT_NEAR(r.values[s * 16 + i], full.values[s * 64 + i] / norm, 1e-6);
  }
  truncated.dimensions = 65;
  EXPECT_THROW(model->forward(batch, truncated), std::invalid_argument);
}

TEST(ForwardErrors, BadBatchesAreRejectedWithClearErrors) {
  auto model = small_model();
  RaggedBatch bad_id;
  bad_id.add_sequence(std::vector<int32_t>{1, 64});
  EXPECT_THROW(model->forward(bad_id), std::invalid_argument);
  RaggedBatch bad_pos;
  bad_pos.add_sequence(std::vector<int32_t>{1});
  bad_pos.positions[0] = 512;
  EXPECT_THROW(model->forward(bad_pos), std::invalid_argument);
  RaggedBatch empty_seq;
  empty_seq.cu_seqlens.push_back(0);
  EXPECT_THROW(model->forward(empty_seq), std::invalid_argument);
  // vocab 64 has no rows 9693 / 2152: no reranker head.
  ForwardOptions rerank;
  rerank.head = HeadKind::kReranker;
  RaggedBatch ok;
  ok.add_sequence(std::vector<int32_t>{1});
  EXPECT_THROW(model->forward(ok, rerank), std::invalid_argument);
  // An empty batch is not an error: no sequences, no results.
  const ForwardResult none = model->forward(RaggedBatch{});
  EXPECT_EQ(none.num_sequences, 0);
  EXPECT_TRUE(none.values.empty());
}

TEST(DemoModel, IsDeterministicAndServesBothHeads) {
  auto a = Model::load("demo");
  auto b = Model::load("demo");
  EXPECT_EQ(a->info().vocab_size(), 10240);
  EXPECT_FALSE(a->info().tokenizer_json.empty());
  RaggedBatch batch;
  batch.add_sequence(std::vector<int32_t>{104, 105, 256});
  EXPECT_EQ(a->forward(batch).values, b->forward(batch).values);
  ForwardOptions rerank;
  rerank.head = HeadKind::kReranker;
  const ForwardResult r = a->forward(batch, rerank);
  ASSERT_EQ(r.values.size(), 1u);
  EXPECT_GT(r.values[0], 0.0f);
  EXPECT_LT(r.values[0], 1.0f);
  EXPECT_NEAR(r.values[0], 1.0 / (1.0 + std::exp(-(r.yes_no_logits[0] - r.yes_no_logits[1]))),
              1e-6);
}

TEST(RandomModels, CustomShapesLoadAndBadSpecsFail) {
  auto m = Model::load(
      "random:hidden=64,layers=1,heads=2,kv_heads=1,head_dim=32,intermediate=96,"
      "vocab=10240:reranker");
  EXPECT_EQ(m->info().head, HeadKind::kReranker);
  EXPECT_EQ(m->info().config.num_hidden_layers, 1);
  RaggedBatch batch;
  batch.add_sequence(std::vector<int32_t>{5, 6, 7});
  EXPECT_EQ(m->forward(batch).values.size(), 1u);
  EXPECT_THROW(Model::load("random:qwen3-9b"), std::invalid_argument);
  EXPECT_THROW(Model::load("random:hidden=64,colour=3"), std::invalid_argument);
  EXPECT_THROW(Model::load("random:hidden=64,heads=3,kv_heads=2,layers=1,intermediate=8"),
               std::runtime_error);
  EXPECT_THROW(Model::load("/nonexistent/model"), std::runtime_error);
}

}  // namespace
}  // namespace radix::testing
