// The whole Qwen3 forward on the CUDA backend (bf16) against the CPU engine (fp32) and the
// Hugging Face fixture, in the three attention modes, which must also agree with each other.
// Tolerances (docs/cuda.md): bf16 storage of weights and activations gives hidden states within
// 2e-2 of fp32 relative to each token's largest component, embeddings with cosine >= 0.999, and
// logits within 2e-2 of the batch's largest logit magnitude.
#include <cstdlib>
#include <random>

#include "fixture_util.h"
#include "common/cosine.h"
#include "gpu_test_util.h"
#include "model/model.h"

namespace radix::cuda::testing {
namespace {

using radix::testing::FormulaWeights;
using radix::testing::read_fixture;
using radix::testing::rel_err;

constexpr double kHiddenRelTol = 2e-2;
constexpr double kMinCosine = 0.999;
constexpr double kLogitRelTol = 2e-2;

using radix::testing::cosine;

std::unique_ptr<Model> tiny_model(const nlohmann::json& fixture, const std::string& device) {
  ModelInfo info;
  info.spec = "formula:qwen3_tiny";
  info.config = parse_decoder_config(fixture.at("config"));
  info.config.num_labels = fixture.at("num_labels").get<int>();
  info.head = HeadKind::kEmbedding;
  const FormulaWeights weights(info.config);
  LoadOptions options;
  options.backend.device = device;
  options.backend.threads = 2;
  return Model::create(info, weights, options);
}

class CudaForward : public ::testing::TestWithParam<AttentionMode> {
 protected:
  static void SetUpTestSuite() {
    if (!gpu_missing_reason().empty()) return;
    // Every buffer the CUDA backend allocates starts as NaN, so a read of anything no op wrote
    // poisons the outputs compared below.
    setenv("RADIX_CUDA_POISON", "1", 1);
    fixture_ = new nlohmann::json(read_fixture("qwen3_tiny.json"));
    gpu_ = tiny_model(*fixture_, "cuda").release();
    cpu_ = tiny_model(*fixture_, "cpu").release();
  }
  static void TearDownTestSuite() {
    delete gpu_;
    delete cpu_;
    delete fixture_;
    gpu_ = cpu_ = nullptr;
    fixture_ = nullptr;
  }
  void SetUp() override { RADIX_REQUIRE_GPU(); }

  static RaggedBatch fixture_batch(const std::vector<size_t>& members) {
    RaggedBatch b;
    for (size_t m : members)
      b.add_sequence(fixture_->at("sequences")[m].get<std::vector<int32_t>>());
    return b;
  }
  static std::vector<size_t> all_sequences() {
    std::vector<size_t> v(fixture_->at("sequences").size());
    for (size_t i = 0; i < v.size(); ++i) v[i] = i;
    return v;
  }

  static nlohmann::json* fixture_;
  static Model* gpu_;
  static Model* cpu_;
};
nlohmann::json* CudaForward::fixture_ = nullptr;
Model* CudaForward::gpu_ = nullptr;
Model* CudaForward::cpu_ = nullptr;

TEST_P(CudaForward, HiddenStatesMatchCpuAndFixture) {
  const int hidden = gpu_->info().hidden_size();
  for (const auto& batch_json : fixture_->at("batches")) {
    const auto members = batch_json.get<std::vector<size_t>>();
    const RaggedBatch batch = fixture_batch(members);
    ForwardOptions options;
    options.mode = GetParam();
    options.return_hidden_states = true;
    const ForwardResult g = gpu_->forward(batch, options);
    const ForwardResult c = cpu_->forward(batch, options);
    ASSERT_EQ(g.hidden_states.size(), c.hidden_states.size());
    for (size_t j = 0; j < members.size(); ++j) {
      const auto want = fixture_->at("hidden_states")[members[j]].get<std::vector<float>>();
      const size_t begin = static_cast<size_t>(batch.cu_seqlens[j]) * hidden;
      for (size_t t = 0; t < want.size() / hidden; ++t) {
        const float* got = g.hidden_states.data() + begin + t * hidden;
        EXPECT_LE(rel_err(got, c.hidden_states.data() + begin + t * hidden, hidden), kHiddenRelTol)
            << "vs cpu: sequence " << members[j] << " token " << t;
        EXPECT_LE(rel_err(got, want.data() + t * hidden, hidden), kHiddenRelTol)
            << "vs fixture: sequence " << members[j] << " token " << t;
      }
    }
  }
}

TEST_P(CudaForward, EmbeddingsRerankerAndClassifierMatch) {
  const RaggedBatch batch = fixture_batch(all_sequences());
  const size_t n = all_sequences().size();
  ForwardOptions options;
  options.mode = GetParam();
  const ForwardResult e = gpu_->forward(batch, options);
  ASSERT_EQ(e.dim, gpu_->info().hidden_size());
  for (size_t i = 0; i < n; ++i) {
    const auto want = fixture_->at("embeddings")[i].get<std::vector<float>>();
    EXPECT_GE(cosine(e.values.data() + i * e.dim, want.data(), e.dim), kMinCosine) << "seq " << i;
  }

  options.head = HeadKind::kReranker;
  const ForwardResult r = gpu_->forward(batch, options);
  double scale = 0;
  for (size_t i = 0; i < n; ++i) {
    scale = std::max({scale, std::fabs(fixture_->at("yes_logit")[i].get<double>()),
                      std::fabs(fixture_->at("no_logit")[i].get<double>())});
  }
  for (size_t i = 0; i < n; ++i) {
    EXPECT_NEAR(r.yes_no_logits[2 * i], fixture_->at("yes_logit")[i].get<double>(),
                kLogitRelTol * scale)
        << "seq " << i;
    EXPECT_NEAR(r.yes_no_logits[2 * i + 1], fixture_->at("no_logit")[i].get<double>(),
                kLogitRelTol * scale)
        << "seq " << i;
  }

  options.head = HeadKind::kClassifier;
  const ForwardResult k = gpu_->forward(batch, options);
  ASSERT_EQ(k.dim, fixture_->at("num_labels").get<int>());
  double kscale = 0;
  for (const auto& row : fixture_->at("classifier_logits")) {
    for (const auto& v : row) kscale = std::max(kscale, std::fabs(v.get<double>()));
  }
  for (size_t i = 0; i < n; ++i) {
    const auto want = fixture_->at("classifier_logits")[i].get<std::vector<float>>();
    for (int c = 0; c < k.dim; ++c) {
      EXPECT_NEAR(k.values[i * k.dim + c], want[c], kLogitRelTol * kscale) << "seq " << i;
    }
  }
}

// Random deep and wide tries (long shared stems, many short branches, single tokens, duplicates):
// the three modes on the GPU agree with each other and with the CPU engine. The last trial's
// 1,000-token stem shared in full gives ~500 visible keys per row, so tree attention takes its
// 128-key tiles (docs/attention.md); the others stay below the 256-key switch.
TEST(CudaForwardModes, AgreeOnRandomTries) {
  RADIX_REQUIRE_GPU();
  setenv("RADIX_CUDA_POISON", "1", 1);
  const auto fixture = read_fixture("qwen3_tiny.json");
  auto gpu = tiny_model(fixture, "cuda");
  auto cpu = tiny_model(fixture, "cpu");
  const int hidden = gpu->info().hidden_size();
  for (int trial = 0; trial < 4; ++trial) {
    std::mt19937 rng(trial);
    RaggedBatch batch;
    const bool long_stem = trial == 3;
    std::vector<int32_t> stem(long_stem ? 1000 : 300);
    for (auto& t : stem) t = static_cast<int32_t>(rng() % 10000);
    const int seqs = long_stem ? 8 : 1 + 20 * trial;
    for (int s = 0; s < seqs; ++s) {
      const size_t shared = long_stem ? stem.size() : rng() % stem.size();
      std::vector<int32_t> seq(stem.begin(), stem.begin() + shared);
      const int tail = static_cast<int>(rng() % 50);
      for (int i = 0; i < tail; ++i) seq.push_back(static_cast<int32_t>(rng() % 4));
      if (seq.empty()) seq.push_back(7);
      batch.add_sequence(seq);
    }
    ForwardOptions options;
    options.return_hidden_states = true;
    std::vector<std::vector<float>> by_mode;
    for (AttentionMode mode :
         {AttentionMode::kOff, AttentionMode::kScatter, AttentionMode::kTree}) {
      options.mode = mode;
      by_mode.push_back(gpu->forward(batch, options).hidden_states);
    }
    options.mode = AttentionMode::kTree;
    const auto ref = cpu->forward(batch, options).hidden_states;
    for (size_t t = 0; t < static_cast<size_t>(batch.num_tokens()); ++t) {
      const float* want = ref.data() + t * hidden;
      for (size_t m = 0; m < by_mode.size(); ++m) {
        ASSERT_LE(rel_err(by_mode[m].data() + t * hidden, want, hidden), kHiddenRelTol)
            << "trial " << trial << " mode " << m << " token " << t;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, CudaForward,
                         ::testing::Values(AttentionMode::kOff, AttentionMode::kScatter,
                                           AttentionMode::kTree),
                         [](const auto& info) {
                           return std::string(attention_mode_name(info.param));
                         });

}  // namespace
}  // namespace radix::cuda::testing
