// The prefix cache is exact: a stream of batches run with the cache gives the results of the same
// batches run without it, in every attention mode, for families with sliding windows and
// soft-capping too, and whatever the budget evicts mid-stream. The streams share long prefixes
// across batches, repeat whole sequences (the result cache) and extend earlier ones.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/fold_plan.h"
#include "engine/model_runner.h"
#include "model/model.h"
#include "random_stream.h"

namespace radix::engine {
namespace {

// The cached K/V were computed in other batches, with other row counts per GEMM, so BLAS may sum
// in another order; results agree to fp32 rounding of the model's dot products (the modes agree
// to 1e-5 on hidden states, docs/numerics.md; pooled outputs are compared at 1e-4 of their scale).
constexpr double kRelTol = 1e-4;

double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
  }
  return scale == 0 ? diff : diff / scale;
}

std::string model_spec(const std::string& name) {
  if (name == "demo") return "demo";
  return std::string(RADIX_SOURCE_DIR) + "/tests/fixtures/families/" + name;
}

std::unique_ptr<Model> load(const std::string& name) {
  LoadOptions options;
  options.backend.threads = 2;
  if (name != "demo") options.reranker_tokens = {7, 200};
  return Model::load(model_spec(name), options);
}

struct Case {
  std::string model;
  AttentionMode mode;
  int32_t pad;
  // The stream's batches hold 1-3 sequences: 4 stores them whole, 1 stores only what a batch of
  // two or three shares (the rule for large batches).
  int32_t store_whole = cache::kDefaultStoreWholeMaxSequences;
  // Larger batches store their shared rows on the second sighting (or on the first).
  bool seen_twice = true;
};

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  return info.param.model + "_" + attention_mode_name(info.param.mode) + "_pad" +
         std::to_string(info.param.pad) + "_whole" + std::to_string(info.param.store_whole) +
         (info.param.seen_twice ? "" : "_seenonce");
}

class PrefixCacheForward : public ::testing::TestWithParam<Case> {};

TEST_P(PrefixCacheForward, CacheOnEqualsCacheOffOnRandomStreams) {
  const Case& c = GetParam();
  ModelRunner plain(load(c.model), c.mode, "cpu");
  const ModelInfo& info = plain.model().info();
  const int64_t node_bytes = 2LL * info.config.num_hidden_layers * info.config.num_key_value_heads *
                             info.config.head_dim * 4;
  PrefixCacheConfig big{.budget_bytes = 4096 * node_bytes,
                        .min_prefix_tokens = 4,
                        .pad_to_multiple = c.pad,
                        .store_whole_max_sequences = c.store_whole,
                        .shared_rows_seen_twice = c.seen_twice};
  // A tiny budget (12 nodes, less than one shared prefix and its suffix) evicts in almost every
  // batch, mid-stream, partial prefixes included.
  PrefixCacheConfig tiny = big;
  tiny.budget_bytes = 12 * node_bytes + 64;
  ModelRunner cached(load(c.model), c.mode, "cpu", big);
  ModelRunner evicting(load(c.model), c.mode, "cpu", tiny);
  ASSERT_NE(cached.prefix_cache(), nullptr);
  const FoldOptions fold = fold_options_for(c.mode, 1.0, c.pad);
  const std::vector<RaggedBatch> stream =
      cache_testing::random_stream(11, 14, std::min(info.vocab_size(), 50));
  for (size_t b = 0; b < stream.size(); ++b) {
    const RaggedBatch& batch = stream[b];
    const FoldPlan plan = build_fold_plan(batch.ids, batch.positions, batch.cu_seqlens, fold);
    const std::vector<SequenceOutput> want = plain.run(batch, plan);
    const std::vector<SequenceOutput> got = cached.run(batch, plan);
    const std::vector<SequenceOutput> got_tiny = evicting.run(batch, plan);
    ASSERT_EQ(got.size(), want.size());
    ASSERT_EQ(got_tiny.size(), want.size());
    for (size_t s = 0; s < want.size(); ++s) {
      ASSERT_EQ(got[s].size(), want[s].size());
      ASSERT_EQ(got_tiny[s].size(), want[s].size());
      EXPECT_LE(rel_err(got[s], want[s]), kRelTol) << "batch " << b << " sequence " << s;
      EXPECT_LE(rel_err(got_tiny[s], want[s]), kRelTol) << "batch " << b << " sequence " << s;
    }
  }
  // The cache was really used: prefixes reused, exact repeats answered, evictions under the tiny
  // budget, and the budget held.
  const cache::PrefixCacheCounters& n = cached.prefix_cache()->counters();
  EXPECT_GT(n.prefix_hits, 5);
  EXPECT_GT(n.result_hits, 0);
  EXPECT_GT(n.hit_tokens, n.lookup_tokens / 4);
  const cache::DevicePrefixCache& t = *evicting.prefix_cache();
  EXPECT_GT(t.index().stats().evicted_nodes, 0);
  EXPECT_LE(t.index().stats().bytes, tiny.budget_bytes);
  EXPECT_TRUE(t.index().check_invariants());
  EXPECT_TRUE(cached.prefix_cache()->index().check_invariants());
}

std::vector<Case> cases() {
  std::vector<Case> out;
  for (const AttentionMode mode :
       {AttentionMode::kOff, AttentionMode::kScatter, AttentionMode::kTree}) {
    out.push_back({"demo", mode, 1});
    out.push_back({"demo", mode, 1, 1});
  }
  out.push_back({"demo", AttentionMode::kTree, 1, 1, false});
  out.push_back({"demo", AttentionMode::kTree, 8});
  // Windows of 5 positions (mistral, gemma2), soft-capping (gemma2), Gemma norms. (The other
  // families differ only in position-wise ops, which the cache does not touch.)
  for (const char* family : {"mistral", "gemma2", "gemma"}) {
    out.push_back({family, AttentionMode::kTree, 1});
  }
  out.push_back({"gemma2", AttentionMode::kScatter, 1});
  out.push_back({"mistral", AttentionMode::kOff, 1});
  return out;
}

INSTANTIATE_TEST_SUITE_P(Cache, PrefixCacheForward, ::testing::ValuesIn(cases()), case_name);

// Per-token states need every row: such a batch runs whole, even when its prefix is cached.
TEST(PrefixCacheRunner, TokenStatesBypassTheCache) {
  ModelRunner plain(load("demo"), AttentionMode::kTree, "cpu");
  ModelRunner cached(load("demo"), AttentionMode::kTree, "cpu",
                     PrefixCacheConfig{.budget_bytes = 1 << 24, .min_prefix_tokens = 4});
  RaggedBatch first;
  first.add_sequence(std::vector<int32_t>{5, 6, 7, 8, 9, 10, 11, 12});
  const FoldOptions fold = fold_options_for(AttentionMode::kTree, 1.0, 1);
  cached.run(first, build_fold_plan(first.ids, first.positions, first.cu_seqlens, fold));
  RaggedBatch states;
  states.add_sequence(std::vector<int32_t>{5, 6, 7, 8, 9, 10, 11, 12, 13});
  states.token_states = {1};
  const FoldPlan plan = build_fold_plan(states.ids, states.positions, states.cu_seqlens, fold);
  const std::vector<SequenceOutput> want = plain.run(states, plan);
  const std::vector<SequenceOutput> got = cached.run(states, plan);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_EQ(got[0].size(), want[0].size());
  EXPECT_EQ(got[0].size(), 9u * static_cast<size_t>(plain.model().info().hidden_size()));
  EXPECT_LE(rel_err(got[0], want[0]), kRelTol);
}

// A bidirectional model never uses the cache (a trie has no bidirectional form), nor does a
// budget of 0.
TEST(PrefixCacheRunner, OffWhereItCannotBeExact) {
  ModelRunner bidirectional(load("qwen2_bidirectional"), AttentionMode::kTree, "cpu",
                            PrefixCacheConfig{.budget_bytes = 1 << 24});
  EXPECT_EQ(bidirectional.prefix_cache(), nullptr);
  ModelRunner none(load("demo"), AttentionMode::kTree, "cpu", PrefixCacheConfig{});
  EXPECT_EQ(none.prefix_cache(), nullptr);
}

}  // namespace
}  // namespace radix::engine
