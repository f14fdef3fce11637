#include "server/requests.h"

#include <gtest/gtest.h>

#include "server/api_error.h"

namespace radix::server {
namespace {

const RequestLimits kLimits{.max_client_batch_size = 4};

// Runs fn, expects an ApiError with this status and a message containing `needle`.
template <typename Fn>
void expect_error(Fn fn, int status, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "expected an ApiError " << status;
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), status) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(ParseEmbed, StringListAndDefaults) {
  auto r = parse_embed_request(R"({"inputs": "hello"})", kLimits);
  ASSERT_EQ(r.inputs.size(), 1u);
  EXPECT_EQ(r.inputs[0].text, "hello");
  EXPECT_FALSE(r.inputs[0].is_ids);
  EXPECT_TRUE(r.normalize);
  EXPECT_FALSE(r.truncate.has_value());
  EXPECT_EQ(r.truncation_direction, TruncationDirection::kRight);

  r = parse_embed_request(
      R"({"inputs": ["a", [1, 2, 3]], "normalize": false, "truncate": true,
          "truncation_direction": "Left", "prompt_name": "query", "dimensions": 8})",
      kLimits);
  ASSERT_EQ(r.inputs.size(), 2u);
  EXPECT_TRUE(r.inputs[1].is_ids);
  EXPECT_EQ(r.inputs[1].ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_FALSE(r.normalize);
  EXPECT_EQ(r.truncate, true);
  EXPECT_EQ(r.truncation_direction, TruncationDirection::kLeft);
  EXPECT_EQ(r.prompt_name, "query");
  EXPECT_EQ(r.dimensions, 8);
}

TEST(ParseEmbed, OneSequenceOfIdsAndNullsAsAbsent) {
  auto r =
      parse_embed_request(R"({"inputs": [5, 6], "truncate": null, "dimensions": null})", kLimits);
  ASSERT_EQ(r.inputs.size(), 1u);
  EXPECT_EQ(r.inputs[0].ids, (std::vector<int32_t>{5, 6}));
  EXPECT_FALSE(r.truncate.has_value());
  EXPECT_FALSE(r.dimensions.has_value());
}

TEST(ParseEmbed, Errors) {
  auto embed = [](const std::string& body) {
    return [body] { parse_embed_request(body, kLimits); };
  };
  expect_error(embed("{"), 400, "not valid JSON");
  expect_error(embed(""), 400, "not valid JSON");
  expect_error(embed("[1]"), 422, "JSON object");
  expect_error(embed("{}"), 422, "missing field `inputs`");
  expect_error(embed(R"({"inputs": ""})"), 400, "empty");
  expect_error(embed(R"({"inputs": []})"), 400, "cannot be empty");
  expect_error(embed(R"({"inputs": ["a", ""]})"), 400, "empty");
  expect_error(embed(R"({"inputs": [[]]})"), 400, "cannot be empty");
  expect_error(embed(R"({"inputs": 5})"), 422, "must be a string");
  expect_error(embed(R"({"inputs": ["a", 5]})"), 422, "items must be");
  expect_error(embed(R"({"inputs": [1, "a"]})"), 422, "integers");
  expect_error(embed(R"({"inputs": [1.5]})"), 422, "integers");
  expect_error(embed(R"({"inputs": [-1]})"), 422, "between 0");
  expect_error(embed(R"({"inputs": [4294967296]})"), 422, "between 0");
  expect_error(embed(R"({"inputs": ["a","b","c","d","e"]})"), 422, "batch size 5 > maximum");
  expect_error(embed(R"({"inputs": "a", "normalize": "yes"})"), 422, "`normalize` must be");
  expect_error(embed(R"({"inputs": "a", "truncate": 1})"), 422, "`truncate` must be");
  expect_error(embed(R"({"inputs": "a", "dimensions": 0})"), 422, "`dimensions` must be");
  expect_error(embed(R"({"inputs": "a", "dimensions": -3})"), 422, "`dimensions` must be");
  expect_error(embed(R"({"inputs": "a", "dimensions": 2.5})"), 422, "`dimensions` must be");
  expect_error(embed(R"({"inputs": "a", "truncation_direction": "up"})"), 422,
               "truncation_direction");
  expect_error(embed(R"({"inputs": "a", "prompt_name": 3})"), 422, "`prompt_name`");
  expect_error(embed("{\"inputs\": \"a\xff\"}"), 422, "UTF-8");
  expect_error(embed("{\"inputs\": \"\xc3\"}"), 422, "offset 12");
  expect_error(embed(R"({"inputs": "\ud800"})"), 422, "Unicode");
  // Found by the fuzzer: a well-formed number beyond double's range.
  expect_error(embed("9e9909"), 422, "out of range");
  expect_error(embed(R"({"inputs": [1], "dimensions": -9e9909})"), 422, "out of range");
}

TEST(ParseOpenAIEmbeddings, FormatsAndErrors) {
  auto r = parse_openai_embeddings_request(
      R"({"input": ["x", "y"], "model": "m", "encoding_format": "base64", "dimensions": 2,
          "user": "u"})",
      kLimits);
  EXPECT_EQ(r.inputs.size(), 2u);
  EXPECT_EQ(r.encoding_format, EncodingFormat::kBase64);
  EXPECT_EQ(r.model, "m");
  EXPECT_EQ(r.dimensions, 2);
  expect_error(
      [] {
        parse_openai_embeddings_request(R"({"input": "x", "encoding_format": "hex"})", kLimits);
      },
      422, "encoding_format");
  expect_error([] { parse_openai_embeddings_request(R"({"inputs": "x"})", kLimits); }, 422,
               "missing field `input`");
}

TEST(ParseRerank, FieldsAndErrors) {
  auto r = parse_rerank_request(
      R"({"query": "q", "texts": ["a", ""], "raw_scores": true, "return_text": true,
          "instruction": "find"})",
      kLimits);
  EXPECT_EQ(r.query, "q");
  EXPECT_EQ(r.texts, (std::vector<std::string>{"a", ""}));
  EXPECT_TRUE(r.raw_scores);
  EXPECT_TRUE(r.return_text);
  EXPECT_EQ(r.instruction, "find");
  expect_error([] { parse_rerank_request(R"({"query": "q", "texts": []})", kLimits); }, 400,
               "`texts` cannot be empty");
  expect_error([] { parse_rerank_request(R"({"texts": ["a"]})", kLimits); }, 422, "`query`");
  expect_error([] { parse_rerank_request(R"({"query": 1, "texts": ["a"]})", kLimits); }, 422,
               "`query` must be");
  expect_error([] { parse_rerank_request(R"({"query": "q", "texts": "a"})", kLimits); }, 422,
               "list of strings");
  expect_error([] { parse_rerank_request(R"({"query": "q", "texts": ["a", 1]})", kLimits); }, 422,
               "list of strings");
  expect_error(
      [] { parse_rerank_request(R"({"query": "q", "texts": ["1","2","3","4","5"]})", kLimits); },
      422, "batch size");
}

TEST(ParseOpenAIRerank, DocumentsAsStringsOrObjects) {
  auto r = parse_openai_rerank_request(
      R"({"query": "q", "documents": ["a", {"text": "b"}], "top_n": 1, "return_documents": true})",
      kLimits);
  EXPECT_EQ(r.documents, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.top_n, 1);
  EXPECT_TRUE(r.return_documents);
  expect_error(
      [] { parse_openai_rerank_request(R"({"query": "q", "documents": [{"t": 1}]})", kLimits); },
      422, "documents");
  expect_error(
      [] {
        parse_openai_rerank_request(R"({"query": "q", "documents": ["a"],
                                                    "top_n": 0})",
                                    kLimits);
      },
      422, "top_n");
}

TEST(ParsePredict, SingleQuestionPairAndBatch) {
  auto r = parse_predict_request(R"({"inputs": "t"})", kLimits);
  ASSERT_EQ(r.inputs.size(), 1u);
  EXPECT_FALSE(r.batched);
  EXPECT_FALSE(r.inputs[0].second.has_value());
  r = parse_predict_request(R"({"inputs": ["a", "b"]})", kLimits);
  ASSERT_EQ(r.inputs.size(), 1u);
  EXPECT_EQ(r.inputs[0].second, "b");
  r = parse_predict_request(R"({"inputs": [["a"], ["b", "c"]], "raw_scores": true})", kLimits);
  ASSERT_EQ(r.inputs.size(), 2u);
  EXPECT_TRUE(r.batched);
  EXPECT_TRUE(r.raw_scores);
  expect_error([] { parse_predict_request(R"({"inputs": ["a", "b", "c"]})", kLimits); }, 422,
               "pair");
  expect_error([] { parse_predict_request(R"({"inputs": [[]]})", kLimits); }, 422, "pair");
  expect_error([] { parse_predict_request(R"({"inputs": []})", kLimits); }, 400, "empty");
}

TEST(ParseTokenizeAndDecode, ShapesAndErrors) {
  auto t =
      parse_tokenize_request(R"({"inputs": ["a", "b"], "add_special_tokens": false})", kLimits);
  EXPECT_EQ(t.inputs.size(), 2u);
  EXPECT_FALSE(t.add_special_tokens);
  auto d = parse_decode_request(R"({"ids": [1, 2]})", kLimits);
  ASSERT_EQ(d.ids.size(), 1u);
  EXPECT_TRUE(d.skip_special_tokens);
  d = parse_decode_request(R"({"ids": [[1], [2, 3]], "skip_special_tokens": false})", kLimits);
  EXPECT_EQ(d.ids.size(), 2u);
  EXPECT_FALSE(d.skip_special_tokens);
  expect_error([] { parse_decode_request(R"({"ids": [[1], 2]})", kLimits); }, 422, "mix");
  expect_error([] { parse_decode_request(R"({"ids": []})", kLimits); }, 400, "empty");
  expect_error([] { parse_tokenize_request(R"({"inputs": [""]})", kLimits); }, 400, "empty");
}

TEST(ApiErrorBodies, TeiAndOpenAIShapes) {
  const ApiError e(ErrorType::kOverloaded, "Model is overloaded");
  EXPECT_EQ(e.status(), 429);
  EXPECT_EQ(tei_error_body(e),
            (nlohmann::json{{"error", "Model is overloaded"}, {"error_type", "Overloaded"}}));
  const nlohmann::json o = openai_error_body(e);
  EXPECT_EQ(o["error"]["message"], "Model is overloaded");
  EXPECT_EQ(o["error"]["type"], "rate_limit_error");
  EXPECT_TRUE(o["error"].contains("param"));
  EXPECT_EQ(default_status(ErrorType::kValidation), 422);
  EXPECT_EQ(default_status(ErrorType::kEmpty), 400);
  EXPECT_EQ(default_status(ErrorType::kUnhealthy), 503);
  EXPECT_EQ(default_status(ErrorType::kPayloadLarge), 413);
}

TEST(ParseSimilarity, FieldsAndErrors) {
  auto r = parse_similarity_request(
      R"({"inputs": {"source_sentence": "a", "sentences": ["b", "c"]}, "truncate": true,
          "truncation_direction": "left", "prompt_name": "query"})",
      kLimits);
  EXPECT_EQ(r.source_sentence, "a");
  EXPECT_EQ(r.sentences, (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(r.truncate, true);
  EXPECT_EQ(r.truncation_direction, TruncationDirection::kLeft);
  EXPECT_EQ(r.prompt_name, "query");
  auto sim = [](const char* body) { return [=] { parse_similarity_request(body, kLimits); }; };
  expect_error(sim(R"({"inputs": "a"})"), 422, "must be an object");
  expect_error(sim(R"({"inputs": {"sentences": ["b"]}})"), 422, "source_sentence");
  expect_error(sim(R"({"inputs": {"source_sentence": "a"}})"), 422, "sentences");
  expect_error(sim(R"({"inputs": {"source_sentence": "", "sentences": ["b"]}})"), 400, "empty");
  expect_error(sim(R"({"inputs": {"source_sentence": "a", "sentences": []}})"), 400, "empty");
  // The source counts: 1 + 4 sentences > 4.
  expect_error(sim(R"({"inputs": {"source_sentence": "a", "sentences": ["b","c","d","e"]}})"), 422,
               "batch size 5");
}

TEST(ParseOpenAI, TruncateIsAccepted) {
  auto e = parse_openai_embeddings_request(R"({"input": "a", "truncate": true})", kLimits);
  EXPECT_EQ(e.truncate, true);
  auto r = parse_openai_rerank_request(
      R"({"query": "q", "documents": ["d"], "truncate": false, "truncation_direction": "left"})",
      kLimits);
  EXPECT_EQ(r.truncate, false);
  EXPECT_EQ(r.truncation_direction, TruncationDirection::kLeft);
  expect_error([] { parse_openai_embeddings_request(R"({"input": "a", "truncate": 1})", kLimits); },
               422, "`truncate`");
}

}  // namespace
}  // namespace radix::server
