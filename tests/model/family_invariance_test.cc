// The dedup invariants for every family (TEI's test_flash_qwen3 style), on the tiny checkpoints
// of tests/fixtures/families: a batch equals each input run alone, the three attention modes
// agree, shuffling the inputs changes nothing, and the last-layer pruning matches the full
// forward. Random batches over a 3-token alphabet share long prefixes, repeat sequences and run
// well past the windows of 5 positions.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "fixture_util.h"
#include "model/model.h"
#include "random_batch.h"

namespace radix::testing {
namespace {

constexpr double kModeRelTol = 1e-5;  // same math, different attention tiling (docs/numerics.md)

// Tokens 1..3: random sequences share prefixes.
RaggedBatch random_batch(std::mt19937& rng, int num_seqs, int max_len) {
  return testing::random_batch(rng, num_seqs, max_len, 1, 3);
}

RaggedBatch sequence_of(const RaggedBatch& batch, int s) {
  RaggedBatch one;
  one.add_sequence(std::vector<int32_t>(batch.ids.begin() + batch.cu_seqlens[s],
                                        batch.ids.begin() + batch.cu_seqlens[s + 1]));
  return one;
}

class FamilyInvariance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    LoadOptions options;
    options.backend.threads = 2;
    options.reranker_tokens = {7, 200};
    model_ = Model::load(fixture_path("families/" + GetParam()), options);
  }
  std::unique_ptr<Model> model_;
};

TEST_P(FamilyInvariance, ModesAgreeOnRandomTries) {
  std::mt19937 rng(1);
  for (int trial = 0; trial < 6; ++trial) {
    const RaggedBatch batch = random_batch(rng, 2 + trial, 4 + 4 * trial);
    expect_modes_agree(*model_, batch, kModeRelTol, "trial " + std::to_string(trial));
  }
}

TEST_P(FamilyInvariance, ABatchEqualsEachInputRunAlone) {
  std::mt19937 rng(2);
  for (const AttentionMode mode :
       {AttentionMode::kOff, AttentionMode::kScatter, AttentionMode::kTree}) {
    const RaggedBatch batch = random_batch(rng, 7, 24);
    for (const HeadKind head : {HeadKind::kEmbedding, HeadKind::kReranker}) {
      if (head == HeadKind::kReranker && mode != AttentionMode::kTree) continue;  // CI time
      ForwardOptions options;
      options.mode = mode;
      options.head = head;
      const ForwardResult together = model_->forward(batch, options);
      for (int s = 0; s < batch.num_sequences(); ++s) {
        const ForwardResult r = model_->forward(sequence_of(batch, s), options);
        EXPECT_LE(rel_err(r.values.data(), together.values.data() + s * r.dim, r.dim), kModeRelTol)
            << attention_mode_name(mode) << " " << head_kind_name(head) << " sequence " << s;
      }
    }
  }
}

TEST_P(FamilyInvariance, ShufflingInputsChangesNothing) {
  std::mt19937 rng(3);
  const RaggedBatch batch = random_batch(rng, 11, 25);
  std::vector<int> order;
  const RaggedBatch shuffled = shuffled_batch(batch, rng, order);
  expect_order_invariant(*model_, batch, shuffled, order, kModeRelTol);
}

// The last layer's o_proj and MLP on each sequence's last row equal the full forward, 40 copies
// of one sequence included (more sequences than trie rows).
TEST_P(FamilyInvariance, LastLayerOnLastRowsMatchesTheFullForward) {
  std::mt19937 rng(4);
  std::vector<RaggedBatch> batches;
  RaggedBatch copies;
  for (int s = 0; s < 40; ++s) copies.add_sequence(std::vector<int32_t>{5, 9, 2});
  batches.push_back(copies);
  for (int trial = 0; trial < 3; ++trial) batches.push_back(random_batch(rng, 3 + trial, 20));
  expect_last_rows_match_full_forward(*model_, batches, kModeRelTol);
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyInvariance,
                         ::testing::Values("mistral", "qwen2", "qwen2_bidirectional", "llama",
                                           "gemma", "gemma2"));

}  // namespace
}  // namespace radix::testing
