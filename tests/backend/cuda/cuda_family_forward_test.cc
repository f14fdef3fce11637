// Every decoder family's whole forward on the CUDA backend (bf16) against the transformers
// fixtures of tests/fixtures/families (the CPU test of the same fixtures is
// tests/model/family_fixture_test.cc), in the three attention modes, with every allocation
// poisoned. The tiny models have head_dim 16 and 32, which have no fast attention kernel: their
// attention runs on the reference kernel (with the same soft-cap, window and bidirectional
// options), so this checks the other kernels, the options and the model's use of the backend;
// the fast kernels' options are covered by attention_test and cuda_family_ops_test.
// Tolerances (docs/cuda.md): hidden states within 2e-2 of each token's largest component,
// embeddings with cosine >= 0.999, reranker logits within 2e-2 of the batch's largest |logit|.
#include <cmath>
#include <cstdlib>
#include <string>
#include <tuple>
#include <vector>

#include "fixture_util.h"
#include "gpu_test_util.h"
#include "model/model.h"

namespace radix::cuda::testing {
namespace {

using radix::testing::fixture_path;
using radix::testing::read_fixture;
using radix::testing::rel_err;

constexpr double kHiddenRelTol = 2e-2;
constexpr double kMinCosine = 0.999;
constexpr double kLogitRelTol = 2e-2;

const std::vector<std::string> kFamilies = {"mistral", "qwen2", "qwen2_bidirectional",
                                            "llama",   "gemma", "gemma2"};

double cosine(const float* a, const float* b, size_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < n; ++i) {
    ab += double(a[i]) * b[i], aa += double(a[i]) * a[i], bb += double(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

class CudaFamilyForward : public ::testing::TestWithParam<std::tuple<std::string, AttentionMode>> {
 protected:
  void SetUp() override {
    RADIX_REQUIRE_GPU();
    setenv("RADIX_CUDA_POISON", "1", 1);
    name_ = std::get<0>(GetParam());
    ref_ = read_fixture("families/" + name_ + "/reference.json");
  }
  std::unique_ptr<Model> load(const std::string& pooling = "") const {
    LoadOptions options;
    options.backend.device = "cuda";
    options.pooling = pooling;
    options.reranker_tokens = ref_.at("head_tokens").get<std::vector<int32_t>>();
    return Model::load(fixture_path("families/" + name_), options);
  }
  std::vector<int32_t> sequence(size_t i) const {
    return ref_.at("sequences")[i].get<std::vector<int32_t>>();
  }
  std::vector<std::vector<int32_t>> batches() const {
    return ref_.at("batches").get<std::vector<std::vector<int32_t>>>();
  }
  ForwardResult run(Model& model, const std::vector<int32_t>& members, HeadKind head,
                    bool hidden_states = false) const {
    RaggedBatch batch;
    for (const int32_t i : members) batch.add_sequence(sequence(i));
    ForwardOptions options;
    options.mode = std::get<1>(GetParam());
    options.head = head;
    options.return_hidden_states = hidden_states;
    return model.forward(batch, options);
  }
  std::string name_;
  nlohmann::json ref_;
};

TEST_P(CudaFamilyForward, HiddenStatesAndEmbeddingsMatchTransformers) {
  const auto model = load();
  const int64_t hidden = model->info().hidden_size();
  for (const auto& members : batches()) {
    const ForwardResult r = run(*model, members, HeadKind::kEmbedding, true);
    int64_t begin = 0;
    for (size_t k = 0; k < members.size(); ++k) {
      const int32_t i = members[k];
      const auto want = ref_.at("hidden_states")[i].get<std::vector<float>>();
      const int64_t len = static_cast<int64_t>(sequence(i).size());
      ASSERT_EQ(static_cast<int64_t>(want.size()), len * hidden);
      double worst = 0;
      for (int64_t t = 0; t < len; ++t) {
        worst = std::max(worst, rel_err(r.hidden_states.data() + (begin + t) * hidden,
                                        want.data() + t * hidden, hidden));
      }
      EXPECT_LE(worst, kHiddenRelTol) << name_ << " sequence " << i;
      begin += len;
      const auto emb = ref_.at("last_embeddings")[i].get<std::vector<float>>();
      EXPECT_GE(cosine(r.values.data() + k * r.dim, emb.data(), emb.size()), kMinCosine)
          << name_ << " sequence " << i;
    }
  }
}

TEST_P(CudaFamilyForward, MeanEmbeddingsAndRerankerLogitsMatchTransformers) {
  const auto mean_model = load("mean");
  const auto model = load();
  for (const auto& members : batches()) {
    const ForwardResult r = run(*mean_model, members, HeadKind::kEmbedding);
    for (size_t k = 0; k < members.size(); ++k) {
      const auto want = ref_.at("mean_embeddings")[members[k]].get<std::vector<float>>();
      EXPECT_GE(cosine(r.values.data() + k * r.dim, want.data(), want.size()), kMinCosine)
          << name_ << " sequence " << members[k];
    }
    const ForwardResult s = run(*model, members, HeadKind::kReranker);
    double scale = 0;
    for (const int32_t i : members) {
      for (const double l : ref_.at("head_logits")[i].get<std::vector<double>>()) {
        scale = std::max(scale, std::fabs(l));
      }
    }
    // The same head without last-layer pruning (hidden states asked for: the last layer runs on
    // every row): only GEMM row counts differ, so the logits agree to bf16 rounding. A failure
    // here points at the pruned path, one only above at precision.
    const ForwardResult full = run(*model, members, HeadKind::kReranker, true);
    for (size_t k = 0; k < members.size(); ++k) {
      const auto want = ref_.at("head_logits")[members[k]].get<std::vector<double>>();
      EXPECT_NEAR(s.yes_no_logits[2 * k], want[0], kLogitRelTol * scale) << name_;
      EXPECT_NEAR(s.yes_no_logits[2 * k + 1], want[1], kLogitRelTol * scale) << name_;
      EXPECT_NEAR(s.yes_no_logits[2 * k], full.yes_no_logits[2 * k], 1e-2 * scale) << name_;
      EXPECT_NEAR(s.yes_no_logits[2 * k + 1], full.yes_no_logits[2 * k + 1], 1e-2 * scale) << name_;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Families, CudaFamilyForward,
                         ::testing::Combine(::testing::ValuesIn(kFamilies),
                                            ::testing::Values(AttentionMode::kOff,
                                                              AttentionMode::kScatter,
                                                              AttentionMode::kTree)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" +
                                  attention_mode_name(std::get<1>(info.param));
                         });

}  // namespace
}  // namespace radix::cuda::testing
