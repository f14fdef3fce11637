// /openapi.json against the request parsers it describes: every request schema's example parses,
// and the list bounds the document states (minItems, maxItems, minLength) are the ones the
// parsers enforce, one item either side. The running-server check (any body the document allows
// is accepted, every answer matches it) is tests/python/test_server_openapi.py (schemathesis).
#include "server/openapi.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>

#include "server/api_error.h"

namespace radix::server {
namespace {

using nlohmann::json;
using Parser = std::function<void(const std::string&, const RequestLimits&)>;

const RequestLimits kLimits{.max_client_batch_size = 5};

ModelCard card() {
  ModelCard c;
  c.head = "embedding";
  c.vocab_size = 100;
  c.hidden_size = 16;
  c.max_input_length = 8;
  c.prompt_names = {"query"};
  return c;
}

const std::map<std::string, Parser>& parsers() {
  static const std::map<std::string, Parser> p = {
      {"EmbedRequest", [](auto& b, auto& l) { parse_embed_request(b, l); }},
      {"OpenAIEmbeddingsRequest", [](auto& b, auto& l) { parse_openai_embeddings_request(b, l); }},
      {"RerankRequest", [](auto& b, auto& l) { parse_rerank_request(b, l); }},
      {"OpenAIRerankRequest", [](auto& b, auto& l) { parse_openai_rerank_request(b, l); }},
      {"SimilarityRequest", [](auto& b, auto& l) { parse_similarity_request(b, l); }},
      {"PredictRequest", [](auto& b, auto& l) { parse_predict_request(b, l); }},
      {"TokenizeRequest", [](auto& b, auto& l) { parse_tokenize_request(b, l); }},
      {"DecodeRequest", [](auto& b, auto& l) { parse_decode_request(b, l); }},
  };
  return p;
}

int status_of(const Parser& parse, const json& body) {
  try {
    parse(body.dump(), kLimits);
  } catch (const ApiError& e) {
    return e.status();
  }
  return 200;
}

const json& schema(const json& doc, const std::string& name) {
  return doc["components"]["schemas"][name];
}

TEST(OpenApi, EveryRequestSchemaHasAnExampleItsParserAccepts) {
  const json doc = openapi_document(card(), kLimits, "m");
  for (const auto& [name, parse] : parsers()) {
    ASSERT_TRUE(schema(doc, name).contains("example")) << name;
    EXPECT_EQ(status_of(parse, schema(doc, name)["example"]), 200) << name;
  }
}

TEST(OpenApi, EveryPostRouteNamesADefinedRequestSchema) {
  const json doc = openapi_document(card(), kLimits, "m");
  for (const char* path : {"/", "/embed", "/embed_all", "/embed_sparse", "/similarity", "/rerank",
                           "/predict", "/tokenize", "/decode", "/v1/embeddings", "/v1/rerank"}) {
    ASSERT_TRUE(doc["paths"].contains(path)) << path;
    const std::string ref =
        doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"];
    const std::string name = ref.substr(ref.rfind('/') + 1);
    EXPECT_TRUE(doc["components"]["schemas"].contains(name)) << path;
    EXPECT_TRUE(name == "RootRequest" || parsers().count(name)) << path << " " << name;
  }
  for (const char* path :
       {"/v1/models", "/v1/models/{model}", "/info", "/health", "/metrics", "/openapi.json"}) {
    EXPECT_TRUE(doc["paths"][path].contains("get")) << path;
  }
}

// A list field at its documented bounds: n = maxItems parses, maxItems + 1 is a 422, an empty
// list a 400 (minItems 1).
void check_list_bounds(const Parser& parse, const json& list_schema,
                       const std::function<json(size_t n)>& body, const std::string& what) {
  ASSERT_EQ(list_schema["minItems"], 1) << what;
  const size_t max = list_schema["maxItems"];
  EXPECT_EQ(status_of(parse, body(max)), 200) << what;
  EXPECT_EQ(status_of(parse, body(max + 1)), 422) << what;
  EXPECT_EQ(status_of(parse, body(0)), 400) << what;
}

json texts(size_t n) { return json(std::vector<std::string>(n, "t")); }

TEST(OpenApi, ListBoundsAreTheParsers) {
  const json doc = openapi_document(card(), kLimits, "m");
  const auto& p = parsers();
  // inputs: oneOf [text, ids, list of (text | ids)]
  const json& inputs = schema(doc, "EmbedRequest")["properties"]["inputs"]["oneOf"];
  check_list_bounds(
      p.at("EmbedRequest"), inputs[2],
      [](size_t n) {
        return json{{"inputs", texts(n)}};
      },
      "embed texts");
  check_list_bounds(
      p.at("OpenAIEmbeddingsRequest"),
      schema(doc, "OpenAIEmbeddingsRequest")["properties"]["input"]["oneOf"][2],
      [](size_t n) {
        return json{{"input", texts(n)}};
      },
      "v1 embeddings");
  check_list_bounds(
      p.at("RerankRequest"), schema(doc, "RerankRequest")["properties"]["texts"],
      [](size_t n) {
        return json{{"query", "q"}, {"texts", texts(n)}};
      },
      "rerank");
  check_list_bounds(
      p.at("OpenAIRerankRequest"), schema(doc, "OpenAIRerankRequest")["properties"]["documents"],
      [](size_t n) {
        return json{{"query", "q"}, {"documents", texts(n)}};
      },
      "v1 rerank");
  check_list_bounds(
      p.at("SimilarityRequest"),
      schema(doc, "SimilarityRequest")["properties"]["inputs"]["properties"]["sentences"],
      [](size_t n) {
        return json{{"inputs", {{"source_sentence", "s"}, {"sentences", texts(n)}}}};
      },
      "similarity");
  check_list_bounds(
      p.at("TokenizeRequest"), schema(doc, "TokenizeRequest")["properties"]["inputs"]["oneOf"][1],
      [](size_t n) {
        return json{{"inputs", texts(n)}};
      },
      "tokenize");
  check_list_bounds(
      p.at("PredictRequest"), schema(doc, "PredictRequest")["properties"]["inputs"]["oneOf"][2],
      [](size_t n) {
        json batch = json::array();
        for (size_t i = 0; i < n; ++i) batch.push_back(json::array({"a", "b"}));
        return json{{"inputs", batch}};
      },
      "predict");
  check_list_bounds(
      p.at("DecodeRequest"), schema(doc, "DecodeRequest")["properties"]["ids"]["oneOf"][1],
      [](size_t n) {
        return json{{"ids", std::vector<std::vector<int>>(n, std::vector<int>{1})}};
      },
      "decode");
  // A predict sequence is one text or a pair: three is a 422.
  const json& pair = schema(doc, "PredictRequest")["properties"]["inputs"]["oneOf"][1];
  EXPECT_EQ(pair["maxItems"], 2);
  EXPECT_EQ(status_of(p.at("PredictRequest"), {{"inputs", {"a", "b"}}}), 200);
  EXPECT_EQ(status_of(p.at("PredictRequest"), {{"inputs", {"a", "b", "c"}}}), 422);
}

TEST(OpenApi, EmptyTextsAndEmptyIdListsAreOutsideTheSchema) {
  const json doc = openapi_document(card(), kLimits, "m");
  const json& inputs = schema(doc, "EmbedRequest")["properties"]["inputs"]["oneOf"];
  EXPECT_EQ(inputs[0]["minLength"], 1);
  EXPECT_EQ(inputs[1]["minItems"], 1);
  const auto& embed = parsers().at("EmbedRequest");
  EXPECT_EQ(status_of(embed, {{"inputs", ""}}), 400);
  EXPECT_EQ(status_of(embed, {{"inputs", json::array({json::array()})}}), 400);
  EXPECT_EQ(status_of(embed, {{"inputs", json::array({""})}}), 400);
  // Token ids: the schema's bounds are the card's vocabulary and input length.
  EXPECT_EQ(inputs[1]["items"]["maximum"], 99);
  EXPECT_EQ(inputs[1]["maxItems"], 8);
  // Ids past int32 are the parser's 422 (the service refuses those past the vocabulary).
  EXPECT_EQ(status_of(embed, {{"inputs", json::array({4294967296LL})}}), 422);
}

TEST(OpenApi, PromptNamesDimensionsAndRootFollowTheModel) {
  const json doc = openapi_document(card(), kLimits, "m");
  EXPECT_EQ(schema(doc, "EmbedRequest")["properties"]["prompt_name"]["enum"],
            json::array({"query", nullptr}));
  EXPECT_EQ(schema(doc, "EmbedRequest")["properties"]["dimensions"]["maximum"], 16);
  EXPECT_EQ(schema(doc, "RootRequest")["oneOf"].size(), 2u);
  ModelCard reranker = card();
  reranker.head = "reranker";
  EXPECT_EQ(schema(openapi_document(reranker, kLimits, "m"), "RootRequest"),
            schema(doc, "RerankRequest"));
  EXPECT_EQ(openapi_document(
                card(), kLimits,
                "served")["paths"]["/v1/models/{model}"]["get"]["parameters"][0]["schema"]["enum"],
            json::array({"served"}));
}

}  // namespace
}  // namespace radix::server
