// The whole forward with --dtype fp8 (e4m3 projections with per-channel scales, dynamic per-row
// activation scales) on random weights of Qwen3-0.6B's shape, against the bf16 forward of the
// same weights; and the three attention modes of the fp8 forward against each other. Thresholds
// and why: docs/numerics.md, "fp8".
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>

#include "common/cosine.h"
#include "gpu_test_util.h"
#include "model/model.h"

namespace radix::cuda::testing {
namespace {

using radix::testing::cosine;

std::unique_ptr<Model> random_model(bool fp8) {
  LoadOptions options;
  options.backend.device = "cuda";
  options.backend.fp8 = fp8;
  options.seed = 3;
  return Model::load("random:qwen3-0.6b", options);
}

// 24 sequences: three groups sharing long prefixes (so tree and scatter fold them), lengths
// 40-400, ids anywhere in the vocabulary.
RaggedBatch test_batch(int32_t vocab) {
  std::mt19937 rng(5);
  RaggedBatch batch;
  for (int g = 0; g < 3; ++g) {
    std::vector<int32_t> stem(100 + 100 * g);
    for (auto& t : stem) t = static_cast<int32_t>(rng() % vocab);
    for (int s = 0; s < 8; ++s) {
      std::vector<int32_t> seq(stem.begin(), stem.begin() + rng() % stem.size());
      const int tail = 40 + static_cast<int>(rng() % 160);
      for (int i = 0; i < tail; ++i) seq.push_back(static_cast<int32_t>(rng() % vocab));
      batch.add_sequence(seq);
    }
  }
  return batch;
}

TEST(Fp8Forward, EmbeddingsCloseToBf16AndModesAgree) {
  RADIX_REQUIRE_GPU();
  setenv("RADIX_CUDA_POISON", "1", 1);
  auto bf16_model = random_model(false);
  auto fp8_model = random_model(true);
  const RaggedBatch batch = test_batch(bf16_model->info().vocab_size());
  ForwardOptions options;
  options.mode = AttentionMode::kTree;
  const ForwardResult want = bf16_model->forward(batch, options);
  const ForwardResult got = fp8_model->forward(batch, options);
  ASSERT_EQ(got.values.size(), want.values.size());
  const int n = want.num_sequences, dim = want.dim;
  double sum = 0, lowest = 1;
  for (int i = 0; i < n; ++i) {
    const double c = cosine(got.values.data() + i * dim, want.values.data() + i * dim, dim);
    ASSERT_TRUE(std::isfinite(c)) << "sequence " << i;
    sum += c;
    lowest = std::min(lowest, c);
  }
  std::printf("fp8 vs bf16 embeddings (random:qwen3-0.6b, %d sequences): cosine mean %.5f min %.5f\n",
              n, sum / n, lowest);
  EXPECT_GE(sum / n, 0.999);
  EXPECT_GE(lowest, 0.995);

  // The modes: each row is quantised with its own scale, so folding changes no fp8 operand; only
  // the bf16 attention's summation order differs between modes, as in the bf16 forward, and
  // fp8 rounding can amplify such a difference in one element of one row by at most one e4m3 step.
  for (AttentionMode mode : {AttentionMode::kOff, AttentionMode::kScatter}) {
    options.mode = mode;
    const ForwardResult other = fp8_model->forward(batch, options);
    for (int i = 0; i < n; ++i) {
      EXPECT_GE(cosine(other.values.data() + i * dim, got.values.data() + i * dim, dim), 0.999)
          << attention_mode_name(mode) << " vs tree, sequence " << i;
    }
  }
}

// A model loaded with --max-batch-tokens reserves its arena before any forward, when nothing says
// fp8 yet; the first fp8 forward must still get its e4m3 buffers (it once read a 0-row slice).
TEST(Fp8Forward, ArenaReservedAtLoadStillGetsE4m3Buffers) {
  RADIX_REQUIRE_GPU();
  auto plain = random_model(true);
  LoadOptions options;
  options.backend.device = "cuda";
  options.backend.fp8 = true;
  options.seed = 3;
  options.max_batch_tokens = 8192;
  auto reserved = Model::load("random:qwen3-0.6b", options);
  const RaggedBatch batch = test_batch(plain->info().vocab_size());
  ForwardOptions fwd;
  fwd.mode = AttentionMode::kTree;
  const ForwardResult want = plain->forward(batch, fwd);
  const ForwardResult got = reserved->forward(batch, fwd);
  ASSERT_EQ(got.values.size(), want.values.size());
  // Same weights, batch, kernels and shapes: equal up to cuBLASLt picking another algorithm for
  // another workspace, far below fp8's own rounding.
  for (int i = 0; i < want.num_sequences; ++i) {
    EXPECT_GE(cosine(got.values.data() + i * want.dim, want.values.data() + i * want.dim, want.dim),
              0.9999)
        << "sequence " << i;
  }
}

TEST(Fp8Forward, CpuRefusesFp8) {
  LoadOptions options;
  options.backend.device = "cpu";
  options.backend.fp8 = true;
  try {
    Model::load("demo", options);
    FAIL() << "fp8 on the CPU loaded";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("fp8"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace radix::cuda::testing
