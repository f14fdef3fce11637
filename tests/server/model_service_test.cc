// ModelService over the demo model: outputs equal the model's own forward, the Qwen3-Reranker
// template tokenized in pieces equals the whole prompt tokenized at once, truncation budgets,
// wrong-head errors and cancellation.
#include "server/model_service.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/model_runner.h"
#include "model/demo_model.h"
#include "model/prompts.h"
#include "server/api_error.h"

namespace radix::server {
namespace {

namespace fs = std::filesystem;

const fs::path kShared = fs::path(RADIX_SOURCE_DIR).parent_path() / "shared" / "assets";

struct Stack {
  explicit Stack(HeadKind head, int32_t max_input = 256) {
    LoadOptions load;
    load.head = head;
    load.backend.threads = 2;
    auto model = Model::load("demo", load);
    info = model->info();
    std::vector<std::unique_ptr<engine::BatchRunner>> runners;
    runners.push_back(
        std::make_unique<engine::ModelRunner>(std::move(model), AttentionMode::kTree, "cpu"));
    engine::EngineOptions options;
    options.limits.max_batch_tokens = 4096;
    engine = std::make_unique<engine::Engine>(std::move(runners), options);
    ModelCard card;
    card.head = head_kind_name(head);
    card.default_rerank_instruction = std::string(kDefaultRerankInstruction);
    service =
        std::make_unique<ModelService>(info, Tokenizer::from_json(demo_tokenizer_json()), *engine,
                                       pool, nullptr, card, ServiceOptions{false, max_input});
    reference = Model::load("demo", load);
  }
  ModelInfo info;
  engine::WorkerPool pool{2};
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<ModelService> service;
  std::unique_ptr<Model> reference;  // the same weights, run directly
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

TEST(ModelService, EmbedEqualsTheModelsOwnForward) {
  Stack s(HeadKind::kEmbedding);
  const Tokenizer tok = Tokenizer::from_json(demo_tokenizer_json());
  EmbedRequest r;
  r.inputs = {{"first input", {}, false}, {"second, longer input", {}, false}};
  const EmbedResult out = s.service->embed(r, {});
  RaggedBatch batch;
  int64_t tokens = 0;
  for (const auto& in : r.inputs) {
    const auto ids = tok.encode(in.text, true).ids;
    tokens += static_cast<int64_t>(ids.size());
    batch.add_sequence(ids);
  }
  const ForwardResult ref = s.reference->forward(batch, {});  // normalised, all dimensions
  ASSERT_EQ(out.embeddings.size(), 2u);
  EXPECT_EQ(out.prompt_tokens, tokens);
  for (int32_t i = 0; i < 2; ++i) {
    ASSERT_EQ(static_cast<int32_t>(out.embeddings[i].size()), ref.dim);
    for (int32_t k = 0; k < ref.dim; ++k) {
      EXPECT_NEAR(out.embeddings[i][k], ref.values[i * ref.dim + k], 1e-5);
    }
  }
}

TEST(ModelService, EmbedAllEqualsTheModelsOwnHiddenStates) {
  Stack s(HeadKind::kEmbedding);
  const Tokenizer tok = Tokenizer::from_json(demo_tokenizer_json());
  EmbedRequest r;
  // A shared prefix (the engine may fold the batch): every token still gets its own row.
  r.inputs = {{"shared prefix, first", {}, false}, {"shared prefix, second one", {}, false}};
  const EmbedAllResult out = s.service->embed_all(r, {});
  RaggedBatch batch;
  for (const auto& in : r.inputs) batch.add_sequence(tok.encode(in.text, true).ids);
  ForwardOptions flat;
  flat.mode = AttentionMode::kOff;
  flat.return_hidden_states = true;
  const ForwardResult ref = s.reference->forward(batch, flat);
  const int32_t hidden = s.info.hidden_size();
  ASSERT_EQ(out.token_states.size(), 2u);
  int64_t row = 0;
  for (int32_t i = 0; i < 2; ++i) {
    const int32_t len = batch.cu_seqlens[i + 1] - batch.cu_seqlens[i];
    ASSERT_EQ(static_cast<int32_t>(out.token_states[i].size()), len);
    for (int32_t t = 0; t < len; ++t, ++row) {
      ASSERT_EQ(static_cast<int32_t>(out.token_states[i][t].size()), hidden);
      // Folded tree attention against the flat reference: equal up to float rounding.
      for (int32_t k = 0; k < hidden; ++k) {
        EXPECT_NEAR(out.token_states[i][t][k], ref.hidden_states[row * hidden + k], 1e-4)
            << "input " << i << " token " << t;
      }
    }
  }
  EXPECT_EQ(out.prompt_tokens, row);
  // Other heads cannot.
  Stack reranker(HeadKind::kReranker, 1024);
  EXPECT_EQ(status_of([&] { reranker.service->embed_all(r, {}); }), 424);
}

TEST(ModelService, RerankEqualsTheWholePromptScored) {
  Stack s(HeadKind::kReranker, 1024);
  const Tokenizer tok = Tokenizer::from_json(demo_tokenizer_json());
  RerankRequest r;
  r.query = "what is a cat";
  r.texts = {"a cat is an animal", "stocks fell"};
  const ScoreResult out = s.service->rerank(r, {});
  RaggedBatch batch;
  for (const auto& t : r.texts) {
    batch.add_sequence(
        tok.encode(format_rerank_prompt(kDefaultRerankInstruction, r.query, t), false).ids);
  }
  const ForwardResult ref = s.reference->forward(batch, {});
  ASSERT_EQ(out.scores.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_NEAR(out.scores[i], ref.values[i], 1e-6);
    EXPECT_NEAR(out.raw_scores[i], ref.yes_no_logits[2 * i] - ref.yes_no_logits[2 * i + 1], 1e-5);
  }
}

TEST(ModelService, RerankTruncatesTheBodyToTheBudget) {
  Stack s(HeadKind::kReranker, 400);
  const std::string doc(1000, 'x');
  const auto right = s.service->rerank_ids("i", "q", doc, true, TruncationDirection::kRight);
  EXPECT_EQ(right.size(), 400u);
  const Tokenizer tok = Tokenizer::from_json(demo_tokenizer_json());
  const auto suffix = tok.encode(kRerankSuffix, false).ids;
  EXPECT_TRUE(std::equal(suffix.begin(), suffix.end(), right.end() - suffix.size()));
  EXPECT_EQ(
      status_of([&] { s.service->rerank_ids("i", "q", doc, false, TruncationDirection::kRight); }),
      422);
}

// Tokenizing the template's prefix, body and suffix apart gives the ids of the whole prompt, with
// the real Qwen3 tokenizer, on real dl19 queries and passages.
TEST(ModelService, RerankPiecesEqualWholePromptWithTheQwenTokenizer) {
  const fs::path tok_dir = kShared / "qwen3-embedding-0.6b";
  const fs::path dl19 = kShared / "msmarco" / "dl19_bm25_top100.json";
  if (!fs::exists(tok_dir / "tokenizer.json") || !fs::exists(dl19)) {
    GTEST_SKIP() << "../shared/assets is missing (looked for " << tok_dir << " and " << dl19 << ")";
  }
  const Tokenizer qwen = Tokenizer::from_file((tok_dir / "tokenizer.json").string());
  LoadOptions load;
  load.head = HeadKind::kReranker;
  ModelInfo info = demo_model_info();
  info.head = HeadKind::kReranker;
  engine::WorkerPool pool(1);
  std::vector<std::unique_ptr<engine::BatchRunner>> runners;
  runners.push_back(std::make_unique<engine::ModelRunner>(Model::load("demo", load),
                                                          AttentionMode::kTree, "cpu"));
  engine::Engine engine(std::move(runners), {});
  ModelService service(info, qwen, engine, pool, nullptr, {}, ServiceOptions{false, 8192});
  std::ifstream in(dl19);
  const nlohmann::json data = nlohmann::json::parse(in);
  int checked = 0;
  for (size_t q = 0; q < 5; ++q) {
    const std::string query = data[q]["query"];
    for (size_t d = 0; d < 20; ++d) {
      const std::string doc = data[q]["hits"][d]["content"];
      const auto whole =
          qwen.encode(format_rerank_prompt(kDefaultRerankInstruction, query, doc), false).ids;
      EXPECT_EQ(service.rerank_ids(std::string(kDefaultRerankInstruction), query, doc, false,
                                   TruncationDirection::kRight),
                whole)
          << "query " << q << " doc " << d;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 100);
}

TEST(ModelService, WrongHeadIs424AndBadInputIs4xx) {
  Stack s(HeadKind::kEmbedding, 64);
  RerankRequest rerank;
  rerank.query = "q";
  rerank.texts = {"a"};
  EXPECT_EQ(status_of([&] { s.service->rerank(rerank, {}); }), 424);
  PredictRequest predict;
  predict.inputs = {{"a", std::nullopt}};
  EXPECT_EQ(status_of([&] { s.service->predict(predict, {}); }), 424);
  EmbedRequest r;
  r.inputs = {{std::string(100, 'x'), {}, false}};
  EXPECT_EQ(status_of([&] { s.service->embed(r, {}); }), 422);  // over 64 tokens
  r.truncate = true;
  EXPECT_EQ(status_of([&] { s.service->embed(r, {}); }), 200);
  r.inputs = {{{}, {1, 2, 999999}, true}};
  EXPECT_EQ(status_of([&] { s.service->embed(r, {}); }), 422);  // outside the vocabulary
  r.inputs = {{"x", {}, false}};
  r.prompt_name = "nope";
  EXPECT_EQ(status_of([&] { s.service->embed(r, {}); }), 422);
  r.prompt_name.reset();
  r.dimensions = 129;
  EXPECT_EQ(status_of([&] { s.service->embed(r, {}); }), 422);
}

TEST(ModelService, ClientGoneStopsTheWait) {
  Stack s(HeadKind::kEmbedding, 4096);
  EmbedRequest r;
  for (int i = 0; i < 16; ++i) {
    r.inputs.push_back({std::to_string(i) + std::string(3000, 'x'), {}, false});
  }
  CallContext gone{[] { return true; }};
  EXPECT_EQ(status_of([&] { s.service->embed(r, gone); }), 499);
  s.engine->shutdown();  // drains: whatever was not batched yet was dropped, so this is quick
  EXPECT_EQ(s.engine->queued_sequences(), 0);
}

}  // namespace
}  // namespace radix::server
