// The library core over the demo model: outputs equal the model's own forward, the
// Qwen3-Reranker template tokenized in pieces equals the whole prompt tokenized at once,
// truncation budgets, prompts (named, default, instruction), error kinds and cancellation.
#include "service/service.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/service_stack.h"
#include "engine/engine.h"
#include "engine/model_runner.h"
#include "model/demo_model.h"
#include "model/model.h"
#include "model/prompts.h"
#include "model/random_weights.h"
#include "model/rerank_template.h"
#include "service/tokenizer_loader.h"

namespace radix::service {
namespace {

namespace fs = std::filesystem;
using Kind = ServiceError::Kind;

const fs::path kShared = fs::path(RADIX_SOURCE_DIR).parent_path() / "shared" / "assets";

ModelInfo demo_info(HeadKind head) {
  ModelInfo info = demo_model_info();
  info.head = head;
  return info;
}

// Tolerance: the service's batch and the reference batch hold the same sequences in the same
// order, but the engine may fold differently (threshold) so BLAS sees other row counts.
constexpr float kTol = 1e-5f;

TEST(Service, EmbedEqualsTheModelsOwnForward) {
  Stack s(HeadKind::kEmbedding);
  const Tokenizer tok = load_tokenizer("demo");
  EmbedRequest r;
  r.inputs = {Input::of_text("first input"), Input::of_text("second, longer input")};
  const EmbedResult out = s.service->embed(r);
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
    ASSERT_EQ(static_cast<int32_t>(out.embeddings[i].values.size()), ref.dim);
    for (int32_t k = 0; k < ref.dim; ++k) {
      EXPECT_NEAR(out.embeddings[i].values[k], ref.values[i * ref.dim + k], kTol);
    }
  }
}

TEST(Service, EmbedDimensionsThenNormalise) {
  Stack s(HeadKind::kEmbedding);
  EmbedRequest r;
  r.inputs = {Input::of_text("matryoshka")};
  r.dimensions = 16;
  const auto cut = s.service->embed(r).embeddings.at(0).values;
  ASSERT_EQ(cut.size(), 16u);
  double norm = 0;
  for (float x : cut) norm += static_cast<double>(x) * x;
  EXPECT_NEAR(norm, 1.0, 1e-5);
  r.dimensions.reset();
  r.normalize = false;
  const auto full = s.service->embed(r).embeddings.at(0).values;
  double head = 0;
  for (int k = 0; k < 16; ++k) head += static_cast<double>(full[k]) * full[k];
  for (int k = 0; k < 16; ++k) EXPECT_NEAR(cut[k], full[k] / std::sqrt(head), kTol);
}

TEST(Service, IdsInputsRunAsGiven) {
  Stack s(HeadKind::kEmbedding);
  const Tokenizer tok = load_tokenizer("demo");
  EmbedRequest text, ids;
  text.inputs = {Input::of_text("same thing")};
  ids.inputs = {Input::of_ids(tok.encode("same thing", true).ids)};
  const auto a = s.service->embed(text).embeddings.at(0).values;
  const auto b = s.service->embed(ids).embeddings.at(0).values;
  ASSERT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k) EXPECT_NEAR(a[k], b[k], kTol);
}

TEST(Service, PromptsNamedDefaultAndInstruction) {
  ModelInfo info = demo_info(HeadKind::kEmbedding);
  info.spec = "demo";
  info.prompts = {{"query", "Q: "}, {"doc", "D: "}};
  info.default_prompt_name = "doc";
  const Tokenizer tok = load_tokenizer("demo");
  auto ids_of = [&](const std::string& text) { return tok.encode(text, true).ids; };
  EmbedRequest r;
  r.inputs = {Input::of_text("x")};
  {
    Stack s(HeadKind::kEmbedding, {}, info);  // the model's default prompt
    EXPECT_EQ(s.service->embed_sequences(r).at(0), ids_of("D: x"));
    r.prompt_name = "query";
    EXPECT_EQ(s.service->embed_sequences(r).at(0), ids_of("Q: x"));
    r.prompt_name = "nope";
    EXPECT_EQ(kind_of([&] { s.service->embed_sequences(r); }), Kind::kValidation);
    r.prompt_name.reset();
    r.instruction = "Find it";
    EXPECT_EQ(s.service->embed_sequences(r).at(0), ids_of(format_embedding_query("Find it", "x")));
    r.prompt_name = "query";  // both: refused
    EXPECT_EQ(kind_of([&] { s.service->embed_sequences(r); }), Kind::kValidation);
    r.prompt_name.reset();
    r.instruction.reset();
    r.inputs.push_back(Input::of_ids({5, 6}));  // ids never get a prompt
    EXPECT_EQ(s.service->embed_sequences(r).at(1), (std::vector<int32_t>{5, 6}));
    r.inputs.pop_back();
  }
  {
    ServiceOptions o;
    o.default_prompt_name = "query";  // overrides the model's
    Stack s(HeadKind::kEmbedding, o, info);
    EXPECT_EQ(s.service->embed_sequences(r).at(0), ids_of("Q: x"));
    EXPECT_EQ(s.service->summary().default_prompt_name, "query");
  }
  {
    ServiceOptions o;
    o.default_prompt = "Literal: ";
    Stack s(HeadKind::kEmbedding, o, info);
    EXPECT_EQ(s.service->embed_sequences(r).at(0), ids_of("Literal: x"));
  }
  ServiceOptions bad;
  bad.default_prompt_name = "missing";
  EXPECT_THROW(Stack(HeadKind::kEmbedding, bad, info), std::invalid_argument);
  bad.default_prompt = "both";
  EXPECT_THROW(Stack(HeadKind::kEmbedding, bad, info), std::invalid_argument);
}

TEST(Service, RerankEqualsTheWholePromptScored) {
  ServiceOptions o;
  o.max_input_length = 1024;
  Stack s(HeadKind::kReranker, o);
  const Tokenizer tok = load_tokenizer("demo");
  RerankRequest r;
  r.query = "what is a cat";
  r.documents = {"a cat is an animal", "stocks fell"};
  const RerankResult out = s.service->rerank(r);
  RaggedBatch batch;
  for (const auto& t : r.documents) {
    batch.add_sequence(
        tok.encode(format_rerank_prompt(kDefaultRerankInstruction, r.query, t), false).ids);
  }
  const ForwardResult ref = s.reference->forward(batch, {});
  ASSERT_EQ(out.scores.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_NEAR(out.scores[i].score, ref.values[i], 1e-6);
    EXPECT_NEAR(out.scores[i].logit, ref.yes_no_logits[2 * i] - ref.yes_no_logits[2 * i + 1], kTol);
    EXPECT_NEAR(out.scores[i].score, 1 / (1 + std::exp(-out.scores[i].logit)), 1e-6);
  }
}

TEST(Service, RerankTruncatesTheBodyToTheBudget) {
  ServiceOptions o;
  o.max_input_length = 400;
  Stack s(HeadKind::kReranker, o);
  RerankRequest r;
  r.instruction = "i";
  r.query = "q";
  r.documents = {std::string(1000, 'x')};
  r.truncation.truncate = true;
  const auto right = s.service->rerank_sequences(r).at(0);
  EXPECT_EQ(right.size(), 400u);
  const Tokenizer tok = load_tokenizer("demo");
  const auto suffix = tok.encode(kRerankSuffix, false).ids;
  EXPECT_TRUE(std::equal(suffix.begin(), suffix.end(), right.end() - suffix.size()));
  r.truncation.truncate = false;
  try {
    s.service->rerank_sequences(r);
    FAIL() << "an over-long document was accepted";
  } catch (const ServiceError& e) {
    EXPECT_EQ(e.kind(), Kind::kTooLong);
    EXPECT_EQ(e.max_tokens, 400);
    EXPECT_GT(e.tokens, 400);
    EXPECT_EQ(e.input_index, 0u);
  }
}

// Tokenizing the template's prefix, body and suffix apart gives the ids of the whole prompt, with
// the real Qwen3 tokenizer, on real dl19 queries and passages.
TEST(Service, RerankPiecesEqualWholePromptWithTheQwenTokenizer) {
  const fs::path tok_dir = kShared / "qwen3-embedding-0.6b";
  const fs::path dl19 = kShared / "msmarco" / "dl19_bm25_top100.json";
  if (!fs::exists(tok_dir / "tokenizer.json") || !fs::exists(dl19)) {
    GTEST_SKIP() << "../shared/assets is missing (looked for " << tok_dir << " and " << dl19 << ")";
  }
  const Tokenizer qwen = load_tokenizer(tok_dir.string());
  ServiceOptions o;
  o.max_input_length = 8192;
  ModelInfo info = demo_info(HeadKind::kReranker);
  info.spec = "demo";
  Stack s(HeadKind::kReranker, o, info, &qwen);
  std::ifstream in(dl19);
  const nlohmann::json data = nlohmann::json::parse(in);
  int checked = 0;
  for (size_t q = 0; q < 5; ++q) {
    RerankRequest r;
    r.query = data[q]["query"];
    for (size_t d = 0; d < 20; ++d) r.documents.push_back(data[q]["hits"][d]["content"]);
    const auto sequences = s.service->rerank_sequences(r);
    for (size_t d = 0; d < 20; ++d) {
      const auto whole =
          qwen.encode(format_rerank_prompt(kDefaultRerankInstruction, r.query, r.documents[d]),
                      false)
              .ids;
      EXPECT_EQ(sequences[d], whole) << "query " << q << " doc " << d;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 100);
}

// A reranker of a family other than Qwen3 whose folder holds no template (the demo's weights
// under another family name: only the service reads the family).
ModelInfo other_family_reranker() {
  ModelInfo info = demo_info(HeadKind::kReranker);
  info.spec = "demo-as-gemma";
  info.config.family = "gemma";
  return info;
}

std::vector<int32_t> concat_encoded(const Tokenizer& tok,
                                    std::initializer_list<std::string> parts) {
  std::vector<int32_t> ids;
  for (const std::string& p : parts) {
    const auto e = tok.encode(p, false).ids;
    ids.insert(ids.end(), e.begin(), e.end());
  }
  return ids;
}

TEST(Service, RerankWithoutATemplateLoadsAndSaysHowToGiveOne) {
  Stack s(HeadKind::kReranker, {}, other_family_reranker());
  EXPECT_EQ(s.service->summary().rerank_template, "");
  EXPECT_EQ(s.service->summary().default_rerank_instruction, "");
  RerankRequest r;
  r.query = "q";
  r.documents = {"d"};
  try {
    s.service->rerank(r);
    FAIL() << "a reranker without a template took text";
  } catch (const ServiceError& e) {
    EXPECT_EQ(e.kind(), Kind::kWrongHead);
    EXPECT_NE(std::string(e.what()).find("radix_rerank_template.json"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("--rerank-template"), std::string::npos);
  }
  EXPECT_EQ(s.service->rerank_ids({{5, 6, 7}}).scores.size(), 1u);  // token ids still run
}

TEST(Service, FolderTemplateSegmentsAreTokenizedOneByOne) {
  ModelInfo info = other_family_reranker();
  info.rerank_template = parse_rerank_template(
      R"({"segments": ["<s>", "A: {query}", "\n", "B: {document}", "\nRelevant?"]})", "folder");
  Stack s(HeadKind::kReranker, {}, info);
  EXPECT_EQ(s.service->summary().rerank_template, "folder");
  const Tokenizer tok = load_tokenizer("demo");
  RerankRequest r;
  r.query = "what is a cat";
  r.documents = {"a cat is an animal", "stocks fell"};
  const auto sequences = s.service->rerank_sequences(r);
  RaggedBatch batch;
  for (size_t d = 0; d < 2; ++d) {
    const auto want =
        concat_encoded(tok, {"<s>", "A: " + r.query, "\n", "B: " + r.documents[d], "\nRelevant?"});
    EXPECT_EQ(sequences[d], want) << d;
    batch.add_sequence(want);
  }
  // The fixed prefix and the query give every pair the same first ids (they fold).
  const size_t shared = concat_encoded(tok, {"<s>", "A: " + r.query, "\n"}).size();
  EXPECT_TRUE(
      std::equal(sequences[0].begin(), sequences[0].begin() + shared, sequences[1].begin()));
  const RerankResult out = s.service->rerank(r);
  const ForwardResult ref = s.reference->forward(batch, {});
  for (int i = 0; i < 2; ++i) EXPECT_NEAR(out.scores[i].score, ref.values[i], 1e-6);
  // The template has no {instruction}: a request that gives one is refused.
  r.instruction = "judge";
  EXPECT_EQ(kind_of([&] { s.service->rerank_sequences(r); }), Kind::kValidation);
  // ...and so is a default instruction for it.
  ServiceOptions o;
  o.default_rerank_instruction = "judge";
  EXPECT_THROW(Stack(HeadKind::kReranker, o, info), std::invalid_argument);
}

TEST(Service, TemplateOptionWinsOverTheFoldersAndQwen3s) {
  const Tokenizer tok = load_tokenizer("demo");
  ServiceOptions o;
  o.rerank_template = parse_rerank_template(
      R"({"segments": ["X {instruction} {query} Y {document}"], "default_instruction": "inst"})",
      "--rerank-template");
  RerankRequest r;
  r.query = "q";
  r.documents = {"d"};
  ModelInfo folder = other_family_reranker();
  folder.rerank_template = parse_rerank_template(R"({"segments": ["{query}{document}"]})", "f");
  for (const ModelInfo& info : {folder, demo_info(HeadKind::kReranker)}) {
    ModelInfo named = info;
    named.spec = "demo";
    Stack s(HeadKind::kReranker, o, named);
    EXPECT_EQ(s.service->summary().rerank_template, "--rerank-template");
    EXPECT_EQ(s.service->summary().default_rerank_instruction, "inst");
    EXPECT_EQ(s.service->rerank_sequences(r).at(0), tok.encode("X inst q Y d", false).ids);
  }
  // No option, a Qwen3 model: Qwen3-Reranker's template, as before templates existed.
  Stack qwen(HeadKind::kReranker);
  EXPECT_EQ(qwen.service->summary().rerank_template, "qwen3-reranker (built in)");
  EXPECT_EQ(qwen.service->summary().default_rerank_instruction, kDefaultRerankInstruction);
}

TEST(Service, TemplateTruncationCutsOnlyTheRequestsSegments) {
  ModelInfo info = other_family_reranker();
  info.rerank_template = parse_rerank_template(
      R"({"segments": ["PRE", "A: {query}", "|", "B: {document}", "END"]})", "folder");
  ServiceOptions o;
  o.max_input_length = 64;
  Stack s(HeadKind::kReranker, o, info);
  const Tokenizer tok = load_tokenizer("demo");
  const auto pre = tok.encode("PRE", false).ids, end = tok.encode("END", false).ids;
  const auto bar = tok.encode("|", false).ids;
  RerankRequest r;
  r.query = "q";
  r.documents = {std::string(500, 'x')};
  r.truncation.truncate = true;
  const auto right = s.service->rerank_sequences(r).at(0);
  ASSERT_EQ(right.size(), 64u);
  const auto head = concat_encoded(tok, {"PRE", "A: q", "|"});
  EXPECT_TRUE(std::equal(head.begin(), head.end(), right.begin()));  // the document was cut
  EXPECT_TRUE(std::equal(end.begin(), end.end(), right.end() - end.size()));
  // Left: the query (the first of the request's segments) is cut from its start first.
  r.query = std::string(500, 'y');
  r.documents = {"short doc"};
  r.truncation.direction = TruncationDirection::kLeft;
  const auto left = s.service->rerank_sequences(r).at(0);
  ASSERT_EQ(left.size(), 64u);
  EXPECT_TRUE(std::equal(pre.begin(), pre.end(), left.begin()));
  const auto tail = concat_encoded(tok, {"|", "B: short doc", "END"});
  EXPECT_TRUE(std::equal(tail.begin(), tail.end(), left.end() - tail.size()));
  r.truncation.truncate = false;
  EXPECT_EQ(kind_of([&] { s.service->rerank_sequences(r); }), Kind::kTooLong);
  // Right: the document is cut before a segment after it (bge-style: the prompt comes last).
  ModelInfo last = other_family_reranker();
  last.rerank_template = parse_rerank_template(
      R"({"segments": ["A: {query}", "B: {document}", "P: {instruction}"],
          "default_instruction": "judge it"})",
      "folder");
  Stack t(HeadKind::kReranker, o, last);
  RerankRequest long_doc;
  long_doc.query = "q";
  long_doc.documents = {std::string(500, 'x')};
  long_doc.truncation.truncate = true;
  const auto cut = t.service->rerank_sequences(long_doc).at(0);
  ASSERT_EQ(cut.size(), 64u);
  const auto prompt = tok.encode("P: judge it", false).ids;
  EXPECT_TRUE(std::equal(prompt.begin(), prompt.end(), cut.end() - prompt.size()));
}

TEST(Service, ClassifyGivesProbabilitiesAndLabels) {
  // The demo weights have no classifier head; a random classifier of the demo's shape does.
  LoadOptions load;
  load.head = HeadKind::kClassifier;
  load.backend.threads = 2;
  ModelInfo cls = demo_model_info();
  cls.config.num_labels = 3;
  cls.config.architectures = {"Qwen3ForSequenceClassification"};
  cls.head = HeadKind::kClassifier;
  cls.spec = "demo-classifier";
  auto model = Model::create(cls, RandomWeights(cls.config, 7), load);
  std::vector<std::unique_ptr<engine::BatchRunner>> runners;
  runners.push_back(
      std::make_unique<engine::ModelRunner>(std::move(model), AttentionMode::kTree, "cpu"));
  engine::Engine engine(std::move(runners), {});
  ServiceOptions o;
  o.max_input_length = 128;
  Service service(cls, load_tokenizer("demo"), engine, o);
  ClassifyRequest r;
  r.inputs = {{"a single text", std::nullopt}, {"a first text", std::string("and a second")}};
  const ClassifyResult out = service.classify(r);
  ASSERT_EQ(out.scores.size(), 2u);
  EXPECT_EQ(out.labels, (std::vector<std::string>{"LABEL_0", "LABEL_1", "LABEL_2"}));
  for (const auto& s : out.scores) {
    ASSERT_EQ(s.logits.size(), 3u);
    double sum = 0;
    for (float p : s.probabilities) sum += p;
    EXPECT_NEAR(sum, 1.0, 1e-5);
  }
}

TEST(Service, WrongHeadAndBadInputHaveKinds) {
  ServiceOptions o;
  o.max_input_length = 64;
  Stack s(HeadKind::kEmbedding, o);
  RerankRequest rerank;
  rerank.query = "q";
  rerank.documents = {"a"};
  EXPECT_EQ(kind_of([&] { s.service->rerank(rerank); }), Kind::kWrongHead);
  ClassifyRequest classify;
  classify.inputs = {{"a", std::nullopt}};
  EXPECT_EQ(kind_of([&] { s.service->classify(classify); }), Kind::kWrongHead);
  EmbedRequest r;
  r.inputs = {Input::of_text(std::string(100, 'x'))};
  EXPECT_EQ(kind_of([&] { s.service->embed(r); }), Kind::kTooLong);  // over 64 tokens
  r.truncation.truncate = true;
  EXPECT_EQ(kind_of([&] { s.service->embed(r); }), std::nullopt);
  r.inputs = {Input::of_ids({1, 2, 999999})};
  EXPECT_EQ(kind_of([&] { s.service->embed(r); }), Kind::kValidation);  // outside the vocabulary
  r.inputs = {Input::of_ids({})};
  EXPECT_EQ(kind_of([&] { s.service->embed(r); }), Kind::kEmpty);
  r.inputs = {Input::of_text("x")};
  r.dimensions = 129;
  EXPECT_EQ(kind_of([&] { s.service->embed(r); }), Kind::kValidation);
  r.dimensions = 0;
  EXPECT_EQ(kind_of([&] { s.service->embed(r); }), Kind::kValidation);
  r.dimensions.reset();
  r.inputs = {Input::of_text("bad \xff byte")};
  EXPECT_EQ(kind_of([&] { s.service->embed(r); }), Kind::kTokenizer);
}

TEST(Service, CancelledCallStopsTheWait) {
  ServiceOptions o;
  o.max_input_length = 4096;
  Stack s(HeadKind::kEmbedding, o);
  EmbedRequest r;
  for (int i = 0; i < 16; ++i)
    r.inputs.push_back(Input::of_text(std::to_string(i) + std::string(3000, 'x')));
  CallContext gone{[] { return true; }};
  EXPECT_EQ(kind_of([&] { s.service->embed(r, gone); }), Kind::kCancelled);
  s.engine->shutdown();  // drains: whatever was not batched yet was dropped, so this is quick
  EXPECT_EQ(s.engine->queued_sequences(), 0);
  EXPECT_FALSE(s.service->accepting());
  r.inputs.resize(1);
  EXPECT_EQ(kind_of([&] { s.service->embed(r); }), Kind::kShuttingDown);
}

// A runner whose model went bad: every output is NaN.
class NanRunner : public engine::BatchRunner {
 public:
  std::vector<engine::SequenceOutput> run(const RaggedBatch& batch, const FoldPlan&) override {
    return std::vector<engine::SequenceOutput>(
        batch.num_sequences(),
        engine::SequenceOutput(128, std::numeric_limits<float>::quiet_NaN()));
  }
  std::string device() const override { return "nan"; }
};

TEST(Service, NonFiniteOutputsAreAnErrorNotAResult) {
  std::vector<std::unique_ptr<engine::BatchRunner>> runners;
  runners.push_back(std::make_unique<NanRunner>());
  engine::Engine engine(std::move(runners), {});
  ServiceOptions o;
  o.max_input_length = 64;
  Service service(demo_info(HeadKind::kEmbedding), load_tokenizer("demo"), engine, o);
  EmbedRequest r;
  r.inputs = {Input::of_text("x")};
  try {
    service.embed(r);
    FAIL() << "NaN embeddings were returned";
  } catch (const ServiceError& e) {
    EXPECT_EQ(e.kind(), Kind::kBackend);
    EXPECT_NE(std::string(e.what()).find("non-finite"), std::string::npos);
  }
}

TEST(Service, TokenizeAndDecode) {
  Stack s(HeadKind::kEmbedding);
  const auto tokens = s.service->tokenize({{"hello world"}, true, std::nullopt});
  ASSERT_EQ(tokens.size(), 1u);
  std::vector<int32_t> ids;
  for (const Token& t : tokens[0]) ids.push_back(t.id);
  EXPECT_EQ(s.service->decode({{ids}, true}).at(0), "hello world");
}

}  // namespace
}  // namespace radix::service
