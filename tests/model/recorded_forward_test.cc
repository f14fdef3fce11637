// Recorded forwards (src/model/recorded_forwards.h, the "recordable" branch of
// src/model/decoder_forward.cc) on the CPU, through RecordingBackend (recording_backend.h), which
// records ops on the host as the CUDA backend records graphs: buckets, the kOps -> kRecorded ->
// kReplayed sequence per key, replays reading new inputs, every head, what is never recorded, the
// events that drop recordings, the fallback when recording fails, and no host transfer while
// recording.
//
// Tolerances. A recorded forward computes on its bucket's rows (padding after the real ones), a
// forward with record=false on the plan's rows only. Attention, norms and the elementwise ops are
// per row and do not change, but the GEMMs see another row count, and BLAS (OpenBLAS on AVX2)
// splits rows among kernels and threads by count and position, which can round a real row
// differently: so against record=false the pooled values agree within kRelTol (relative, as
// kModeRelTol in forward_invariance_test.cc; fp32 everywhere). Against the same padded batch run
// op by op (a fresh model's first sighting of the key) a replay is bit-identical, as
// ForwardOptions::record promises.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "backend/backend.h"
#include "core/fold_plan.h"
#include "fixture_util.h"
#include "formula_weights.h"
#include "model/decoder_config.h"
#include "model/flops.h"
#include "model/model.h"
#include "model/recorded_forwards.h"
#include "random_batch.h"
#include "recording_backend.h"

namespace radix::testing {
namespace {

using Failure = RecordingBackend::Failure;

constexpr double kRelTol = 1e-5;
constexpr int kVocab = 64;

// A small Qwen3 (qk_norm_rope runs) with a classifier (3 labels) and, through the reranker tokens
// given at load, a reranker: every head on one model.
DecoderConfig small_qwen3() {
  DecoderConfig c = small_decoder("qwen3-0.6b", 32);
  c.vocab_size = kVocab;
  c.num_labels = 3;
  return c;
}

// A small Mistral (rope with inv_freq in backend memory) with a sliding window of 12 on every layer
// and dynamic NTK rope scaling past 16 positions: inv_freq is uploaded anew for every batch.
DecoderConfig small_mistral() {
  DecoderConfig c = small_decoder("mistral-7b", 16);
  c.rope_theta = decoder_preset("mistral-7b").rope_theta;  // the family's own
  c.vocab_size = kVocab;
  c.sliding_window = 12;
  c.sliding_layers.assign(2, true);
  c.rope_scaling.type = RopeScaling::Type::kDynamic;
  c.rope_scaling.factor = 2.0;
  c.rope_scaling.original_max_position_embeddings = 16;
  return c;
}

// On the RecordingBackend (recording), or on the CPU backend itself (never records, never pads).
std::unique_ptr<Model> make_model(const DecoderConfig& config, bool recording,
                                  const std::string& pooling = "") {
  ModelInfo info;
  info.spec = "formula:recorded";
  info.config = config;
  LoadOptions options;
  options.backend.threads = 2;
  options.reranker_tokens = {3, 7};
  options.pooling = pooling;
  if (recording) {
    options.make_backend = [](const BackendOptions& b) -> std::unique_ptr<Backend> {
      return std::make_unique<RecordingBackend>(create_backend(b));
    };
  }
  return Model::create(info, FormulaWeights(config), options);
}

RecordingBackend& recorder_of(Model& model) {
  auto* be = dynamic_cast<RecordingBackend*>(&model.backend());
  if (be == nullptr) throw std::logic_error("not a recording model");
  return *be;
}

ForwardOptions with_head(HeadKind head) {
  ForwardOptions o;
  o.head = head;
  return o;
}

// Runs `batch` on a recording model, expects `queued`, and checks the backend saw what that means:
// op by op (ops ran directly, nothing replayed), recorded (one recording, replayed at once, no op
// run directly) or replayed (one replay, no op run directly). Never a host transfer while
// recording.
ForwardResult run(Model& model, const RaggedBatch& batch, const ForwardOptions& options,
                  ForwardQueue queued, const std::string& what) {
  RecordingBackend& be = recorder_of(model);
  const RecordingBackend::Counters before = be.counters();
  ForwardResult r = model.forward(batch, options);
  const RecordingBackend::Counters& after = be.counters();
  EXPECT_STREQ(forward_queue_name(r.queued), forward_queue_name(queued)) << what;
  EXPECT_EQ(after.transfer_while_recording, 0) << what;
  EXPECT_FALSE(be.recording()) << what;
  const int64_t direct = after.direct_ops - before.direct_ops;
  const int64_t replays = after.replays - before.replays;
  const int64_t recordings = after.recordings - before.recordings;
  switch (r.queued) {
    case ForwardQueue::kOps:
      EXPECT_GT(direct, 0) << what;
      EXPECT_EQ(replays, 0) << what;
      EXPECT_EQ(recordings, 0) << what;
      break;
    case ForwardQueue::kRecorded:
      EXPECT_EQ(recordings, 1) << what;
      EXPECT_EQ(replays, 1) << what;
      EXPECT_EQ(direct, 0) << what << ": the head must be in the recording too";
      EXPECT_EQ(after.recorded_ops - before.recorded_ops, after.replayed_ops - before.replayed_ops)
          << what;
      break;
    case ForwardQueue::kReplayed:
      EXPECT_EQ(replays, 1) << what;
      EXPECT_EQ(recordings, 0) << what;
      EXPECT_EQ(direct, 0) << what;
      break;
  }
  return r;
}

// got and want hold the same sequences' results within kRelTol (per sequence, relative).
void expect_close(const ForwardResult& got, const ForwardResult& want, const std::string& what) {
  ASSERT_EQ(got.num_sequences, want.num_sequences) << what;
  ASSERT_EQ(got.dim, want.dim) << what;
  ASSERT_EQ(got.values.size(), want.values.size()) << what;
  ASSERT_EQ(got.yes_no_logits.size(), want.yes_no_logits.size()) << what;
  const auto dim = static_cast<size_t>(want.dim);
  for (size_t s = 0; s < static_cast<size_t>(want.num_sequences); ++s) {
    EXPECT_LE(rel_err(got.values.data() + s * dim, want.values.data() + s * dim, dim), kRelTol)
        << what << " sequence " << s;
    if (!want.yes_no_logits.empty()) {
      EXPECT_LE(rel_err(got.yes_no_logits.data() + 2 * s, want.yes_no_logits.data() + 2 * s, 2),
                kRelTol)
          << what << " sequence " << s;
    }
  }
}

void expect_bit_identical(const ForwardResult& got, const ForwardResult& want,
                          const std::string& what) {
  EXPECT_EQ(got.dim, want.dim) << what;
  EXPECT_TRUE(got.values == want.values) << what;
  EXPECT_TRUE(got.yes_no_logits == want.yes_no_logits) << what;
}

// The padded batch run op by op: a fresh recording model's first sighting of the batch's key.
ForwardResult padded_ops_reference(const DecoderConfig& config, const RaggedBatch& batch,
                                   const ForwardOptions& options) {
  auto fresh = make_model(config, true);
  return run(*fresh, batch, options, ForwardQueue::kOps, "fresh padded reference");
}

// The key the forward should file `batch` under, from the published bucket functions and the
// batch's own fold plan (as decoder_forward.cc derives it).
RecordingKey expected_key(const RaggedBatch& batch, HeadKind head, const DecoderConfig& c) {
  const FoldPlan plan = build_fold_plan(batch.ids, batch.positions, batch.cu_seqlens);
  const std::set<int32_t> last(plan.last_rows.begin(), plan.last_rows.end());
  RecordingKey key;
  key.rows = RecordedForwards::row_bucket(plan.num_rows);
  key.head_rows = RecordedForwards::head_bucket(static_cast<int64_t>(last.size()));
  key.head = static_cast<int32_t>(head);
  const int64_t padding = plan.num_rows - plan.num_unique;
  key.tile_hint = RecordedForwards::tile_hint(
      static_cast<double>(tree_attention_pairs(plan) + padding) / plan.num_rows);
  const int32_t max_position = *std::max_element(batch.positions.begin(), batch.positions.end());
  key.window = c.sliding_window > 0 && max_position >= c.sliding_window;
  return key;
}

bool same_key(const RecordingKey& a, const RecordingKey& b) { return !(a < b) && !(b < a); }

// Sequences of the given lengths that share no prefix (distinct first tokens), so the plan has
// exactly sum(lengths) rows and each row sees its depth + 1 keys; tokens after the first random.
RaggedBatch distinct_roots(const std::vector<int>& lengths, std::mt19937& rng) {
  std::vector<int32_t> roots(kVocab);
  std::iota(roots.begin(), roots.end(), 0);
  std::shuffle(roots.begin(), roots.end(), rng);
  std::uniform_int_distribution<int32_t> tok(0, kVocab - 1);
  RaggedBatch batch;
  for (size_t s = 0; s < lengths.size(); ++s) {
    std::vector<int32_t> seq{roots.at(s)};
    for (int i = 1; i < lengths[s]; ++i) seq.push_back(tok(rng));
    batch.add_sequence(seq);
  }
  return batch;
}

// The same trie with other tokens: every id mapped through a random permutation of the vocabulary
// (so shared prefixes stay shared and distinct ones distinct: same plan shape, same key).
RaggedBatch relabeled(const RaggedBatch& batch, std::mt19937& rng) {
  std::vector<int32_t> perm(kVocab);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  RaggedBatch out = batch;
  for (int32_t& id : out.ids) id = perm[id];
  return out;
}

// ---- buckets ------------------------------------------------------------------------------------

TEST(RecordedForwardBuckets, RowBucketsRoundUpInQuartersOfAnOctave) {
  const std::vector<std::pair<int64_t, int64_t>> cases = {
      {0, 64},    {1, 64},      {63, 64},     {64, 64},     {65, 80},     {80, 80},   {81, 96},
      {100, 112}, {127, 128},   {128, 128},   {129, 160},   {161, 192},   {255, 256}, {257, 320},
      {513, 640}, {1025, 1280}, {1800, 2048}, {2047, 2048}, {2048, 2048}, {2049, 0},  {100000, 0}};
  for (const auto& [rows, bucket] : cases) {
    EXPECT_EQ(RecordedForwards::row_bucket(rows), bucket) << rows << " rows";
  }
  // Every bucket holds its rows with at most 25 % padding past 64 rows, and is a fixed point.
  for (int64_t rows = 1; rows <= RecordedForwards::kMaxRows; ++rows) {
    const int64_t b = RecordedForwards::row_bucket(rows);
    ASSERT_GE(b, rows);
    ASSERT_EQ(RecordedForwards::row_bucket(b), b) << rows;
    if (rows > 64) {
      ASSERT_LE(b, rows + rows / 4) << rows;
    }
  }
}

// The limit shrinks for layers larger than Qwen3-0.6B's in proportion to their weights, never
// below one bucket; a limit between buckets still pads the rows under it to their bucket.
TEST(RecordedForwardBuckets, TheRowLimitScalesWithTheLayerSize) {
  const int64_t base = RecordedForwards::kMaxRowsLayerWeights;
  EXPECT_EQ(RecordedForwards::max_rows(1), 2048);
  EXPECT_EQ(RecordedForwards::max_rows(base), 2048);
  EXPECT_EQ(RecordedForwards::max_rows(2 * base), 1024);
  EXPECT_EQ(RecordedForwards::max_rows(1000 * base), 64);
  EXPECT_EQ(RecordedForwards::row_bucket(1024, 1024), 1024);
  EXPECT_EQ(RecordedForwards::row_bucket(1025, 1024), 0);
  EXPECT_EQ(RecordedForwards::row_bucket(1000, 1000), 1024);
  EXPECT_EQ(RecordedForwards::row_bucket(1001, 1000), 0);
  EXPECT_EQ(RecordedForwards::row_bucket(64, 64), 64);
  EXPECT_EQ(RecordedForwards::row_bucket(65, 64), 0);
}

TEST(RecordedForwardBuckets, HeadBucketsArePowersOfTwoFromEight) {
  const std::vector<std::pair<int64_t, int64_t>> cases = {
      {0, 8}, {1, 8}, {8, 8}, {9, 16}, {16, 16}, {17, 32}, {100, 128}, {2048, 2048}};
  for (const auto& [rows, bucket] : cases) {
    EXPECT_EQ(RecordedForwards::head_bucket(rows), bucket) << rows << " head rows";
  }
}

TEST(RecordedForwardBuckets, TileHintRoundsDownToAPowerOfTwo) {
  EXPECT_EQ(RecordedForwards::tile_hint(0), 0);
  EXPECT_EQ(RecordedForwards::tile_hint(0.5), 0);
  EXPECT_EQ(RecordedForwards::tile_hint(std::nan("")), 0);
  EXPECT_EQ(RecordedForwards::tile_hint(1), 1);
  EXPECT_EQ(RecordedForwards::tile_hint(1.9), 1);
  EXPECT_EQ(RecordedForwards::tile_hint(5.5), 4);
  EXPECT_EQ(RecordedForwards::tile_hint(8), 8);
  EXPECT_EQ(RecordedForwards::tile_hint(1000), 512);
}

// ---- the host recorder itself (a test that trusts it needs it to catch what it claims) ----------

// At most kMaxRecordings recordings are held: a new one displaces the least recently replayed,
// and a key replayed meanwhile survives.
TEST(RecordedForwardBuckets, RecordingsAreCappedLeastRecentlyUsedFirst) {
  struct Nothing final : Backend::Recording {};
  RecordedForwards r;
  auto key = [](int64_t i) {
    RecordingKey k;
    k.rows = 64 + 16 * i;
    return k;
  };
  const auto cap = static_cast<int64_t>(RecordedForwards::kMaxRecordings);
  auto record = [&](int64_t i) {
    ASSERT_EQ(r.step(key(i), 0, 0), RecordedForwards::Step::kRunOps);
    ASSERT_EQ(r.step(key(i), 0, 0), RecordedForwards::Step::kRecord);
    r.store(key(i), RecordedForwards::Entry{std::make_unique<Nothing>(), Tensor{}});
  };
  for (int64_t i = 0; i < cap; ++i) record(i);
  EXPECT_EQ(r.size(), RecordedForwards::kMaxRecordings);
  EXPECT_EQ(r.step(key(0), 0, 0), RecordedForwards::Step::kReplay);  // 0 is now the newest use
  record(cap);                                                       // displaces 1, the oldest
  EXPECT_EQ(r.size(), RecordedForwards::kMaxRecordings);
  EXPECT_NE(r.find(key(0)), nullptr);
  EXPECT_EQ(r.find(key(1)), nullptr);
  EXPECT_NE(r.find(key(cap)), nullptr);
  EXPECT_EQ(r.step(key(1), 0, 0), RecordedForwards::Step::kRecord);  // still seen once
  EXPECT_EQ(r.counters().recorded, cap + 1);
  EXPECT_EQ(r.counters().held, cap);
}

TEST(RecordingBackendSelfTest, RecordsReplaysAndRefusesWhatADeviceCannot) {
  RecordingBackend be(create_backend(BackendOptions{}));
  Buffer a = be.alloc(DType::kF32, 2, 3);
  be.fill_constant(a, 1.0f);
  EXPECT_EQ(be.counters().direct_ops, 1);
  be.begin_recording();
  be.fill_constant(a, 5.0f);  // recorded, not run
  EXPECT_EQ(be.counters().direct_ops, 1);
  auto rec = be.end_recording();
  std::vector<float> host(6);
  be.download(a, host.data());
  EXPECT_EQ(host[0], 1.0f);
  be.replay(*rec);
  be.download(a, host.data());
  EXPECT_EQ(host[5], 5.0f);
  EXPECT_EQ(be.counters().replays, 1);

  // Host transfers and allocations while recording throw, and break the recording.
  for (int what = 0; what < 4; ++what) {
    be.begin_recording();
    const float one = 1.0f;
    switch (what) {
      case 0:
        EXPECT_THROW(be.upload(a.tensor().first_rows(1).col_slice(0, 1), &one, DType::kF32),
                     BackendError);
        break;
      case 1:
        EXPECT_THROW(be.download(a, host.data()), BackendError);
        break;
      case 2:
        EXPECT_THROW(be.synchronize(), BackendError);
        break;
      case 3:
        EXPECT_THROW(be.alloc(DType::kF32, 1, 1), BackendError);
        break;
    }
    EXPECT_THROW(be.end_recording(), BackendError) << what;
    EXPECT_FALSE(be.recording());
  }
  EXPECT_EQ(be.counters().transfer_while_recording, 4);

  // A stale epoch or freed memory makes replay throw instead of reading freed memory.
  be.bump_memory_epoch();
  EXPECT_THROW(be.replay(*rec), BackendError);
  be.begin_recording();
  be.fill_constant(a, 2.0f);
  auto rec2 = be.end_recording();
  a = Buffer{};
  EXPECT_THROW(be.replay(*rec2), BackendError);

  // Memory the backend did not allocate cannot be recorded.
  float outside[4] = {};
  be.begin_recording();
  EXPECT_THROW(be.fill_constant(Tensor{outside, DType::kF32, 1, 4, 4}, 0.0f), BackendError);
  EXPECT_THROW(be.end_recording(), BackendError);
}

// ---- recorded forwards -------------------------------------------------------------------------

// A stream of small random tree batches (shared prefixes, duplicates, several buckets, each
// template seen again relabelled and shuffled): every result matches record=false, and each key
// goes op by op, then recorded, then replayed.
TEST(RecordedForward, RandomStreamMatchesUnrecordedAndFollowsTheKeys) {
  const DecoderConfig c = small_qwen3();
  auto model = make_model(c, true);
  auto plain = make_model(c, false);
  std::mt19937 rng(7);
  // Size the arena first (512 rows, 512 tokens, 64 sequences, record=false), so that no batch below
  // grows it and the keys alone decide how each batch runs.
  std::vector<int> lengths(kVocab, 8);
  ForwardOptions unrecorded;
  unrecorded.record = false;
  run(*model, distinct_roots(lengths, rng), unrecorded, ForwardQueue::kOps, "warm-up");

  std::vector<RaggedBatch> templates;
  for (const auto& [seqs, max_len, alphabet] : std::vector<std::tuple<int, int, int>>{
           {1, 5, 4}, {3, 12, 3}, {5, 20, 2}, {8, 30, 4}, {12, 30, 3}, {6, 50, 4}}) {
    templates.push_back(random_batch(rng, seqs, max_len, 0, alphabet - 1));
  }
  std::set<RecordingKey> seen, recorded;
  int replays = 0;
  for (int i = 0; i < 40; ++i) {
    const RaggedBatch& base = templates[(i * 7 + i / 6) % templates.size()];
    RaggedBatch batch = relabeled(base, rng);
    if (i % 3 == 2) {
      std::vector<int> order;
      batch = shuffled_batch(batch, rng, order);
    }
    const RecordingKey key = expected_key(batch, HeadKind::kEmbedding, c);
    ForwardQueue want = ForwardQueue::kOps;
    if (recorded.count(key) != 0) {
      want = ForwardQueue::kReplayed;
      ++replays;
    } else if (!seen.insert(key).second) {
      want = ForwardQueue::kRecorded;
      recorded.insert(key);
    }
    const std::string what = "batch " + std::to_string(i) + " (" + std::to_string(key.rows) +
                             " bucket rows, hint " + std::to_string(key.tile_hint) + ")";
    const ForwardResult got = run(*model, batch, {}, want, what);
    expect_close(got, plain->forward(batch), what);
  }
  EXPECT_GE(replays, 15);  // the stream exercises replays, not just first sightings
}

// Batches of one key but other sizes and contents: the recording made on one batch, replayed on
// the others, gives each its own results (the replay reads the inputs uploaded for it), bit for
// bit those of the padded batch run op by op.
TEST(RecordedForward, ReplayReadsEachBatchsOwnInputs) {
  const DecoderConfig c = small_qwen3();
  auto model = make_model(c, true);
  auto plain = make_model(c, false);
  std::mt19937 rng(11);
  // 66, 77 and 72 rows (bucket 80), 6 to 8 sequences (head bucket 8), 5 to 6 visible keys a row
  // (hint 4).
  const RaggedBatch x = distinct_roots(std::vector<int>(6, 11), rng);
  const RaggedBatch y = distinct_roots(std::vector<int>(7, 11), rng);
  const RaggedBatch z = distinct_roots(std::vector<int>(8, 9), rng);
  const RaggedBatch x2 = relabeled(x, rng);
  const RecordingKey key = expected_key(x, HeadKind::kEmbedding, c);
  for (const RaggedBatch* b : {&y, &z, &x2}) {
    ASSERT_TRUE(same_key(expected_key(*b, HeadKind::kEmbedding, c), key));
  }
  ASSERT_EQ(key.rows, 80);

  const ForwardResult rx = run(*model, x, {}, ForwardQueue::kOps, "x");
  const ForwardResult ry = run(*model, y, {}, ForwardQueue::kRecorded, "y");
  const ForwardResult rz = run(*model, z, {}, ForwardQueue::kReplayed, "z");
  const ForwardResult rx2 = run(*model, x2, {}, ForwardQueue::kReplayed, "x relabelled");
  const ForwardResult ry2 = run(*model, y, {}, ForwardQueue::kReplayed, "y again");
  EXPECT_EQ(rz.num_rows, 72);
  expect_close(rx, plain->forward(x), "x");
  expect_close(ry, plain->forward(y), "y");
  expect_close(rz, plain->forward(z), "z");
  expect_close(rx2, plain->forward(x2), "x relabelled");
  expect_bit_identical(ry2, ry, "y replayed vs recorded");
  expect_bit_identical(rz, padded_ops_reference(c, z, {}), "z replayed vs padded op by op");
  expect_bit_identical(rx2, padded_ops_reference(c, x2, {}), "x2 replayed vs padded op by op");
  // Not the recorded batch's results read back: z's first embedding is its own.
  EXPECT_GT(rel_err(rz.values.data(), ry.values.data(), static_cast<size_t>(rz.dim)), 1e-3);
}

TEST(RecordedForward, EveryLastTokenHeadIsRecordedAndReplayed) {
  const DecoderConfig c = small_qwen3();
  auto model = make_model(c, true);
  auto plain = make_model(c, false);
  std::mt19937 rng(12);
  const RaggedBatch x = distinct_roots({10, 7, 12, 3, 9}, rng);
  const RaggedBatch y = relabeled(x, rng);
  std::vector<int> order;
  const RaggedBatch z = shuffled_batch(relabeled(x, rng), rng, order);
  for (const HeadKind head : {HeadKind::kEmbedding, HeadKind::kReranker, HeadKind::kClassifier}) {
    const ForwardOptions options = with_head(head);
    const std::string name = head_kind_name(head);
    const ForwardResult rx = run(*model, x, options, ForwardQueue::kOps, name + " x");
    const ForwardResult ry = run(*model, y, options, ForwardQueue::kRecorded, name + " y");
    const ForwardResult rz = run(*model, z, options, ForwardQueue::kReplayed, name + " z");
    const ForwardResult rx2 = run(*model, x, options, ForwardQueue::kReplayed, name + " x again");
    EXPECT_EQ(ry.dim, head == HeadKind::kEmbedding ? 64 : head == HeadKind::kReranker ? 1 : 3);
    expect_close(rx, plain->forward(x, options), name + " x");
    expect_close(ry, plain->forward(y, options), name + " y");
    expect_close(rz, plain->forward(z, options), name + " z");
    expect_bit_identical(rx2, rx, name + " x replayed vs op by op");
    expect_bit_identical(rz, padded_ops_reference(c, z, options), name + " z vs padded ops");
  }
  EXPECT_EQ(recorder_of(*model).counters().recordings, 3);  // one key per head
}

// Embedding options read on the host (dimensions, normalize) share the head's recording.
TEST(RecordedForward, HostSideEmbeddingOptionsShareTheRecording) {
  const DecoderConfig c = small_qwen3();
  auto model = make_model(c, true);
  auto plain = make_model(c, false);
  std::mt19937 rng(13);
  const RaggedBatch x = distinct_roots({5, 9, 4}, rng);
  run(*model, x, {}, ForwardQueue::kOps, "x");
  run(*model, x, {}, ForwardQueue::kRecorded, "x");
  ForwardOptions options;
  options.dimensions = 16;
  options.normalize = false;
  const ForwardResult r = run(*model, relabeled(x, rng), options, ForwardQueue::kReplayed, "x");
  EXPECT_EQ(r.dim, 16);
  EXPECT_EQ(r.values.size(), 3u * 16);
}

TEST(RecordedForward, SlidingWindowAndDynamicRopeReplayWithEachBatchsPositions) {
  const DecoderConfig c = small_mistral();
  auto model = make_model(c, true);
  auto plain = make_model(c, false);
  std::mt19937 rng(14);
  // Both past the window (max position 17 and 23) and past the dynamic rope's 16 positions, so
  // their inv_freq differ; 72 rows, 4 sequences, hint 8 each: one key.
  const RaggedBatch a = distinct_roots({18, 18, 18, 18}, rng);
  const RaggedBatch b = distinct_roots({24, 16, 16, 16}, rng);
  // Inside the window, and just past it with the same rows, sequences and hint (72, 8, 4): the
  // window alone tells their keys apart.
  const RaggedBatch w = distinct_roots({10, 10, 10, 10, 10, 10, 10, 2}, rng);
  const RaggedBatch w_past = distinct_roots({13, 9, 9, 9, 9, 9, 9, 5}, rng);
  const RecordingKey key = expected_key(a, HeadKind::kEmbedding, c);
  ASSERT_TRUE(key.window);
  ASSERT_TRUE(same_key(expected_key(b, HeadKind::kEmbedding, c), key));
  RecordingKey key_w = expected_key(w, HeadKind::kEmbedding, c);
  ASSERT_FALSE(key_w.window);
  key_w.window = true;
  ASSERT_TRUE(same_key(expected_key(w_past, HeadKind::kEmbedding, c), key_w));

  const ForwardResult ra = run(*model, a, {}, ForwardQueue::kOps, "a");
  const ForwardResult rb = run(*model, b, {}, ForwardQueue::kRecorded, "b");
  const ForwardResult ra2 = run(*model, a, {}, ForwardQueue::kReplayed, "a again");
  const ForwardResult rw = run(*model, w, {}, ForwardQueue::kOps, "inside the window");
  const ForwardResult rw2 = run(*model, w, {}, ForwardQueue::kRecorded, "inside the window");
  const ForwardResult rp = run(*model, w_past, {}, ForwardQueue::kOps, "past the window");
  const ForwardResult rp2 = run(*model, w_past, {}, ForwardQueue::kRecorded, "past the window");
  const ForwardResult rb2 = run(*model, b, {}, ForwardQueue::kReplayed, "b again");
  const ForwardResult rw3 = run(*model, w, {}, ForwardQueue::kReplayed, "inside the window");
  expect_close(ra, plain->forward(a), "a");
  expect_close(rb, plain->forward(b), "b");
  expect_close(rw, plain->forward(w), "w");
  expect_bit_identical(ra2, ra, "a");
  expect_bit_identical(rb2, rb, "b");
  expect_close(rp, plain->forward(w_past), "past the window");
  expect_bit_identical(rw2, rw, "w");
  expect_bit_identical(rw3, rw, "w");
  expect_bit_identical(rp2, rp, "past the window");
}

// What is never recorded runs op by op, unpadded: bit-identical to the CPU backend's own forward.
TEST(RecordedForward, WhatIsNotRecordableRunsOpByOp) {
  const DecoderConfig c = small_qwen3();
  auto model = make_model(c, true);
  auto plain = make_model(c, false);
  std::mt19937 rng(15);
  const RaggedBatch x = random_batch(rng, 6, 20, 0, 2);
  struct Case {
    std::string name;
    ForwardOptions options;
  };
  std::vector<Case> cases(5);
  cases[0].name = "mode off, record=false";
  cases[0].options.mode = AttentionMode::kOff;
  cases[0].options.record = false;
  cases[1].name = "mode scatter";
  cases[1].options.mode = AttentionMode::kScatter;
  cases[2].name = "hidden states";
  cases[2].options.return_hidden_states = true;
  cases[3].name = "record=false";
  cases[3].options.record = false;
  cases[4].name = "reranker, record=false";
  cases[4].options.record = false;
  cases[4].options.head = HeadKind::kReranker;
  for (const Case& k : cases) {
    for (int i = 0; i < 3; ++i) {
      const ForwardResult r = run(*model, x, k.options, ForwardQueue::kOps, k.name);
      const ForwardResult want = plain->forward(x, k.options);
      expect_bit_identical(r, want, k.name);
      EXPECT_EQ(r.hidden_states, want.hidden_states) << k.name;
    }
  }
  EXPECT_EQ(recorder_of(*model).counters().recordings, 0);
  EXPECT_EQ(recorder_of(*model).counters().replays, 0);

  auto mean = make_model(c, true, "mean");
  auto plain_mean = make_model(c, false, "mean");
  for (int i = 0; i < 3; ++i) {
    expect_bit_identical(run(*mean, x, {}, ForwardQueue::kOps, "mean pooling"),
                         plain_mean->forward(x), "mean pooling");
  }
  EXPECT_EQ(recorder_of(*mean).counters().recordings, 0);
}

// Mode off on a causal model (the server's single requests, batches that do not fold): the
// identity plan is a trie of chains, so the recording runs it with the tree mask, which the
// plan's subtree_end (each row's sequence end) makes exactly causal. Results are the unrecorded
// off forward's within the padding tolerance.
TEST(RecordedForward, UnfoldedCausalBatchesAreRecordedAsTrees) {
  const DecoderConfig c = small_qwen3();
  auto model = make_model(c, true);
  auto plain = make_model(c, false);
  std::mt19937 rng(17);
  ForwardOptions off;
  off.mode = AttentionMode::kOff;
  const RaggedBatch x = random_batch(rng, 6, 20, 0, 2);
  const ForwardQueue want[] = {ForwardQueue::kOps, ForwardQueue::kRecorded, ForwardQueue::kReplayed,
                               ForwardQueue::kReplayed};
  for (const ForwardQueue q : want) {
    const ForwardResult r = run(*model, x, off, q, "mode off");
    expect_close(r, plain->forward(x, off), "mode off");
  }
  // A single sequence, the stream's request shape.
  RaggedBatch one;
  std::vector<int32_t> seq(50);
  for (auto& t : seq) t = static_cast<int32_t>(rng() % 30);
  one.add_sequence(seq);
  for (const ForwardQueue q : want) {
    expect_close(run(*model, one, off, q, "one sequence"), plain->forward(one, off),
                 "one sequence");
  }
}

// Past RecordedForwards::max_rows rows (2048 for this small model) a batch runs op by op; at the
// limit it is still recorded.
TEST(RecordedForward, OnlyPlansOfAtMost2048RowsAreRecorded) {
  const DecoderConfig c = small_qwen3();
  auto model = make_model(c, true);
  auto plain = make_model(c, false);
  std::mt19937 rng(16);
  std::vector<int> lengths(32, 64);
  const RaggedBatch at_limit = distinct_roots(lengths, rng);
  lengths.back() = 65;
  const RaggedBatch over = distinct_roots(lengths, rng);
  for (int i = 0; i < 3; ++i) {
    const ForwardResult r = run(*model, over, {}, ForwardQueue::kOps, "2049 rows");
    EXPECT_EQ(r.num_rows, 2049);
    expect_close(r, plain->forward(over), "2049 rows");
  }
  const ForwardQueue want[] = {ForwardQueue::kOps, ForwardQueue::kRecorded,
                               ForwardQueue::kReplayed};
  for (const ForwardQueue q : want) {
    const RaggedBatch b = relabeled(at_limit, rng);
    const ForwardResult r = run(*model, b, {}, q, "2048 rows");
    EXPECT_EQ(r.num_rows, 2048);
    expect_close(r, plain->forward(b), "2048 rows");
  }
}

// A new memory epoch (the backend freed scratch) drops every recording: a seen key is recorded
// again, never replayed stale (the recorder would throw on a stale replay).
TEST(RecordedForward, ANewMemoryEpochDropsRecordings) {
  const DecoderConfig c = small_qwen3();
  auto model = make_model(c, true);
  auto plain = make_model(c, false);
  RecordingBackend& be = recorder_of(*model);
  std::mt19937 rng(17);
  const RaggedBatch x = distinct_roots({6, 9, 3}, rng);
  const RaggedBatch y = distinct_roots({30, 40, 50, 60}, rng);
  // y first: it sizes the arena, so that only the epoch drops recordings below.
  run(*model, y, {}, ForwardQueue::kOps, "y");
  run(*model, y, {}, ForwardQueue::kRecorded, "y");
  run(*model, x, {}, ForwardQueue::kOps, "x");
  run(*model, x, {}, ForwardQueue::kRecorded, "x");
  run(*model, y, {}, ForwardQueue::kReplayed, "y");
  be.bump_memory_epoch();
  const RaggedBatch x2 = relabeled(x, rng);
  expect_close(run(*model, x2, {}, ForwardQueue::kRecorded, "x after the epoch"),
               plain->forward(x2), "x after the epoch");
  run(*model, x, {}, ForwardQueue::kReplayed, "x");
  run(*model, y, {}, ForwardQueue::kRecorded, "y after the epoch");
  expect_close(run(*model, y, {}, ForwardQueue::kReplayed, "y"), plain->forward(y), "y");
}

// Arena growth (a batch with more rows, or more sequences, than any before) frees buffers the
// recordings name: they are dropped (the recorder would throw on a replay naming freed memory).
TEST(RecordedForward, ArenaGrowthDropsRecordings) {
  const DecoderConfig c = small_qwen3();
  auto model = make_model(c, true);
  auto plain = make_model(c, false);
  std::mt19937 rng(18);
  const RaggedBatch x = distinct_roots({6, 9, 3}, rng);
  run(*model, x, {}, ForwardQueue::kOps, "x");
  run(*model, x, {}, ForwardQueue::kRecorded, "x");
  run(*model, x, {}, ForwardQueue::kReplayed, "x");

  // More rows: a larger recordable bucket.
  const RaggedBatch more_rows = distinct_roots({100, 100, 100}, rng);
  run(*model, more_rows, {}, ForwardQueue::kOps, "300 rows");
  expect_close(run(*model, x, {}, ForwardQueue::kRecorded, "x after more rows"), plain->forward(x),
               "x after more rows");
  run(*model, x, {}, ForwardQueue::kReplayed, "x");

  // More sequences (rows within the arena): the per-sequence buffers grow.
  std::vector<int> singles(40, 1);
  run(*model, distinct_roots(singles, rng), {}, ForwardQueue::kOps, "40 sequences");
  expect_close(run(*model, x, {}, ForwardQueue::kRecorded, "x after more sequences"),
               plain->forward(x), "x after more sequences");
  run(*model, x, {}, ForwardQueue::kReplayed, "x");

  // An unrecorded batch that grows the arena drops them too.
  ForwardOptions unrecorded;
  unrecorded.record = false;
  run(*model, distinct_roots({300, 300}, rng), unrecorded, ForwardQueue::kOps, "600 rows");
  run(*model, x, {}, ForwardQueue::kRecorded, "x after an unrecorded growth");
}

// A recording that fails (at begin, at an op, at end) leaves the forward to op by op: that batch
// and every later one, with correct results and no exception.
TEST(RecordedForward, AFailedRecordingFallsBackToOpsForGood) {
  const DecoderConfig c = small_qwen3();
  auto plain = make_model(c, false);
  struct Case {
    const char* name;
    Failure failure;
    int at_op;
  };
  const Case cases[] = {{"begin throws", Failure::kBeginThrows, 0},
                        {"first op throws", Failure::kOpThrows, 0},
                        {"an op mid-forward throws", Failure::kOpThrows, 5},
                        {"end throws", Failure::kEndThrows, 0}};
  std::mt19937 rng(19);
  const RaggedBatch x = distinct_roots({6, 9, 3}, rng);
  const RaggedBatch y = distinct_roots({20, 20, 20, 20}, rng);
  for (const Case& k : cases) {
    auto model = make_model(c, true);
    RecordingBackend& be = recorder_of(*model);
    // y is recorded and replayed before the failure, to show that its recording is not used after.
    run(*model, y, {}, ForwardQueue::kOps, k.name);
    run(*model, y, {}, ForwardQueue::kRecorded, k.name);
    run(*model, x, {}, ForwardQueue::kOps, k.name);
    be.fail_next_recording(k.failure, k.at_op);
    ForwardResult failed;
    EXPECT_NO_THROW(failed = run(*model, x, {}, ForwardQueue::kOps, k.name));
    EXPECT_EQ(be.counters().failed_recordings, 1) << k.name;
    expect_close(failed, plain->forward(x), std::string(k.name) + ": the failed call");
    for (int i = 0; i < 3; ++i) {
      for (const RaggedBatch* b : {&x, &y}) {
        const ForwardResult r = run(*model, *b, {}, ForwardQueue::kOps, k.name);
        // Recording is off: unpadded, bit-identical to the CPU backend's forward.
        expect_bit_identical(r, plain->forward(*b), std::string(k.name) + ": later calls");
      }
    }
    EXPECT_EQ(be.counters().recordings, 1) << k.name;
    EXPECT_EQ(be.counters().replays, 1) << k.name;
    EXPECT_FALSE(be.recording());
  }
}

}  // namespace
}  // namespace radix::testing
