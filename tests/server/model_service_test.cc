// ModelService, the HTTP adapter over the library core: requests convert both ways, results equal
// the core's own, and every core error kind maps to the HTTP status TEI gives it.
#include "server/model_service.h"

#include <gtest/gtest.h>

#include "common/service_stack.h"
#include "model/model.h"

namespace radix::server {
namespace {

service::ServiceOptions with_max_input(int32_t max_input) {
  service::ServiceOptions o;
  o.max_input_length = max_input;
  return o;
}

// The core over the demo model (common/service_stack.h) and the adapter over it.
struct Stack {
  explicit Stack(HeadKind head, int32_t max_input = 256)
      : base(head, with_max_input(max_input)), core(base.service.get()) {
    ModelCard card;
    card.head = head_kind_name(head);
    adapter = std::make_unique<ModelService>(*core, card);
  }
  service::Stack base;
  service::Service* core;
  std::unique_ptr<ModelService> adapter;
};

template <typename Fn>
int status_of(Fn fn) {
  try {
    fn();
  } catch (const ApiError& e) {
    return e.status();
  }
  return 200;
}

TEST(ModelService, EmbedEqualsTheCore) {
  Stack s(HeadKind::kEmbedding);
  EmbedRequest r;
  r.inputs = {{"first input", {}, false}, {{}, {5, 6, 7}, true}};
  r.dimensions = 32;
  const EmbedResult out = s.adapter->embed(r, {});
  service::EmbedRequest c;
  c.inputs = {service::Input::of_text("first input"), service::Input::of_ids({5, 6, 7})};
  c.dimensions = 32;
  const service::EmbedResult ref = s.core->embed(c);
  ASSERT_EQ(out.embeddings.size(), 2u);
  EXPECT_EQ(out.prompt_tokens, ref.prompt_tokens);
  for (size_t i = 0; i < 2; ++i) {
    ASSERT_EQ(out.embeddings[i].size(), 32u);
    // Same sequences, same batch: the engine runs them identically each time.
    for (size_t k = 0; k < 32; ++k)
      EXPECT_NEAR(out.embeddings[i][k], ref.embeddings[i].values[k], 1e-6);
  }
}

TEST(ModelService, EmbedAllIsTheCoresTokenStates) {
  Stack s(HeadKind::kEmbedding);
  EmbedRequest r;
  r.inputs = {{"first input", {}, false}, {{}, {5, 6, 7}, true}};
  const EmbedAllResult out = s.adapter->embed_all(r, {});
  service::EmbedRequest c;
  c.inputs = {service::Input::of_text("first input"), service::Input::of_ids({5, 6, 7})};
  const service::TokenStatesResult ref = s.core->embed_all(c);
  EXPECT_EQ(out.prompt_tokens, ref.prompt_tokens);
  ASSERT_EQ(out.token_states.size(), 2u);
  EXPECT_EQ(out.token_states[1].size(), 3u);
  for (size_t i = 0; i < 2; ++i) {
    ASSERT_EQ(out.token_states[i].size(), ref.token_states[i].size());
    for (size_t t = 0; t < out.token_states[i].size(); ++t) {
      ASSERT_EQ(out.token_states[i][t].size(), ref.token_states[i][t].size());
      // Same sequences, same batch: the engine runs them identically each time.
      for (size_t k = 0; k < out.token_states[i][t].size(); ++k) {
        EXPECT_NEAR(out.token_states[i][t][k], ref.token_states[i][t][k], 1e-6);
      }
    }
  }
  Stack reranker(HeadKind::kReranker, 1024);
  EXPECT_EQ(status_of([&] { reranker.adapter->embed_all(r, {}); }), 424);
}

TEST(ModelService, RerankGivesScoresAndRawScores) {
  Stack s(HeadKind::kReranker, 1024);
  RerankRequest r;
  r.query = "what is a cat";
  r.texts = {"a cat is an animal", "stocks fell"};
  const ScoreResult out = s.adapter->rerank(r, {});
  const service::RerankResult ref = s.core->rerank({r.query, r.texts, std::nullopt, {}});
  ASSERT_EQ(out.scores.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_NEAR(out.scores[i], ref.scores[i].score, 1e-6);
    EXPECT_NEAR(out.raw_scores[i], ref.scores[i].logit, 1e-6);
  }
}

TEST(ModelService, CoreErrorsMapToTeiStatuses) {
  Stack s(HeadKind::kEmbedding, 64);
  RerankRequest rerank;
  rerank.query = "q";
  rerank.texts = {"a"};
  EXPECT_EQ(status_of([&] { s.adapter->rerank(rerank, {}); }), 424);
  PredictRequest predict;
  predict.inputs = {{"a", std::nullopt}};
  EXPECT_EQ(status_of([&] { s.adapter->predict(predict, {}); }), 424);
  EmbedRequest r;
  r.inputs = {{std::string(100, 'x'), {}, false}};
  try {
    s.adapter->embed(r, {});
    FAIL() << "over-long input accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 422);
    EXPECT_NE(std::string(e.what()).find("must have less than 64 tokens. Given: 101"),
              std::string::npos)
        << e.what();
  }
  r.truncate = true;
  EXPECT_EQ(status_of([&] { s.adapter->embed(r, {}); }), 200);
  r.inputs = {{{}, {1, 2, 999999}, true}};
  EXPECT_EQ(status_of([&] { s.adapter->embed(r, {}); }), 422);  // outside the vocabulary
  r.inputs = {{"x", {}, false}};
  r.prompt_name = "nope";
  EXPECT_EQ(status_of([&] { s.adapter->embed(r, {}); }), 422);
  r.prompt_name.reset();
  r.dimensions = 129;
  EXPECT_EQ(status_of([&] { s.adapter->embed(r, {}); }), 422);
  using K = service::ServiceError::Kind;
  EXPECT_EQ(to_api_error(service::ServiceError(K::kEmpty, "e")).status(), 400);
  EXPECT_EQ(to_api_error(service::ServiceError(K::kCancelled, "c")).status(), 499);
  EXPECT_EQ(to_api_error(service::ServiceError(K::kShuttingDown, "s")).status(), 503);
  EXPECT_EQ(to_api_error(service::ServiceError(K::kBackend, "b")).status(), 424);
}

TEST(ModelService, ClientGoneIs499) {
  Stack s(HeadKind::kEmbedding, 4096);
  EmbedRequest r;
  for (int i = 0; i < 16; ++i) {
    r.inputs.push_back({std::to_string(i) + std::string(3000, 'x'), {}, false});
  }
  CallContext gone{[] { return true; }};
  EXPECT_EQ(status_of([&] { s.adapter->embed(r, gone); }), 499);
  s.base.engine->shutdown();
  EXPECT_EQ(s.base.engine->queued_sequences(), 0);
  EXPECT_FALSE(s.adapter->healthy());
}

}  // namespace
}  // namespace radix::server
