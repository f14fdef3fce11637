// Recorded forwards through the prefix cache's hook (the cache's BatchHook::prepare key in
// RecordingKey::prefix, src/model/decoder_forward.cc) on the CPU: a ModelRunner whose model runs
// on RecordingBackend (tests/model/recording_backend.h, host closures for the CUDA graphs) gives
// the results of a runner on the plain CPU backend, on streams of requests continuing one or two
// cached prompts (which replay from recordings: prompts read in place, whose first slot is part of
// the key, and prompts gathered into prefix_kv, which share a key and differ only in the uploaded
// slot indices) and on random request streams (budget big or tiny enough to evict mid-stream; few
// replays there, since the hook's key names row counts and buffers). An auditing backend under
// the recorder counts, at the moment each op really runs (directly or in a replay), the rows
// scatter_rows stores and the rows prefix_attention anchors to cached keys: a padded forward's
// padding rows must store nothing (the cache holds layers x inserted nodes rows) and see no
// cached key.
//
// Tolerances (fp32 everywhere). A recorded forward computes on its row bucket (>= 64 rows, padding
// after the plan's), the plain runner on the plan's rows only: attention, norms and elementwise
// ops are per row and do not change, but the GEMMs see another row count and BLAS splits rows
// among kernels and threads by count, which may round a real row differently. The cached K/V are
// themselves computed that way, so each runner reads its own slightly different keys. Against the
// plain runner with the same cache the pooled outputs agree within kRecordedRelTol = 1e-5 of their
// largest magnitude (as recorded_forward_test.cc's recorded vs record=false). Against the cache
// off, the cached K/V come from other batches and other row counts per GEMM, as in
// prefix_cache_forward_test.cc: kCacheOffRelTol = 1e-4.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <ostream>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "backend/backend.h"
#include "core/fold_plan.h"
#include "engine/model_runner.h"
#include "fixture_util.h"
#include "model/model.h"
#include "random_stream.h"
#include "recording_backend.h"

namespace radix::engine {
namespace {

using testing::RecordingBackend;

constexpr double kRecordedRelTol = 1e-5;
constexpr double kCacheOffRelTol = 1e-4;

// What the prefix cache's ops did when they ran (CPU memory: the index arrays are read in place).
struct Audit {
  int64_t scatter_calls = 0;
  int64_t stored_rows = 0;  // scatter_rows rows with index >= 0
  int64_t duplicate_slots = 0;
  int64_t prefix_calls = 0;
  int64_t anchored_rows = 0;  // prefix_attention query rows with anchor >= 0
};

// Passes every call to the CPU backend; audits scatter_rows and prefix_attention as they run.
class AuditBackend final : public Backend {
 public:
  AuditBackend(std::unique_ptr<Backend> inner, std::shared_ptr<Audit> audit)
      : inner_(std::move(inner)), audit_(std::move(audit)) {}

  std::string name() const override { return "audit(" + inner_->name() + ")"; }
  DType weight_dtype() const override { return inner_->weight_dtype(); }
  DType activation_dtype() const override { return inner_->activation_dtype(); }
  DType residual_dtype() const override { return inner_->residual_dtype(); }
  Buffer alloc(DType dtype, int64_t rows, int64_t cols) override {
    return inner_->alloc(dtype, rows, cols);
  }
  void upload(const Tensor& dst, const void* host, DType host_dtype) override {
    inner_->upload(dst, host, host_dtype);
  }
  void download(const Tensor& src, float* host) override { inner_->download(src, host); }
  void fill_random_normal(const Tensor& dst, uint64_t seed, float std,
                          uint64_t first_index) override {
    inner_->fill_random_normal(dst, seed, std, first_index);
  }
  void fill_constant(const Tensor& dst, float value) override { inner_->fill_constant(dst, value); }
  void synchronize() override { inner_->synchronize(); }
  void embedding(const Tensor& table, const Tensor& ids, const Tensor& out, float scale) override {
    inner_->embedding(table, ids, out, scale);
  }
  void rms_norm(const Tensor& x, const Tensor& weight, float eps, const Tensor& out,
                NormWeight mode, const Tensor& out_scale) override {
    inner_->rms_norm(x, weight, eps, out, mode, out_scale);
  }
  void add_rms_norm(const Tensor& residual, const Tensor& delta, const Tensor& weight, float eps,
                    const Tensor& normed, NormWeight mode, const Tensor& normed_scale) override {
    inner_->add_rms_norm(residual, delta, weight, eps, normed, mode, normed_scale);
  }
  void linear(const Tensor& x, const Tensor& w, const Tensor& out, bool accumulate,
              const Tensor& bias) override {
    inner_->linear(x, w, out, accumulate, bias);
  }
  void qk_norm_rope(const Tensor& qkv, const AttentionShape& shape, const Tensor& q_norm,
                    const Tensor& k_norm, const Tensor& positions, float eps,
                    float rope_theta) override {
    inner_->qk_norm_rope(qkv, shape, q_norm, k_norm, positions, eps, rope_theta);
  }
  void rope(const Tensor& qkv, const AttentionShape& shape, const Tensor& positions,
            const Tensor& inv_freq) override {
    inner_->rope(qkv, shape, positions, inv_freq);
  }
  void attention(const Tensor& qkv, const AttentionShape& shape, const AttentionMask& mask,
                 const Tensor& out) override {
    inner_->attention(qkv, shape, mask, out);
  }
  void gated_activation(const Tensor& gate_up, Activation act, const Tensor& out,
                        const Tensor& out_scale) override {
    inner_->gated_activation(gate_up, act, out, out_scale);
  }
  void gather_rows(const Tensor& src, const Tensor& index, const Tensor& out) override {
    inner_->gather_rows(src, index, out);
  }
  bool supports_prefix_cache() const override { return inner_->supports_prefix_cache(); }
  void prefix_attention(const Tensor& qkv, const AttentionShape& shape, const AttentionMask& mask,
                        const PrefixKeys& prefix, const Tensor& out) override {
    ++audit_->prefix_calls;
    const auto* anchor = static_cast<const int32_t*>(prefix.anchor.data);
    for (int64_t r = 0; r < prefix.anchor.rows; ++r) audit_->anchored_rows += anchor[r] >= 0;
    inner_->prefix_attention(qkv, shape, mask, prefix, out);
  }
  void scatter_rows(const Tensor& src, const Tensor& index, const Tensor& out) override {
    ++audit_->scatter_calls;
    const auto* slot = static_cast<const int32_t*>(index.data);
    std::unordered_set<int32_t> seen;
    for (int64_t r = 0; r < index.rows; ++r) {
      if (slot[r] < 0) continue;
      ++audit_->stored_rows;
      if (!seen.insert(slot[r]).second) ++audit_->duplicate_slots;
    }
    inner_->scatter_rows(src, index, out);
  }
  uint64_t memory_epoch() const override { return inner_->memory_epoch(); }

 private:
  std::unique_ptr<Backend> inner_;
  std::shared_ptr<Audit> audit_;
};

std::string model_spec(const std::string& name) {
  if (name == "demo") return "demo";
  return std::string(RADIX_SOURCE_DIR) + "/tests/fixtures/families/" + name;
}

// On the plain CPU backend (audit null), or on RecordingBackend over AuditBackend over the CPU.
std::unique_ptr<Model> load(const std::string& name, std::shared_ptr<Audit> audit = nullptr) {
  LoadOptions options;
  options.backend.threads = 2;
  if (name != "demo") options.reranker_tokens = {7, 200};
  if (audit != nullptr) {
    options.make_backend = [audit](const BackendOptions& b) -> std::unique_ptr<Backend> {
      return std::make_unique<RecordingBackend>(
          std::make_unique<AuditBackend>(create_backend(b), audit));
    };
  }
  return Model::load(model_spec(name), options);
}

RecordingBackend& recorder_of(ModelRunner& runner) {
  auto* be = dynamic_cast<RecordingBackend*>(&runner.model().backend());
  if (be == nullptr) throw std::logic_error("not a recording model");
  return *be;
}

int64_t node_bytes(const Model& model) {
  const DecoderConfig& c = model.info().config;
  return 2LL * c.num_hidden_layers * c.num_key_value_heads * c.head_dim * 4;
}

FoldPlan tree_plan(const RaggedBatch& batch, int32_t pad) {
  return build_fold_plan(batch.ids, batch.positions, batch.cu_seqlens,
                         fold_options_for(AttentionMode::kTree, 1.0, pad));
}

void expect_close(const std::vector<SequenceOutput>& got, const std::vector<SequenceOutput>& want,
                  double tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t s = 0; s < want.size(); ++s) {
    ASSERT_EQ(got[s].size(), want[s].size()) << what << " sequence " << s;
    EXPECT_LE(radix::testing::rel_err(got[s].data(), want[s].data(), want[s].size()), tol)
        << what << " sequence " << s;
  }
}

// The node ids of `seq`'s cached path (as far as it is cached).
std::vector<int32_t> cached_path(const cache::PrefixCache& index, const std::vector<int32_t>& seq) {
  std::vector<int32_t> path;
  int32_t at = cache::PrefixCache::kRoot;
  for (size_t i = 0; i < seq.size(); ++i) {
    at = index.child(at, seq[i], static_cast<int32_t>(i));
    if (at < 0) break;
    path.push_back(at);
  }
  return path;
}

struct PromptCase {
  std::string model;
  int32_t pad;  // the engine's pad_to_multiple (8: the plan's own padding rows, then the bucket's)
  int32_t own;  // each request's own tokens after its prompt
  // 1 or 2 prompts of 40 tokens, the requests alternating between them.
  int32_t prompts;
  // false: each prompt is cached in one go (consecutive slots, read in place); true: in two pieces
  // with other nodes between them, so the hook gathers the prompt's K/V into prefix_kv.
  bool fragmented;
};

void PrintTo(const PromptCase& c, std::ostream* os) {
  *os << c.model << " pad " << c.pad << " own " << c.own << " prompts " << c.prompts
      << (c.fragmented ? " fragmented" : " in one go");
}

std::string prompt_case_name(const ::testing::TestParamInfo<PromptCase>& info) {
  const PromptCase& c = info.param;
  return c.model + "_pad" + std::to_string(c.pad) + "_own" + std::to_string(c.own) + "_prompts" +
         std::to_string(c.prompts) + (c.fragmented ? "_gathered" : "_in_place");
}

class RecordedPrefixCachePrompt : public ::testing::TestWithParam<PromptCase> {};

// The stream workload: one request at a time, each a 40-token prompt (one prompt, or two taken in
// turn) and `own` tokens of its own (the same count every time, different tokens). The prompts
// are cached first, then every request reads all of its prompt and runs its own rows padded to the
// 64-row bucket, storing them. Each prompt gives one hook key (read in place: its first slot;
// gathered: the same key for both, with other slot indices uploaded), so per key the first
// request runs op by op, the second records and every later one replays. Each result matches the
// plain runner's with the same cache; padding rows store nothing and see no cached key.
TEST_P(RecordedPrefixCachePrompt, ReplaysAndMatchesThePlainRunner) {
  const PromptCase& c = GetParam();
  constexpr int kRequests = 12, kPrompt = 40;
  auto audit = std::make_shared<Audit>();
  std::unique_ptr<Model> recording_model = load(c.model, audit);
  const int32_t layers = recording_model->info().config.num_hidden_layers;
  const int32_t vocab = recording_model->info().vocab_size();
  const PrefixCacheConfig config{.budget_bytes = 4096 * node_bytes(*recording_model),
                                 .min_prefix_tokens = 4,
                                 .pad_to_multiple = c.pad};
  ModelRunner recorded(std::move(recording_model), AttentionMode::kTree, "cpu", config);
  ModelRunner plain(load(c.model), AttentionMode::kTree, "cpu", config);
  ASSERT_NE(recorded.prefix_cache(), nullptr);
  ASSERT_NE(plain.prefix_cache(), nullptr);
  ASSERT_GE(vocab, 256);

  auto run_both = [&](const std::vector<int32_t>& seq, const std::string& what) {
    RaggedBatch batch;
    batch.add_sequence(seq);
    const FoldPlan plan = tree_plan(batch, c.pad);
    const std::vector<SequenceOutput> want = plain.run(batch, plan);
    const std::vector<SequenceOutput> got = recorded.run(batch, plan);
    expect_close(got, want, kRecordedRelTol, what);
  };
  // Prompts with different first tokens (disjoint paths).
  std::vector<std::vector<int32_t>> prompts(c.prompts, std::vector<int32_t>(kPrompt));
  for (int p = 0; p < c.prompts; ++p) {
    for (int i = 0; i < kPrompt; ++i) prompts[p][i] = 11 + 100 * p + (7 * i + p) % 97;
  }
  if (c.fragmented) {
    for (const std::vector<int32_t>& prompt : prompts) {
      run_both(std::vector<int32_t>(prompt.begin(), prompt.begin() + kPrompt / 2), "a half");
    }
    run_both({3, 5, 8, 13, 21, 34, 55, 89, 144, 233}, "another request");
  }
  for (const std::vector<int32_t>& prompt : prompts) run_both(prompt, "a prompt");
  for (const std::vector<int32_t>& prompt : prompts) {
    const std::vector<int32_t> path = cached_path(recorded.prefix_cache()->index(), prompt);
    ASSERT_EQ(path.size(), static_cast<size_t>(kPrompt));
    bool consecutive = true;
    for (size_t i = 1; i < path.size(); ++i) {
      consecutive = consecutive && path[i] == path[0] + static_cast<int32_t>(i);
    }
    ASSERT_EQ(consecutive, !c.fragmented);
    EXPECT_EQ(cached_path(plain.prefix_cache()->index(), prompt), path);
  }

  const RecordingCounters rc0 = recorded.model().recording_counters();
  const RecordingBackend::Counters be0 = recorder_of(recorded).counters();
  const Audit audit0 = *audit;
  const cache::PrefixCacheCounters n0 = recorded.prefix_cache()->counters();
  const int64_t nodes0 = recorded.prefix_cache()->index().stats().nodes;
  for (int b = 0; b < kRequests; ++b) {
    std::vector<int32_t> seq = prompts[b % c.prompts];
    // Distinct from every earlier request's at position 40, so each hit is exactly the prompt.
    for (int i = 0; i < c.own; ++i) seq.push_back(150 + b + 12 * i);
    run_both(seq, "request " + std::to_string(b));
    ASSERT_EQ(recorded.prefix_cache()->index().stats().nodes, nodes0 + int64_t{c.own} * (b + 1));
  }

  // Every request read its whole prompt, and the forwards replayed: per key, one request op by op
  // and one recorded.
  const int keys = c.fragmented ? 1 : c.prompts;
  const cache::PrefixCacheCounters& n = recorded.prefix_cache()->counters();
  EXPECT_EQ(n.prefix_hits - n0.prefix_hits, kRequests);
  EXPECT_EQ(n.hit_tokens - n0.hit_tokens, int64_t{kPrompt} * kRequests);
  const RecordingCounters rc = recorded.model().recording_counters();
  EXPECT_EQ(rc.recorded - rc0.recorded, keys);
  EXPECT_EQ(rc.replayed - rc0.replayed, kRequests - 2 * keys);
  const RecordingBackend::Counters& be = recorder_of(recorded).counters();
  EXPECT_EQ(be.transfer_while_recording, 0);
  EXPECT_EQ(be.failed_recordings, 0);
  // Each recording is also replayed at once.
  EXPECT_EQ(be.replays - be0.replays, kRequests - keys);
  EXPECT_FALSE(recorder_of(recorded).recording());

  // Padding rows (the plan's and the bucket's) store nothing and see no cached key: the cache
  // holds exactly the unpadded runner's nodes, one stored K/V row per inserted node and layer, and
  // only each request's own rows were anchored to its prompt.
  const cache::PrefixCacheStats& got_stats = recorded.prefix_cache()->index().stats();
  const cache::PrefixCacheStats& want_stats = plain.prefix_cache()->index().stats();
  EXPECT_EQ(got_stats.nodes, want_stats.nodes);
  EXPECT_EQ(got_stats.inserted_nodes, want_stats.inserted_nodes);
  EXPECT_EQ(got_stats.evicted_nodes, 0);
  EXPECT_EQ(audit->stored_rows, int64_t{layers} * got_stats.inserted_nodes);
  EXPECT_EQ(audit->stored_rows - audit0.stored_rows, int64_t{layers} * c.own * kRequests);
  EXPECT_EQ(audit->duplicate_slots, 0);
  EXPECT_EQ(audit->scatter_calls - audit0.scatter_calls, int64_t{layers} * kRequests);
  EXPECT_EQ(audit->prefix_calls - audit0.prefix_calls, int64_t{layers} * kRequests);
  EXPECT_EQ(audit->anchored_rows - audit0.anchored_rows, int64_t{layers} * c.own * kRequests);
  EXPECT_TRUE(recorded.prefix_cache()->index().check_invariants());
}

// demo: Qwen3 (qk_norm_rope); mistral: a sliding window of 5 positions over the cached keys
// (RecordingKey::window; prefix_attention reads the prefix positions).
INSTANTIATE_TEST_SUITE_P(
    Cache, RecordedPrefixCachePrompt,
    ::testing::Values(PromptCase{"demo", 1, 8, 1, false}, PromptCase{"demo", 1, 8, 1, true},
                      PromptCase{"demo", 8, 5, 1, false}, PromptCase{"demo", 1, 8, 2, false},
                      PromptCase{"demo", 1, 8, 2, true}, PromptCase{"mistral", 1, 8, 2, true}),
    prompt_case_name);

struct StreamCase {
  std::string model;
  int32_t pad;
};

void PrintTo(const StreamCase& c, std::ostream* os) { *os << c.model << " pad " << c.pad; }

std::string stream_case_name(const ::testing::TestParamInfo<StreamCase>& info) {
  return info.param.model + "_pad" + std::to_string(info.param.pad);
}

class RecordedPrefixCacheStream : public ::testing::TestWithParam<StreamCase> {};

// Random request streams (shared prefixes, repeats, extensions, unrelated short sequences) in tree
// mode: the recording runner with a big budget and with a tiny one (12 nodes: evicts in almost
// every batch, so slots are reused and prefixes gathered) gives the cache-off results, and the
// plain runner's with the same budget; its cache holds the same nodes, and every stored K/V row
// is an inserted node's.
TEST_P(RecordedPrefixCacheStream, MatchesCacheOffAndThePlainCache) {
  const StreamCase& c = GetParam();
  constexpr int kBatches = 60;
  ModelRunner off(load(c.model), AttentionMode::kTree, "cpu");
  const ModelInfo& info = off.model().info();
  const int32_t layers = info.config.num_hidden_layers;
  PrefixCacheConfig big{.budget_bytes = 4096 * node_bytes(off.model()),
                        .min_prefix_tokens = 4,
                        .pad_to_multiple = c.pad};
  PrefixCacheConfig tiny = big;
  tiny.budget_bytes = 12 * node_bytes(off.model()) + 64;
  struct Pair {
    std::shared_ptr<Audit> audit = std::make_shared<Audit>();
    std::unique_ptr<ModelRunner> recorded, plain;
    int64_t hook_replays = 0;  // batches replayed from a recording through the cache's hook
    int64_t read_replays = 0;  // of which read cached keys
  };
  std::vector<Pair> pairs(2);
  for (size_t i = 0; i < pairs.size(); ++i) {
    const PrefixCacheConfig& config = i == 0 ? big : tiny;
    pairs[i].recorded = std::make_unique<ModelRunner>(load(c.model, pairs[i].audit),
                                                      AttentionMode::kTree, "cpu", config);
    pairs[i].plain =
        std::make_unique<ModelRunner>(load(c.model), AttentionMode::kTree, "cpu", config);
    ASSERT_NE(pairs[i].recorded->prefix_cache(), nullptr);
  }
  const std::vector<RaggedBatch> stream =
      cache_testing::random_stream(23, kBatches, std::min(info.vocab_size(), 50), 6, 20);
  for (size_t b = 0; b < stream.size(); ++b) {
    const FoldPlan plan = tree_plan(stream[b], c.pad);
    const std::vector<SequenceOutput> want = off.run(stream[b], plan);
    for (size_t i = 0; i < pairs.size(); ++i) {
      const std::string what = std::string(i == 0 ? "big" : "tiny") + " batch " + std::to_string(b);
      const RecordingCounters before = pairs[i].recorded->model().recording_counters();
      const Audit audit_before = *pairs[i].audit;
      const std::vector<SequenceOutput> got = pairs[i].recorded->run(stream[b], plan);
      // A replay whose ops included the hook's: the forward went through the cache's hook.
      const bool through_hook = pairs[i].audit->scatter_calls > audit_before.scatter_calls ||
                                pairs[i].audit->prefix_calls > audit_before.prefix_calls;
      if (through_hook &&
          pairs[i].recorded->model().recording_counters().replayed > before.replayed) {
        ++pairs[i].hook_replays;
        if (pairs[i].audit->prefix_calls > audit_before.prefix_calls) ++pairs[i].read_replays;
      }
      expect_close(got, want, kCacheOffRelTol, what + " vs cache off");
      expect_close(got, pairs[i].plain->run(stream[b], plan), kRecordedRelTol,
                   what + " vs plain cache");
    }
  }
  for (size_t i = 0; i < pairs.size(); ++i) {
    const std::string what = i == 0 ? "big" : "tiny";
    const cache::DevicePrefixCache& got = *pairs[i].recorded->prefix_cache();
    const cache::PrefixCacheStats& want = pairs[i].plain->prefix_cache()->index().stats();
    EXPECT_EQ(got.index().stats().nodes, want.nodes) << what;
    EXPECT_EQ(got.index().stats().inserted_nodes, want.inserted_nodes) << what;
    EXPECT_EQ(got.index().stats().evicted_nodes, want.evicted_nodes) << what;
    EXPECT_TRUE(got.index().check_invariants()) << what;
    EXPECT_GT(got.counters().prefix_hits, 3) << what;
    const Audit& audit = *pairs[i].audit;
    EXPECT_EQ(audit.stored_rows, int64_t{layers} * got.index().stats().inserted_nodes) << what;
    EXPECT_EQ(audit.duplicate_slots, 0) << what;
    const RecordingCounters rc = pairs[i].recorded->model().recording_counters();
    const RecordingBackend::Counters& be = recorder_of(*pairs[i].recorded).counters();
    EXPECT_EQ(be.transfer_while_recording, 0) << what;
    EXPECT_EQ(be.failed_recordings, 0) << what;
    std::printf(
        "[ stream ] %s %s pad %d: recorded %lld, replayed %lld (through the hook %lld, reading "
        "%lld), "
        "prefix hits %lld, evicted %lld\n",
        c.model.c_str(), what.c_str(), c.pad, static_cast<long long>(rc.recorded),
        static_cast<long long>(rc.replayed), static_cast<long long>(pairs[i].hook_replays),
        static_cast<long long>(pairs[i].read_replays),
        static_cast<long long>(got.counters().prefix_hits),
        static_cast<long long>(got.index().stats().evicted_nodes));
  }
  EXPECT_GT(pairs[1].recorded->prefix_cache()->index().stats().evicted_nodes, 0);
  // Under the tiny budget, forwards through the hook do replay (mostly ones that only store).
  EXPECT_GT(pairs[1].hook_replays, 0);
}

// demo: Qwen3 (qk_norm_rope); pad 8: the plan's own padding rows before the bucket's; mistral: a
// sliding window of 5 positions (RecordingKey::window) over the cached keys.
INSTANTIATE_TEST_SUITE_P(Cache, RecordedPrefixCacheStream,
                         ::testing::Values(StreamCase{"demo", 1}, StreamCase{"demo", 8},
                                           StreamCase{"mistral", 1}),
                         stream_case_name);

}  // namespace
}  // namespace radix::engine
