// The CPU engine against Hugging Face transformers in fp32 (tests/fixtures,
// tools/make_fixtures.py). Tolerances and their reasons: docs/numerics.md.
#include <gtest/gtest.h>

#include <filesystem>
#include <optional>

#include "fixture_util.h"
#include "model/model.h"

namespace radix::testing {
namespace {

constexpr double kHiddenRelTol = 1e-4;  // fp32, different summation orders (docs/numerics.md)
constexpr double kEmbeddingAbsTol = 1e-5;
constexpr double kLogitAbsTol = 1e-4;
constexpr double kScoreAbsTol = 1e-5;

class HfFixture : public ::testing::TestWithParam<AttentionMode> {
 protected:
  static void SetUpTestSuite() {
    fixture_ = new nlohmann::json(read_fixture("qwen3_tiny.json"));
    model_ = make_tiny_model(*fixture_, fixture_->at("num_labels").get<int>()).release();
  }
  static void TearDownTestSuite() {
    delete model_;
    delete fixture_;
  }
  static size_t num_sequences() { return fixture_->at("sequences").size(); }
  static std::vector<int32_t> sequence(size_t i) {
    return fixture_->at("sequences")[i].get<std::vector<int32_t>>();
  }
  // Every fixture sequence in one batch, through `head` (unset: the model's), in this test's mode.
  ForwardResult forward_all(std::optional<HeadKind> head) const {
    RaggedBatch batch;
    for (size_t i = 0; i < num_sequences(); ++i) batch.add_sequence(sequence(i));
    ForwardOptions options;
    options.mode = GetParam();
    options.head = head;
    return model_->forward(batch, options);
  }
  // Row i of r.values against the fixture's `key`[i], component by component.
  static void expect_rows_near(const ForwardResult& r, const char* key, double tolerance) {
    for (size_t i = 0; i < num_sequences(); ++i) {
      const auto want = fixture_->at(key)[i].get<std::vector<float>>();
      for (int32_t c = 0; c < r.dim; ++c) {
        EXPECT_NEAR(r.values[i * r.dim + c], want[c], tolerance) << "sequence " << i;
      }
    }
  }
  static nlohmann::json* fixture_;
  static Model* model_;
};
nlohmann::json* HfFixture::fixture_ = nullptr;
Model* HfFixture::model_ = nullptr;

TEST_P(HfFixture, HiddenStatesOfEveryTokenMatchTransformers) {
  const int32_t hidden = model_->info().hidden_size();
  for (const auto& batch_json : fixture_->at("batches")) {
    RaggedBatch batch;
    std::vector<size_t> members;
    for (const auto& s : batch_json) {
      members.push_back(s.get<size_t>());
      batch.add_sequence(sequence(members.back()));
    }
    ForwardOptions options;
    options.mode = GetParam();
    options.return_hidden_states = true;
    const ForwardResult r = model_->forward(batch, options);
    ASSERT_EQ(r.hidden_states.size(), static_cast<size_t>(batch.num_tokens()) * hidden);
    for (size_t j = 0; j < members.size(); ++j) {
      const auto want = fixture_->at("hidden_states")[members[j]].get<std::vector<float>>();
      const size_t begin = static_cast<size_t>(batch.cu_seqlens[j]) * hidden;
      ASSERT_EQ(want.size(),
                static_cast<size_t>(batch.cu_seqlens[j + 1] - batch.cu_seqlens[j]) * hidden);
      // Per token, relative to that token's largest component.
      for (size_t t = 0; t < want.size() / hidden; ++t) {
        EXPECT_LE(
            rel_err(r.hidden_states.data() + begin + t * hidden, want.data() + t * hidden, hidden),
            kHiddenRelTol)
            << "sequence " << members[j] << " token " << t;
      }
    }
  }
}

TEST_P(HfFixture, EmbeddingsMatchTransformers) {
  const ForwardResult r = forward_all(std::nullopt);
  ASSERT_EQ(r.dim, model_->info().hidden_size());
  expect_rows_near(r, "embeddings", kEmbeddingAbsTol);
}

TEST_P(HfFixture, RerankerLogitsAndScoresMatchTransformers) {
  const ForwardResult r = forward_all(HeadKind::kReranker);
  ASSERT_EQ(r.dim, 1);
  for (size_t i = 0; i < num_sequences(); ++i) {
    EXPECT_NEAR(r.yes_no_logits[2 * i], fixture_->at("yes_logit")[i].get<double>(), kLogitAbsTol);
    EXPECT_NEAR(r.yes_no_logits[2 * i + 1], fixture_->at("no_logit")[i].get<double>(),
                kLogitAbsTol);
    EXPECT_NEAR(r.values[i], fixture_->at("score")[i].get<double>(), kScoreAbsTol);
  }
}

TEST_P(HfFixture, ClassifierLogitsMatchTransformers) {
  const ForwardResult r = forward_all(HeadKind::kClassifier);
  ASSERT_EQ(r.dim, fixture_->at("num_labels").get<int>());
  expect_rows_near(r, "classifier_logits", kLogitAbsTol);
}

TEST(HfFixtureSource, FixtureComesFromTransformers) {
  // A fixture made with --local (the script's own PyTorch reference) must never be committed.
  EXPECT_EQ(read_fixture("qwen3_tiny.json").at("source").get<std::string>(), "transformers");
}

INSTANTIATE_TEST_SUITE_P(Modes, HfFixture,
                         ::testing::Values(AttentionMode::kOff, AttentionMode::kScatter,
                                           AttentionMode::kTree),
                         [](const auto& info) {
                           return std::string(attention_mode_name(info.param));
                         });

}  // namespace
}  // namespace radix::testing
