// Every decoder family against Hugging Face transformers 5.17 in fp32: tiny checkpoints saved by
// transformers itself (tests/fixtures/families/<name>/, tools/make_fixtures.py --families) loaded
// through the real folder loader, in all three attention modes, on batches with shared prefixes,
// a duplicate, sequences that are prefixes of others and lengths well past the sliding windows.
// Tolerances as the Qwen3 fixture (docs/numerics.md): fp32 with different summation orders.
#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

#include "fixture_util.h"
#include "model/model.h"
#include "model/rope.h"

namespace radix::testing {
namespace {

constexpr double kHiddenRelTol = 1e-4;
constexpr double kEmbeddingAbsTol = 1e-5;
constexpr double kLogitAbsTol = 1e-4;

const std::vector<std::string> kFamilies = {"mistral", "qwen2", "qwen2_bidirectional",
                                            "llama",   "gemma", "gemma2"};

std::unique_ptr<Model> load_family(const std::string& name, const nlohmann::json& ref,
                                   const std::string& pooling = "") {
  LoadOptions options;
  options.backend.threads = 2;
  options.pooling = pooling;
  options.reranker_tokens = ref.at("head_tokens").get<std::vector<int32_t>>();
  return Model::load(fixture_path("families/" + name), options);
}

class FamilyFixture : public ::testing::TestWithParam<std::tuple<std::string, AttentionMode>> {
 protected:
  void SetUp() override {
    name_ = std::get<0>(GetParam());
    ref_ = read_fixture("families/" + name_ + "/reference.json");
    model_ = load_family(name_, ref_);
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
  std::unique_ptr<Model> model_;
};

TEST_P(FamilyFixture, HiddenStatesOfEveryTokenMatchTransformers) {
  const int64_t hidden = model_->info().hidden_size();
  for (const auto& members : batches()) {
    const ForwardResult r = run(*model_, members, HeadKind::kEmbedding, true);
    int64_t begin = 0;
    for (const int32_t i : members) {
      const auto want = ref_.at("hidden_states")[i].get<std::vector<float>>();
      const int64_t len = static_cast<int64_t>(sequence(i).size());
      ASSERT_EQ(static_cast<int64_t>(want.size()), len * hidden);
      for (int64_t t = 0; t < len; ++t) {
        EXPECT_LE(rel_err(r.hidden_states.data() + (begin + t) * hidden, want.data() + t * hidden,
                          hidden),
                  kHiddenRelTol)
            << name_ << " sequence " << i << " token " << t;
      }
      begin += len;
    }
    if (!model_->info().dedup()) {
      EXPECT_EQ(r.num_rows, r.num_tokens) << "a bidirectional model must never be folded";
    }
  }
}

TEST_P(FamilyFixture, LastTokenEmbeddingsMatchTransformers) {
  for (const auto& members : batches()) {
    const ForwardResult r = run(*model_, members, HeadKind::kEmbedding);
    ASSERT_EQ(r.dim, model_->info().hidden_size());
    for (size_t k = 0; k < members.size(); ++k) {
      const auto want = ref_.at("last_embeddings")[members[k]].get<std::vector<float>>();
      for (int32_t c = 0; c < r.dim; ++c) {
        ASSERT_NEAR(r.values[k * r.dim + c], want[c], kEmbeddingAbsTol)
            << name_ << " sequence " << members[k];
      }
    }
  }
}

TEST_P(FamilyFixture, MeanPooledEmbeddingsMatchTransformers) {
  const auto model = load_family(name_, ref_, "mean");
  ASSERT_EQ(model->info().pooling, "mean");
  for (const auto& members : batches()) {
    const ForwardResult r = run(*model, members, HeadKind::kEmbedding);
    for (size_t k = 0; k < members.size(); ++k) {
      const auto want = ref_.at("mean_embeddings")[members[k]].get<std::vector<float>>();
      for (int32_t c = 0; c < r.dim; ++c) {
        ASSERT_NEAR(r.values[k * r.dim + c], want[c], kEmbeddingAbsTol)
            << name_ << " sequence " << members[k];
      }
    }
  }
}

TEST_P(FamilyFixture, RerankerLogitsOfNamedTokensMatchTransformers) {
  for (const auto& members : batches()) {
    const ForwardResult r = run(*model_, members, HeadKind::kReranker);
    ASSERT_EQ(r.dim, 1);
    for (size_t k = 0; k < members.size(); ++k) {
      const auto want = ref_.at("head_logits")[members[k]].get<std::vector<double>>();
      const double yes = r.yes_no_logits[2 * k], no = r.yes_no_logits[2 * k + 1];
      EXPECT_NEAR(yes, want[0], kLogitAbsTol) << name_ << " sequence " << members[k];
      EXPECT_NEAR(no, want[1], kLogitAbsTol) << name_ << " sequence " << members[k];
      EXPECT_NEAR(r.values[k], 1.0 / (1.0 + std::exp(-(want[0] - want[1]))), 1e-5);
    }
  }
}

std::string case_name(const ::testing::TestParamInfo<FamilyFixture::ParamType>& info) {
  return std::get<0>(info.param) + "_" + attention_mode_name(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyFixture,
                         ::testing::Combine(::testing::ValuesIn(kFamilies),
                                            ::testing::Values(AttentionMode::kOff,
                                                              AttentionMode::kScatter,
                                                              AttentionMode::kTree)),
                         case_name);

// The fixtures come from transformers, and say what they test.
TEST(FamilyFixtureSource, FixturesComeFromTransformersAndExerciseTheirFeatures) {
  for (const std::string& name : kFamilies) {
    const auto ref = read_fixture("families/" + name + "/reference.json");
    EXPECT_EQ(ref.at("source").get<std::string>().rfind("transformers", 0), 0u) << name;
    const auto model = load_family(name, ref);
    const DecoderConfig& c = model->info().config;
    // The host-side rope table equals transformers' inv_freq buffer (llama3 scaling included).
    const auto want = ref.at("inv_freq").get<std::vector<float>>();
    const auto got = rope_inv_freq(c);
    ASSERT_EQ(got.size(), want.size()) << name;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_NEAR(got[i], want[i], 1e-6 * std::fabs(want[i])) << name << " inv_freq " << i;
    }
    // The window (or bidirectional attention) changed transformers' outputs: not vacuous.
    // gemma2's check could not run in the fixture script (its config refuses no window), so
    // its window is checked by the sequence lengths below instead.
    if (c.sliding_window > 0 || !c.causal) {
      const double effect = ref.at("effect_check").get<double>();
      EXPECT_TRUE(effect > 1e-3 || (name == "gemma2" && effect < 0)) << name;
    }
    size_t longest = 0;
    for (const auto& s : ref.at("sequences")) longest = std::max(longest, s.size());
    if (c.sliding_window > 0) {
      EXPECT_GT(static_cast<int>(longest), 2 * c.sliding_window) << name;
    }
  }
  const auto mistral = load_family("mistral", read_fixture("families/mistral/reference.json"));
  EXPECT_EQ(mistral->info().config.sliding_window, 5);
  const auto llama = load_family("llama", read_fixture("families/llama/reference.json"));
  EXPECT_EQ(llama->info().config.rope_scaling.type, RopeScaling::Type::kLlama3);
  EXPECT_TRUE(llama->info().config.qkv_bias && llama->info().config.o_bias &&
              llama->info().config.mlp_bias);
  const auto gemma2 = load_family("gemma2", read_fixture("families/gemma2/reference.json"));
  EXPECT_GT(gemma2->info().config.attn_logit_softcap, 0);
  EXPECT_GT(gemma2->info().config.final_logit_softcap, 0);
  EXPECT_TRUE(gemma2->info().config.layer_is_sliding(0));
  EXPECT_FALSE(gemma2->info().config.layer_is_sliding(1));
  const auto bidir = load_family("qwen2_bidirectional",
                                 read_fixture("families/qwen2_bidirectional/reference.json"));
  EXPECT_FALSE(bidir->info().dedup());
}

}  // namespace
}  // namespace radix::testing
