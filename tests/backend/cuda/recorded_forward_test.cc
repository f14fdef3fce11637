// Recorded forwards on the GPU (CUDA graphs, docs/cuda.md "Recorded forwards"): the backend's
// recording API, and the model's small tree batches replayed from their bucket's recording.
//
// Bit for bit where the kernels are the same: a batch run op by op on its padded plan, recorded,
// and replayed runs the same kernels with the same launch shapes on the same inputs, so the three
// results are identical. Against the unpadded op-by-op forward (record = false) cuBLASLt may pick
// other GEMM algorithms for the other row count, so there the bound is bf16's: cosine >= 0.9999
// per embedding (each differs from the other by a few bf16 roundings, 2^-9 relative, of the same
// fp32 sums) and 1e-2 absolute on reranker scores (sigmoids of logits that differ by a few bf16
// steps).
#include <cstdlib>
#include <random>

#include "backend/backend.h"
#include "common/cosine.h"
#include "core/fold_plan.h"
#include "gpu_test_util.h"
#include "model/model.h"
#include "random_batch.h"

namespace radix::cuda::testing {
namespace {

using radix::testing::cosine;
using radix::testing::random_batch;

// Four layers of Qwen3-0.6B's shape: every op of the real forward at its real widths.
constexpr const char* kSpec =
    "random:hidden=1024,layers=4,heads=16,kv_heads=8,head_dim=128,intermediate=3072,vocab=16384";

std::unique_ptr<Model> gpu_model(HeadKind head) {
  LoadOptions options;
  options.backend.device = "cuda";
  options.head = head;
  options.seed = 7;
  return Model::load(kSpec, options);
}

ForwardResult run(Model& m, const RaggedBatch& b, bool record = true) {
  ForwardOptions o;
  o.record = record;
  return m.forward(b, o);
}

void expect_bit_identical(const ForwardResult& a, const ForwardResult& b, const char* what) {
  ASSERT_EQ(a.values.size(), b.values.size()) << what;
  for (size_t i = 0; i < a.values.size(); ++i) {
    ASSERT_EQ(a.values[i], b.values[i]) << what << " at " << i;
  }
}

void expect_close_embeddings(const ForwardResult& a, const ForwardResult& b) {
  ASSERT_EQ(a.values.size(), b.values.size());
  const size_t d = static_cast<size_t>(a.dim);
  for (size_t s = 0; s * d < a.values.size(); ++s) {
    EXPECT_GE(cosine(a.values.data() + s * d, b.values.data() + s * d, d), 0.9999)
        << "sequence " << s;
  }
}

class CudaRecordedForward : public ::testing::Test {
 protected:
  void SetUp() override { RADIX_REQUIRE_GPU(); }
};

TEST_F(CudaRecordedForward, OpsRecordingAndReplayOfOneBatchAreBitIdentical) {
  auto m = gpu_model(HeadKind::kEmbedding);
  std::mt19937 rng(1);
  const RaggedBatch b = random_batch(rng, 12, 40, 1, 30);
  const ForwardResult ops = run(*m, b), recorded = run(*m, b), replayed = run(*m, b);
  EXPECT_EQ(ops.queued, ForwardQueue::kOps);
  EXPECT_EQ(recorded.queued, ForwardQueue::kRecorded);
  EXPECT_EQ(replayed.queued, ForwardQueue::kReplayed);
  expect_bit_identical(ops, recorded, "recorded");
  expect_bit_identical(ops, replayed, "replayed");
  expect_close_embeddings(run(*m, b, /*record=*/false), replayed);
}

// The replay reads each batch's own inputs: batches of one key (rows 164-192, 8 sequences, the
// same tile hint) with other tokens and other trie shapes (a shared prefix of 0-4 tokens) each
// equal their own op-by-op forward on a fresh model, bit for bit (there the batch is its bucket's
// first, run op by op on the same padded plan).
TEST_F(CudaRecordedForward, ReplaysOfOneBucketGiveEachBatchItsOwnResults) {
  auto m = gpu_model(HeadKind::kEmbedding);
  std::mt19937 rng(2);
  std::uniform_int_distribution<int32_t> token(1, 16000);
  for (int i = 0; i < 8; ++i) {
    const int shared = i % 5;
    std::vector<int32_t> prefix(shared);
    for (auto& t : prefix) t = token(rng);
    RaggedBatch b;
    for (int s = 0; s < 8; ++s) {
      std::vector<int32_t> seq = prefix;
      while (seq.size() < 24) seq.push_back(token(rng));
      b.add_sequence(seq);
    }
    const ForwardResult got = run(*m, b);
    EXPECT_EQ(got.queued, i == 0   ? ForwardQueue::kOps
                          : i == 1 ? ForwardQueue::kRecorded
                                   : ForwardQueue::kReplayed)
        << "batch " << i;
    auto fresh = gpu_model(HeadKind::kEmbedding);
    const ForwardResult want = run(*fresh, b);
    ASSERT_EQ(want.queued, ForwardQueue::kOps);
    expect_bit_identical(want, got, "batch against its own op-by-op forward");
  }
}

TEST_F(CudaRecordedForward, RerankerScoresReplayed) {
  auto m = gpu_model(HeadKind::kReranker);
  std::mt19937 rng(3);
  for (int i = 0; i < 4; ++i) {
    const RaggedBatch b = random_batch(rng, 3 + i, 60, 1, 200);
    const ForwardResult ops = run(*m, b), recorded = run(*m, b), replayed = run(*m, b);
    EXPECT_EQ(replayed.queued, ForwardQueue::kReplayed) << "batch " << i;
    expect_bit_identical(ops, recorded, "recorded");
    expect_bit_identical(ops, replayed, "replayed");
    const ForwardResult want = run(*m, b, /*record=*/false);
    ASSERT_EQ(replayed.values.size(), want.values.size());
    for (size_t s = 0; s < want.values.size(); ++s) {
      EXPECT_NEAR(replayed.values[s], want.values[s], 1e-2) << "batch " << i << " sequence " << s;
    }
  }
}

// Only small tree batches with a last-token head are recorded.
TEST_F(CudaRecordedForward, OtherBatchesRunOpByOp) {
  auto m = gpu_model(HeadKind::kEmbedding);
  std::mt19937 rng(4);
  const RaggedBatch small = random_batch(rng, 6, 30, 1, 30);
  ForwardOptions scatter;
  scatter.mode = AttentionMode::kScatter;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(m->forward(small, scatter).queued, ForwardQueue::kOps);
  ForwardOptions hidden;
  hidden.return_hidden_states = true;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(m->forward(small, hidden).queued, ForwardQueue::kOps);
  RaggedBatch large;
  for (int s = 0; s < 9; ++s) {
    std::vector<int32_t> seq(250);
    for (auto& t : seq) t = static_cast<int32_t>(rng() % 16000);
    large.add_sequence(seq);
  }
  for (int i = 0; i < 3; ++i) EXPECT_EQ(run(*m, large).queued, ForwardQueue::kOps);
}

// Mode off (a single request, a batch that does not fold) is recorded with the tree kernels on
// the identity plan's chains, and matches the varlen kernels' off forward within bf16's bound.
TEST_F(CudaRecordedForward, UnfoldedBatchesAreRecordedAsChains) {
  auto m = gpu_model(HeadKind::kEmbedding);
  std::mt19937 rng(6);
  ForwardOptions off;
  off.mode = AttentionMode::kOff;
  for (const int seqs : {1, 5}) {
    const RaggedBatch b = random_batch(rng, seqs, 120, 1, 16000);
    const ForwardResult ops = m->forward(b, off), recorded = m->forward(b, off),
                        replayed = m->forward(b, off);
    EXPECT_EQ(ops.queued, ForwardQueue::kOps);
    EXPECT_EQ(recorded.queued, ForwardQueue::kRecorded);
    EXPECT_EQ(replayed.queued, ForwardQueue::kReplayed);
    expect_bit_identical(ops, replayed, "replayed");
    off.record = false;
    expect_close_embeddings(m->forward(b, off), replayed);
    off.record = true;
  }
}

// --enforce-eager (BackendOptions::cuda_graphs = false): the backend does not record, and every
// forward runs op by op.
TEST_F(CudaRecordedForward, EnforceEagerRecordsNothing) {
  LoadOptions options;
  options.backend.device = "cuda";
  options.backend.cuda_graphs = false;
  options.seed = 7;
  auto m = Model::load(kSpec, options);
  EXPECT_FALSE(m->backend().supports_recording());
  std::mt19937 rng(8);
  const RaggedBatch b = random_batch(rng, 6, 30, 1, 30);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(run(*m, b).queued, ForwardQueue::kOps);
  EXPECT_EQ(m->recording_counters().recorded, 0);
}

// Host transfers are refused while recording, and the backend works on after the refusal.
TEST_F(CudaRecordedForward, BackendRefusesHostTransfersWhileRecording) {
  BackendOptions options;
  options.device = "cuda";
  auto be = create_backend(options);
  ASSERT_TRUE(be->supports_recording());
  Buffer x = be->alloc(DType::kF32, 4, 8), y = be->alloc(DType::kF32, 4, 8);
  std::vector<float> host(32, 1.0f), out(32);
  be->begin_recording();
  EXPECT_THROW(be->upload(x, host.data(), DType::kF32), BackendError);
  EXPECT_THROW(be->download(x, out.data()), BackendError);
  EXPECT_THROW(be->synchronize(), BackendError);
  EXPECT_THROW(be->alloc(DType::kF32, 1, 1), BackendError);
  be->fill_constant(y, 2.0f);
  const auto recording = be->end_recording();
  be->fill_constant(y, 0.0f);
  be->replay(*recording);
  be->download(y, out.data());
  for (const float v : out) ASSERT_EQ(v, 2.0f);
}

}  // namespace
}  // namespace radix::cuda::testing
