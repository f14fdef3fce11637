// ModelRunner runs the fold plan the engine built (its padding and threshold included) instead
// of building its own, and refuses a plan that was built for another batch.
#include "engine/model_runner.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "core/fold_plan.h"
#include "model/model.h"

namespace radix::engine {
namespace {

RaggedBatch sharing_batch() {
  RaggedBatch batch;
  batch.add_sequence(std::vector<int32_t>{5, 6, 7, 8, 9});
  batch.add_sequence(std::vector<int32_t>{5, 6, 7, 10});
  batch.add_sequence(std::vector<int32_t>{5, 6, 11});
  batch.add_sequence(std::vector<int32_t>{12});
  return batch;
}

std::unique_ptr<Model> demo() {
  LoadOptions load;
  load.backend.threads = 2;
  return Model::load("demo", load);
}

// Tolerance: padding and folding change how many rows each GEMM sees, so BLAS may sum in another
// order; the values agree to float rounding of hidden-size dot products.
constexpr float kTol = 2e-5f;

void expect_near(const std::vector<SequenceOutput>& a, const ForwardResult& b) {
  ASSERT_EQ(static_cast<int32_t>(a.size()), b.num_sequences);
  for (int32_t s = 0; s < b.num_sequences; ++s) {
    ASSERT_EQ(static_cast<int32_t>(a[s].size()), b.dim);
    for (int32_t k = 0; k < b.dim; ++k) EXPECT_NEAR(a[s][k], b.values[s * b.dim + k], kTol);
  }
}

TEST(ModelRunner, RunsTheEnginesPaddedPlanInEveryMode) {
  const RaggedBatch batch = sharing_batch();
  ForwardOptions plain;
  plain.normalize = false;
  const ForwardResult ref = demo()->forward(batch, plain);
  for (AttentionMode mode : {AttentionMode::kOff, AttentionMode::kScatter, AttentionMode::kTree}) {
    for (int32_t pad : {1, 8, 64}) {
      const FoldPlan plan = build_fold_plan(batch.ids, batch.positions, batch.cu_seqlens,
                                            fold_options_for(mode, 1.0, pad));
      EXPECT_EQ(plan.num_rows % pad, 0);
      ModelRunner runner(demo(), mode, "cpu");
      SCOPED_TRACE(std::string(attention_mode_name(mode)) + " pad " + std::to_string(pad));
      expect_near(runner.run(batch, plan), ref);
    }
  }
}

// The phases of a run add up to no more than the run itself, the forward's part is there, and a
// runner with a prefix cache times its own work apart from the forward's.
TEST(ModelRunner, TimesItsPhases) {
  const RaggedBatch batch = sharing_batch();
  const FoldPlan plan = build_fold_plan(batch.ids, batch.positions, batch.cu_seqlens,
                                        fold_options_for(AttentionMode::kTree, 1.0, 1));
  for (const int64_t cache_bytes : {int64_t{0}, int64_t{1} << 20}) {
    PrefixCacheConfig cache;
    cache.budget_bytes = cache_bytes;
    cache.min_prefix_tokens = 1;
    ModelRunner runner(demo(), AttentionMode::kTree, "cpu", cache);
    EXPECT_EQ(runner.prefix_cache() != nullptr, cache_bytes > 0);
    const auto start = std::chrono::steady_clock::now();
    runner.run(batch, plan);
    const double total =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const RunTimings t = runner.last_timings();
    SCOPED_TRACE("cache bytes " + std::to_string(cache_bytes));
    for (const double s :
         {t.prepare_seconds, t.enqueue_seconds, t.wait_seconds, t.finish_seconds}) {
      EXPECT_GE(s, 0.0);
    }
    EXPECT_GT(t.enqueue_seconds, 0.0);  // the CPU forward's layers run while they are "queued"
    EXPECT_LE(t.prepare_seconds + t.enqueue_seconds + t.wait_seconds + t.finish_seconds, total);
  }
}

TEST(ModelRunner, ThresholdDecidesTheLayout) {
  const RaggedBatch batch = sharing_batch();
  ForwardOptions plain;
  plain.normalize = false;
  const ForwardResult ref = demo()->forward(batch, plain);
  // Threshold 0 never folds: the tree runner then runs the identity plan (mode off).
  const FoldPlan flat = build_fold_plan(batch.ids, batch.positions, batch.cu_seqlens,
                                        fold_options_for(AttentionMode::kTree, 0.0, 1));
  ASSERT_FALSE(flat.folded);
  ModelRunner runner(demo(), AttentionMode::kTree, "cpu");
  expect_near(runner.run(batch, flat), ref);
  // off never folds, whatever the threshold says.
  EXPECT_EQ(fold_options_for(AttentionMode::kOff, 1.0, 4).threshold, 0.0);
  EXPECT_EQ(fold_options_for(AttentionMode::kOff, 1.0, 4).pad_to_multiple, 4);
}

TEST(ModelRunner, RefusesAPlanOfAnotherBatch) {
  const RaggedBatch batch = sharing_batch();
  RaggedBatch other;
  other.add_sequence(std::vector<int32_t>{5, 6, 7, 8, 1});
  other.add_sequence(std::vector<int32_t>{5, 6, 7, 10});
  other.add_sequence(std::vector<int32_t>{5, 6, 11});
  other.add_sequence(std::vector<int32_t>{12});
  const FoldPlan wrong = build_fold_plan(other.ids, other.positions, other.cu_seqlens);
  ModelRunner runner(demo(), AttentionMode::kTree, "cpu");
  EXPECT_THROW(runner.run(batch, wrong), std::invalid_argument);
  const FoldPlan folded = build_fold_plan(batch.ids, batch.positions, batch.cu_seqlens);
  auto model = demo();
  ForwardOptions off;
  off.mode = AttentionMode::kOff;
  EXPECT_THROW(model->forward(batch, folded, off), std::invalid_argument);
}

// Mean pooling on the fold plan's rows equals the mean of every token's final hidden state (the
// unfolded reference), in every attention mode and with padded plans: shared prefix rows count
// once per sequence holding them.
TEST(ModelRunner, MeanPoolingOnFoldedRowsEqualsTheTokenMean) {
  const RaggedBatch batch = sharing_batch();
  ForwardOptions hidden;
  hidden.mode = AttentionMode::kOff;
  hidden.return_hidden_states = true;
  const ForwardResult states = demo()->forward(batch, hidden);
  const int32_t h = 128;
  ForwardResult want;
  want.num_sequences = batch.num_sequences();
  want.dim = h;
  for (int32_t q = 0; q < batch.num_sequences(); ++q) {
    const int32_t begin = batch.cu_seqlens[q], end = batch.cu_seqlens[q + 1];
    for (int32_t k = 0; k < h; ++k) {
      double sum = 0;
      for (int32_t t = begin; t < end; ++t)
        sum += states.hidden_states[static_cast<size_t>(t) * h + k];
      want.values.push_back(static_cast<float>(sum / (end - begin)));
    }
  }
  LoadOptions load;
  load.backend.threads = 2;
  load.pooling = "mean";
  for (AttentionMode mode : {AttentionMode::kOff, AttentionMode::kScatter, AttentionMode::kTree}) {
    const FoldPlan plan = build_fold_plan(batch.ids, batch.positions, batch.cu_seqlens,
                                          fold_options_for(mode, 1.0, 8));
    ModelRunner runner(Model::load("demo", load), mode, "cpu");
    SCOPED_TRACE(attention_mode_name(mode));
    expect_near(runner.run(batch, plan), want);
  }
  load.pooling = "max";
  EXPECT_THROW(Model::load("demo", load), std::invalid_argument);
}

}  // namespace
}  // namespace radix::engine
