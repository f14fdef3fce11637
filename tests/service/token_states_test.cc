// Service::embed_all (per-token hidden states through the engine, folded or not) and the
// finiteness check every result passes before a caller sees it.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "common/service_stack.h"
#include "engine/engine.h"
#include "engine/model_runner.h"
#include "model/demo_model.h"
#include "model/model.h"
#include "service/service.h"
#include "service/tokenizer_loader.h"

namespace radix::service {
namespace {

using Kind = ServiceError::Kind;

TEST(ServiceEmbedAll, EqualsTheModelsOwnHiddenStates) {
  Stack s(HeadKind::kEmbedding);
  const Tokenizer tok = load_tokenizer("demo");
  EmbedRequest r;
  // A shared prefix (the engine may fold the batch): every token still gets its own row.
  r.inputs = {Input::of_text("shared prefix, first"), Input::of_text("shared prefix, second one"),
              Input::of_ids({5, 6, 7})};
  const TokenStatesResult out = s.service->embed_all(r);
  RaggedBatch batch;
  batch.add_sequence(tok.encode("shared prefix, first", true).ids);
  batch.add_sequence(tok.encode("shared prefix, second one", true).ids);
  batch.add_sequence(std::vector<int32_t>{5, 6, 7});
  ForwardOptions flat;
  flat.mode = AttentionMode::kOff;
  flat.return_hidden_states = true;
  const ForwardResult ref = s.reference->forward(batch, flat);
  const int32_t hidden = s.info.hidden_size();
  ASSERT_EQ(out.token_states.size(), 3u);
  int64_t row = 0;
  for (int32_t i = 0; i < 3; ++i) {
    const int32_t len = batch.cu_seqlens[i + 1] - batch.cu_seqlens[i];
    ASSERT_EQ(static_cast<int32_t>(out.token_states[i].size()), len);
    for (int32_t t = 0; t < len; ++t, ++row) {
      ASSERT_EQ(static_cast<int32_t>(out.token_states[i][t].size()), hidden);
      // Folded tree attention against the flat reference, other BLAS row counts: equal up to
      // float rounding accumulated over the layers.
      for (int32_t k = 0; k < hidden; ++k) {
        EXPECT_NEAR(out.token_states[i][t][k], ref.hidden_states[row * hidden + k], 1e-4)
            << "input " << i << " token " << t;
      }
    }
  }
  EXPECT_EQ(out.prompt_tokens, row);
}

TEST(ServiceEmbedAll, OtherHeadsCannot) {
  Stack s(HeadKind::kReranker);
  EmbedRequest r;
  r.inputs = {Input::of_text("x")};
  EXPECT_EQ(kind_of([&] { s.service->embed_all(r); }), Kind::kWrongHead);
}

// A model that overflowed: every output NaN (or Inf), shaped as the real runner shapes it.
class NonFiniteRunner : public engine::BatchRunner {
 public:
  NonFiniteRunner(int32_t hidden, size_t width, float value)
      : hidden_(hidden), width_(width), value_(value) {}
  std::vector<engine::SequenceOutput> run(const RaggedBatch& batch, const FoldPlan&) override {
    std::vector<engine::SequenceOutput> out(batch.num_sequences());
    for (int32_t s = 0; s < batch.num_sequences(); ++s) {
      const bool states = !batch.token_states.empty() && batch.token_states[s];
      const size_t n = states ? static_cast<size_t>(batch.cu_seqlens[s + 1] - batch.cu_seqlens[s]) *
                                    static_cast<size_t>(hidden_)
                              : width_;
      out[s].assign(n, 0.5f);
      out[s][n - 1] = value_;
    }
    return out;
  }
  std::string device() const override { return "cpu"; }

 private:
  int32_t hidden_;
  size_t width_;
  float value_;
};

TEST(ServiceFinite, NonFiniteOutputsAreBackendErrors) {
  for (const float bad : {std::nanf(""), std::numeric_limits<float>::infinity()}) {
    for (const HeadKind head : {HeadKind::kEmbedding, HeadKind::kReranker}) {
      ModelInfo info = demo_model_info();
      info.head = head;
      const size_t width = head == HeadKind::kReranker ? 2 : info.hidden_size();
      std::vector<std::unique_ptr<engine::BatchRunner>> runners;
      runners.push_back(std::make_unique<NonFiniteRunner>(info.hidden_size(), width, bad));
      engine::Engine engine(std::move(runners), {});
      ServiceOptions o;
      o.max_input_length = 512;
      Service service(info, load_tokenizer("demo"), engine, o);
      if (head == HeadKind::kEmbedding) {
        EmbedRequest r;
        r.inputs = {Input::of_text("a"), Input::of_text("b")};
        try {
          service.embed(r);
          FAIL() << "a non-finite embedding was returned";
        } catch (const ServiceError& e) {
          EXPECT_EQ(e.kind(), Kind::kBackend);
          EXPECT_NE(std::string(e.what()).find("non-finite"), std::string::npos) << e.what();
          EXPECT_NE(std::string(e.what()).find("input 0"), std::string::npos) << e.what();
        }
        EXPECT_EQ(kind_of([&] { service.embed_all(r); }), Kind::kBackend);
      } else {
        RerankRequest r{"q", {"a", "b"}, std::nullopt, {}};
        EXPECT_EQ(kind_of([&] { service.rerank(r); }), Kind::kBackend);
      }
    }
  }
  // A classifier's logits pass the same check.
  ModelInfo info = demo_model_info();
  info.head = HeadKind::kClassifier;
  info.config.num_labels = 2;
  std::vector<std::unique_ptr<engine::BatchRunner>> runners;
  runners.push_back(std::make_unique<NonFiniteRunner>(info.hidden_size(), 2, std::nanf("")));
  engine::Engine engine(std::move(runners), {});
  ServiceOptions o;
  o.max_input_length = 512;
  Service service(info, load_tokenizer("demo"), engine, o);
  ClassifyRequest r;
  r.inputs = {{"a", std::nullopt}};
  EXPECT_EQ(kind_of([&] { service.classify(r); }), Kind::kBackend);
}

}  // namespace
}  // namespace radix::service
