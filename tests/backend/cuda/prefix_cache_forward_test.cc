// The prefix cache on the GPU (docs/prefix_cache.md): random request streams run through a CUDA
// model runner with the cache (a big budget, and a tiny one that evicts mid-stream) give the
// outputs of the same batches without it, and of the CPU engine, within the CUDA-vs-CPU
// tolerances. The CPU version of this test is tests/cache/prefix_cache_forward_test.cc.
//
// Tolerance: cached K/V come from other batches (other GEMM row counts, so cuBLASLt may round
// differently in bf16) and new rows attend through prefix_attention instead of the tree kernels,
// so cache-on and cache-off differ by bf16 rounding, as the GPU and the CPU do. Both are held to
// the CUDA forward tests' bounds: 2e-2 of the stream's largest output magnitude (the logit bound
// of cuda_forward_test.cc, applied to every head's outputs), and cosine >= 0.999 for embeddings.
#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/fold_plan.h"
#include "engine/model_runner.h"
#include "fixture_util.h"
#include "gpu_test_util.h"
#include "model/model.h"
#include "random_stream.h"

namespace radix::cuda::testing {
namespace {

using engine::ModelRunner;
using engine::PrefixCacheConfig;
using engine::SequenceOutput;

constexpr double kRelTol = 2e-2;
constexpr double kMinCosine = 0.999;

// qwen3_tiny: the Qwen3 of qwen3_tiny.json with formula weights (head_dim 128, fused q/k-norm,
// 4,096 positions; the demo model's head_dim 32 has no fused kernel on CUDA), an embedding head.
// Otherwise a family fixture (256 positions) with a reranker head.
std::unique_ptr<Model> load(const std::string& name, const std::string& device) {
  LoadOptions options;
  options.backend.device = device;
  options.backend.threads = 2;
  if (name == "qwen3_tiny") {
    static const nlohmann::json fixture = radix::testing::read_fixture("qwen3_tiny.json");
    ModelInfo info;
    info.spec = "formula:qwen3_tiny";
    info.config = parse_decoder_config(fixture.at("config"));
    info.head = HeadKind::kEmbedding;
    const radix::testing::FormulaWeights weights(info.config);
    return Model::create(info, weights, options);
  }
  options.reranker_tokens = {7, 200};
  return Model::load(std::string(RADIX_SOURCE_DIR) + "/tests/fixtures/families/" + name, options);
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += double(a[i]) * b[i], aa += double(a[i]) * a[i], bb += double(b[i]) * b[i];
  }
  return aa == 0 || bb == 0 ? (aa == bb ? 1.0 : 0.0) : ab / std::sqrt(aa * bb);
}

struct Case {
  std::string model;
  AttentionMode mode;
  int min_prefix, max_prefix;  // shared prefixes of the stream
};

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  return info.param.model + "_" + attention_mode_name(info.param.mode) + "_p" +
         std::to_string(info.param.max_prefix);
}

class CudaPrefixCacheForward : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    RADIX_REQUIRE_GPU();
    // Every CUDA allocation starts as NaN: a cached row read before it was written poisons the
    // outputs compared below.
    setenv("RADIX_CUDA_POISON", "1", 1);
  }
};

TEST_P(CudaPrefixCacheForward, CacheOnEqualsCacheOffAndCpu) {
  const Case& c = GetParam();
  ModelRunner cpu(load(c.model, "cpu"), c.mode, "cpu");
  ModelRunner plain(load(c.model, "cuda"), c.mode, "cuda");
  const ModelInfo& info = plain.model().info();
  const int64_t node_bytes = 2LL * info.config.num_hidden_layers * info.config.num_key_value_heads *
                             info.config.head_dim * 2;  // bf16
  PrefixCacheConfig big{.budget_bytes = 8192 * node_bytes, .min_prefix_tokens = 4};
  // 12 nodes: less than one shared prefix and its suffix, so almost every batch evicts.
  PrefixCacheConfig tiny = big;
  tiny.budget_bytes = 12 * node_bytes + 64;
  ModelRunner cached(load(c.model, "cuda"), c.mode, "cuda", big);
  ModelRunner evicting(load(c.model, "cuda"), c.mode, "cuda", tiny);
  ASSERT_NE(cached.prefix_cache(), nullptr) << "the CUDA backend must support the prefix cache";
  const FoldOptions fold = engine::fold_options_for(c.mode, 1.0, 1);
  const std::vector<RaggedBatch> stream = cache_testing::random_stream(
      23, 14, std::min(info.vocab_size(), 50), c.min_prefix, c.max_prefix);
  std::vector<std::vector<float>> want, want_gpu, got, got_tiny;
  for (const RaggedBatch& batch : stream) {
    const FoldPlan plan = build_fold_plan(batch.ids, batch.positions, batch.cu_seqlens, fold);
    for (auto [runner, sink] : {std::pair{&cpu, &want}, std::pair{&plain, &want_gpu},
                                std::pair{&cached, &got}, std::pair{&evicting, &got_tiny}}) {
      const std::vector<SequenceOutput> out = runner->run(batch, plan);
      ASSERT_EQ(out.size(), static_cast<size_t>(batch.num_sequences()));
      for (const SequenceOutput& o : out) sink->push_back(o);
    }
  }
  double scale = 0;
  for (const auto& w : want) {
    for (float x : w) scale = std::max(scale, std::fabs(double(x)));
  }
  ASSERT_GT(scale, 0.0);
  auto check = [&](const std::vector<std::vector<float>>& a,
                   const std::vector<std::vector<float>>& b, const char* what) {
    ASSERT_EQ(a.size(), b.size());
    for (size_t s = 0; s < a.size(); ++s) {
      ASSERT_EQ(a[s].size(), b[s].size()) << what << " sequence " << s;
      double diff = 0;
      for (size_t i = 0; i < a[s].size(); ++i) {
        ASSERT_TRUE(std::isfinite(a[s][i])) << what << " sequence " << s;
        diff = std::max(diff, std::fabs(double(a[s][i]) - b[s][i]));
      }
      EXPECT_LE(diff / scale, kRelTol) << what << " sequence " << s;
      if (a[s].size() > 2) {
        EXPECT_GE(cosine(a[s], b[s]), kMinCosine) << what << " sequence " << s;
      }
    }
  };
  check(got, want_gpu, "cache on vs off (GPU)");
  check(got_tiny, want_gpu, "tiny cache vs off (GPU)");
  check(got, want, "cache on (GPU) vs CPU");
  check(got_tiny, want, "tiny cache (GPU) vs CPU");
  // The cache was used: prefixes reused, repeats answered, evictions under the tiny budget.
  const cache::PrefixCacheCounters& n = cached.prefix_cache()->counters();
  EXPECT_GT(n.prefix_hits, 5);
  EXPECT_GT(n.result_hits, 0);
  const cache::DevicePrefixCache& t = *evicting.prefix_cache();
  EXPECT_GT(t.index().stats().evicted_nodes, 0);
  EXPECT_LE(t.index().stats().bytes, tiny.budget_bytes);
  EXPECT_TRUE(t.index().check_invariants());
}

// The stream workload's shape (one request a batch, a shared prefix and its own tokens, every
// request the same length): from the third request on, each one's forward through the cache's
// hook is replayed from a recording, and gives what the uncached forward does.
TEST(CudaPrefixCacheRecorded, StreamRequestsReplayThroughTheHook) {
  RADIX_REQUIRE_GPU();
  setenv("RADIX_CUDA_POISON", "1", 1);
  ModelRunner plain(load("qwen3_tiny", "cuda"), AttentionMode::kTree, "cuda");
  const ModelInfo& info = plain.model().info();
  const int64_t node_bytes = 2LL * info.config.num_hidden_layers * info.config.num_key_value_heads *
                             info.config.head_dim * 2;  // bf16
  ModelRunner cached(load("qwen3_tiny", "cuda"), AttentionMode::kTree, "cuda",
                     PrefixCacheConfig{.budget_bytes = 8192 * node_bytes, .min_prefix_tokens = 4});
  const FoldOptions fold = engine::fold_options_for(AttentionMode::kTree, 1.0, 1);
  std::mt19937 rng(5);
  std::uniform_int_distribution<int32_t> token(1, std::min(info.vocab_size(), 500) - 1);
  std::vector<int32_t> prefix(96);
  for (auto& t : prefix) t = token(rng);
  constexpr int kRequests = 12;
  for (int i = 0; i < kRequests; ++i) {
    std::vector<int32_t> seq = prefix;
    for (int j = 0; j < 16; ++j) seq.push_back(token(rng));
    RaggedBatch batch;
    batch.add_sequence(seq);
    const FoldPlan plan = build_fold_plan(batch.ids, batch.positions, batch.cu_seqlens, fold);
    const std::vector<SequenceOutput> want = plain.run(batch, plan), got = cached.run(batch, plan);
    ASSERT_EQ(want.size(), 1u);
    ASSERT_EQ(got.size(), 1u);
    double scale = 0, diff = 0;
    for (size_t k = 0; k < want[0].size(); ++k) {
      ASSERT_TRUE(std::isfinite(got[0][k])) << "request " << i;
      scale = std::max(scale, std::fabs(double(want[0][k])));
      diff = std::max(diff, std::fabs(double(want[0][k]) - got[0][k]));
    }
    EXPECT_LE(diff / scale, kRelTol) << "request " << i;
    EXPECT_GE(cosine(want[0], got[0]), kMinCosine) << "request " << i;
  }
  EXPECT_GE(cached.prefix_cache()->counters().prefix_hits, kRequests - 1);
  const RecordingCounters n = cached.model().recording_counters();
  EXPECT_EQ(n.recorded, 1);
  EXPECT_EQ(n.replayed, kRequests - 3);
}

std::vector<Case> cases() {
  std::vector<Case> out;
  for (const AttentionMode mode :
       {AttentionMode::kOff, AttentionMode::kScatter, AttentionMode::kTree}) {
    out.push_back({"qwen3_tiny", mode, 10, 24});
  }
  // Prefixes over many 64-key blocks (split launches, blocks of other prompts skipped), up to the
  // stream workload's 2,048.
  out.push_back({"qwen3_tiny", AttentionMode::kTree, 150, 300});
  out.push_back({"qwen3_tiny", AttentionMode::kOff, 150, 300});
  out.push_back({"qwen3_tiny", AttentionMode::kTree, 1800, 2100});
  out.push_back({"llama", AttentionMode::kTree, 150, 220});  // MQA-like group of 4, head_dim 32
  // Windows (mistral, gemma2), soft-capping (gemma2), head_dims 16 and 32 (padded tiles).
  for (const char* family : {"mistral", "gemma2", "gemma", "qwen2", "llama"}) {
    out.push_back({family, AttentionMode::kTree, 10, 24});
  }
  out.push_back({"gemma2", AttentionMode::kScatter, 10, 24});
  out.push_back({"mistral", AttentionMode::kOff, 10, 24});
  return out;
}

INSTANTIATE_TEST_SUITE_P(Cache, CudaPrefixCacheForward, ::testing::ValuesIn(cases()), case_name);

}  // namespace
}  // namespace radix::cuda::testing
