#include "server/openapi.h"

#include <algorithm>
#include <limits>
#include <string>

namespace radix::server {
namespace {

using nlohmann::json;

// The bounds of this server, as the parsers and the service check them.
struct Bounds {
  int64_t batch = 0;          // --max-client-batch-size: items in a list of inputs
  int64_t max_id = 0;         // the largest token id in the vocabulary
  int64_t max_decode_id = 0;  // the largest id the tokenizer decodes
  int64_t max_tokens = 0;     // --max-input-length: ids in one sequence (without truncation)
  int64_t dimensions = 0;     // the largest `dimensions` (the hidden size)
  std::vector<std::string> prompt_names;
};

json ref(const std::string& name) { return {{"$ref", "#/components/schemas/" + name}}; }
json array_of(const json& items) { return {{"type", "array"}, {"items", items}}; }
// A list the parser refuses when empty (400) or longer than `max_items` (422).
json list_of(const json& items, int64_t max_items) {
  return {{"type", "array"}, {"items", items}, {"minItems", 1}, {"maxItems", max_items}};
}
json str() { return {{"type", "string"}}; }
json text() { return {{"type", "string"}, {"minLength", 1}}; }  // empty texts are a 400
json boolean(bool def) { return {{"type", "boolean"}, {"default", def}, {"nullable", true}}; }
json integer(int64_t minimum) { return {{"type", "integer"}, {"minimum", minimum}}; }
json integer(int64_t minimum, int64_t maximum) {
  return {{"type", "integer"}, {"minimum", minimum}, {"maximum", maximum}};
}
json number() { return {{"type", "number"}}; }
json nullable(json schema) {
  schema["nullable"] = true;
  return schema;
}

json body(const std::string& schema) {
  return {{"required", true}, {"content", {{"application/json", {{"schema", ref(schema)}}}}}};
}

json response(const std::string& description, const json& schema) {
  return {{"description", description}, {"content", {{"application/json", {{"schema", schema}}}}}};
}

// The error statuses a POST route can answer, in TEI's or OpenAI's shape.
json error_responses(const std::string& error_schema) {
  json r;
  const std::pair<const char*, const char*> statuses[] = {
      {"400", "Empty input or a body that is not JSON"},
      {"401", "Missing or wrong API key (with --api-key)"},
      {"413", "Body over --payload-limit"},
      {"422", "Validation: types, batch size, input too long, invalid UTF-8, unknown prompt"},
      {"424", "The model cannot serve this route, or inference failed"},
      {"429", "No concurrency permit left (--max-concurrent-requests)"},
      {"503", "Shutting down"}};
  for (const auto& [code, text] : statuses) r[code] = response(text, ref(error_schema));
  return r;
}

json post(const std::string& summary, const std::string& request, const json& ok,
          const std::string& error_schema = "ErrorResponse") {
  json responses = error_responses(error_schema);
  responses["200"] = response("OK", ok);
  return {
      {"post", {{"summary", summary}, {"requestBody", body(request)}, {"responses", responses}}}};
}

json get(const std::string& summary, const json& ok_content) {
  return {{"get", {{"summary", summary}, {"responses", {{"200", ok_content}}}}}};
}

json token_ids(const Bounds& b) { return list_of(integer(0, b.max_id), b.max_tokens); }

// string | [id, ...] | [string | [id, ...], ...] (parse_inputs)
json input_schema(const Bounds& b) {
  return {
      {"oneOf", json::array({text(), token_ids(b),
                             list_of({{"oneOf", json::array({text(), token_ids(b)})}}, b.batch)})},
      {"description",
       "A text, a list of texts, token ids, or a list of token-id lists (at most "
       "--max-client-batch-size items; ids within the vocabulary, at most --max-input-length "
       "of them)"}};
}

json truncation_direction() {
  return {{"type", "string"},
          {"enum", json::array({"left", "right", "Left", "Right"})},
          {"default", "right"},
          {"nullable", true}};
}

json truncate() {
  return {
      {"type", "boolean"},
      {"nullable", true},
      {"description",
       "Cut inputs over --max-input-length instead of refusing them. Default: --auto-truncate"}};
}

json prompt_name(const Bounds& b) {
  // Only the model's own prompts: any other name is a 422.
  json names = json::array();
  for (const std::string& n : b.prompt_names) names.push_back(n);
  names.push_back(nullptr);
  return {{"type", "string"},
          {"nullable", true},
          {"enum", names},
          {"description", "A prompt from config_sentence_transformers.json, prepended to texts"}};
}

json embed_request(const Bounds& b) {
  return {{"type", "object"},
          {"required", json::array({"inputs"})},
          {"properties",
           {{"inputs", input_schema(b)},
            {"normalize", boolean(true)},
            {"truncate", truncate()},
            {"truncation_direction", truncation_direction()},
            {"prompt_name", prompt_name(b)},
            {"dimensions",
             {{"type", "integer"},
              {"minimum", 1},
              {"maximum", b.dimensions},
              {"nullable", true},
              {"description", "Keep the first N dimensions (before normalisation)"}}}}},
          {"example", {{"inputs", json::array({"What is Deep Learning?", "Hello"})}}}};
}

json rerank_request(const Bounds& b) {
  return {{"type", "object"},
          {"required", json::array({"query", "texts"})},
          {"properties",
           {{"query", str()},
            {"texts", list_of(str(), b.batch)},
            {"raw_scores", boolean(false)},
            {"return_text", boolean(false)},
            {"truncate", truncate()},
            {"truncation_direction", truncation_direction()},
            {"instruction",
             {{"type", "string"},
              {"nullable", true},
              {"description", "Qwen3-Reranker instruction; default: the model card's"}}}}},
          {"example",
           {{"query", "What is Deep Learning?"},
            {"texts", json::array({"Deep Learning is a kind of ML.", "cheese"})}}}};
}

json predict_request(const Bounds& b) {
  const json sequence = {{"type", "array"}, {"items", text()}, {"minItems", 1}, {"maxItems", 2}};
  return {{"type", "object"},
          {"required", json::array({"inputs"})},
          {"properties",
           {{"inputs",
             {{"oneOf", json::array({text(), sequence, list_of(sequence, b.batch)})},
              {"description", "A text, a pair [text, text], or a batch of texts and pairs"}}},
            {"raw_scores", boolean(false)},
            {"truncate", truncate()},
            {"truncation_direction", truncation_direction()}}},
          {"example", {{"inputs", "I like you."}}}};
}

json similarity_request(const Bounds& b) {
  return {{"type", "object"},
          {"required", json::array({"inputs"})},
          {"properties",
           {{"inputs",
             {{"type", "object"},
              {"required", json::array({"source_sentence", "sentences"})},
              {"properties",
               {{"source_sentence", text()},
                // The source counts towards --max-client-batch-size with the sentences.
                {"sentences", list_of(text(), std::max<int64_t>(1, b.batch - 1))}}}}},
            {"truncate", truncate()},
            {"truncation_direction", truncation_direction()},
            {"prompt_name", prompt_name(b)}}},
          {"example",
           {{"inputs",
             {{"source_sentence", "What is Deep Learning?"},
              {"sentences", json::array({"Deep Learning is a kind of ML.", "cheese"})}}}}}};
}

json schemas(const Bounds& b, const std::string& head) {
  json s;
  s["ErrorResponse"] = {
      {"type", "object"},
      {"required", json::array({"error", "error_type"})},
      {"properties",
       {{"error", str()},
        {"error_type",
         {{"type", "string"},
          {"enum", json::array({"Unhealthy", "Backend", "Overloaded", "Validation", "Tokenizer",
                                "Empty", "PayloadTooLarge", "Unauthorized", "NotFound"})}}}}}};
  s["OpenAIErrorResponse"] = {{"type", "object"},
                              {"required", json::array({"error"})},
                              {"properties",
                               {{"error",
                                 {{"type", "object"},
                                  {"properties",
                                   {{"message", str()},
                                    {"type", str()},
                                    {"param", {{"type", "string"}, {"nullable", true}}},
                                    {"code", {{"type", "string"}, {"nullable", true}}}}}}}}}};
  s["EmbedRequest"] = embed_request(b);
  s["EmbedResponse"] = array_of(array_of(number()));
  s["EmbedAllResponse"] = {{"type", "array"},
                           {"items", array_of(array_of(number()))},
                           {"description", "Per input, per token: the final hidden state"}};
  s["SparseValue"] = {{"type", "object"},
                      {"properties", {{"index", integer(0)}, {"value", number()}}}};
  s["EmbedSparseResponse"] = array_of(array_of(ref("SparseValue")));
  s["SimilarityRequest"] = similarity_request(b);
  s["SimilarityResponse"] = {{"type", "array"},
                             {"items", number()},
                             {"description", "Cosine similarity of each sentence to the source"}};
  s["RerankRequest"] = rerank_request(b);
  s["Rank"] = {{"type", "object"},
               {"required", json::array({"index", "score"})},
               {"properties", {{"index", integer(0)}, {"score", number()}, {"text", str()}}}};
  s["RerankResponse"] = {
      {"type", "array"}, {"items", ref("Rank")}, {"description", "Sorted by score, highest first"}};
  s["PredictRequest"] = predict_request(b);
  s["Prediction"] = {{"type", "object"},
                     {"required", json::array({"score", "label"})},
                     {"properties", {{"score", number()}, {"label", str()}}}};
  s["PredictResponse"] = {
      {"oneOf", json::array({array_of(ref("Prediction")), array_of(array_of(ref("Prediction")))})}};
  s["TokenizeRequest"] = {
      {"type", "object"},
      {"required", json::array({"inputs"})},
      {"properties",
       {{"inputs",
         {{"oneOf", json::array({text(), list_of(text(), b.batch)})},
          {"description",
           "Texts of at most --max-input-length tokens each, --max-batch-tokens in all"}}},
        {"add_special_tokens", boolean(true)},
        {"prompt_name", prompt_name(b)}}},
      {"example", {{"inputs", "What is Deep Learning?"}}}};
  s["SimpleToken"] = {{"type", "object"},
                      {"required", json::array({"id", "text", "special"})},
                      {"properties",
                       {{"id", integer(0)},
                        {"text", str()},
                        {"special", {{"type", "boolean"}}},
                        {"start", {{"type", "integer"}, {"nullable", true}}},
                        {"stop", {{"type", "integer"}, {"nullable", true}}}}}};
  s["TokenizeResponse"] = array_of(array_of(ref("SimpleToken")));
  s["DecodeRequest"] = {
      {"type", "object"},
      {"required", json::array({"ids"})},
      {"properties",
       {{"ids",
         {{"oneOf",
           json::array({list_of(integer(0, b.max_decode_id), b.max_tokens),
                        list_of(list_of(integer(0, b.max_decode_id), b.max_tokens), b.batch)})},
          {"description",
           "Ids the tokenizer knows (the model's vocabulary may be padded past it)"}}},
        {"skip_special_tokens", boolean(true)}}},
      {"example", {{"ids", json::array({1, 2, 3})}}}};
  s["DecodeResponse"] = array_of(str());
  s["OpenAIEmbeddingsRequest"] = {
      {"type", "object"},
      {"required", json::array({"input"})},
      {"properties",
       {{"input", input_schema(b)},
        {"model", nullable(str())},
        {"user", nullable(str())},
        {"encoding_format",
         {{"type", "string"},
          {"enum", json::array({"float", "base64", nullptr})},
          {"default", "float"},
          {"nullable", true}}},
        {"dimensions", nullable(integer(1, b.dimensions))},
        {"truncate", truncate()},
        {"truncation_direction", truncation_direction()}}},
      {"example", {{"input", json::array({"What is Deep Learning?", "Hello"})}, {"model", "m"}}}};
  s["OpenAIEmbeddingsResponse"] = {
      {"type", "object"},
      {"required", json::array({"object", "data", "model", "usage"})},
      {"properties",
       {{"object", str()},
        {"model", str()},
        {"data", array_of({{"type", "object"},
                           {"required", json::array({"object", "index", "embedding"})},
                           {"properties",
                            {{"object", str()},
                             {"index", integer(0)},
                             {"embedding",
                              {{"oneOf", json::array({array_of(number()), str()})},
                               {"description", "floats, or base64 of little-endian float32"}}}}}})},
        {"usage",
         {{"type", "object"},
          {"properties", {{"prompt_tokens", integer(0)}, {"total_tokens", integer(0)}}}}}}}};
  s["OpenAIRerankRequest"] = {
      {"type", "object"},
      {"required", json::array({"query", "documents"})},
      {"properties",
       {{"query", str()},
        {"documents", list_of({{"oneOf", json::array({str(),
                                                      {{"type", "object"},
                                                       {"required", json::array({"text"})},
                                                       {"properties", {{"text", str()}}}}})}},
                              b.batch)},
        {"top_n", nullable(integer(1, std::numeric_limits<int32_t>::max()))},
        {"return_documents", boolean(false)},
        {"instruction", nullable(str())},
        {"model", nullable(str())},
        {"truncate", truncate()},
        {"truncation_direction", truncation_direction()}}},
      {"example",
       {{"query", "What is Deep Learning?"},
        {"documents", json::array({"Deep Learning is a kind of ML.", "cheese"})}}}};
  s["OpenAIRerankResponse"] = {
      {"type", "object"},
      {"required", json::array({"object", "results", "model", "usage"})},
      {"properties",
       {{"object", str()},
        {"model", str()},
        {"results",
         array_of({{"type", "object"},
                   {"required", json::array({"index", "relevance_score"})},
                   {"properties",
                    {{"index", integer(0)},
                     {"relevance_score", number()},
                     {"document", {{"type", "object"}, {"properties", {{"text", str()}}}}}}}})},
        {"usage",
         {{"type", "object"},
          {"properties", {{"prompt_tokens", integer(0)}, {"total_tokens", integer(0)}}}}}}}};
  s["Model"] = {{"type", "object"},
                {"required", json::array({"id", "object", "created", "owned_by"})},
                {"properties",
                 {{"id", str()}, {"object", str()}, {"created", integer(0)}, {"owned_by", str()}}}};
  s["ModelList"] = {{"type", "object"},
                    {"required", json::array({"object", "data"})},
                    {"properties", {{"object", str()}, {"data", array_of(ref("Model"))}}}};
  s["Info"] = {{"type", "object"},
               {"description", "Model, limits and radix settings (TEI's /info fields and more)"}};
  // POST / takes what this model's own route takes.
  if (head == "reranker") {
    s["RootRequest"] = s["RerankRequest"];
    s["RootResponse"] = ref("RerankResponse");
  } else if (head == "classifier") {
    s["RootRequest"] = s["PredictRequest"];
    s["RootResponse"] = array_of(array_of(ref("Prediction")));
  } else {
    s["RootRequest"] = {{"oneOf", json::array({ref("EmbedRequest"), ref("SimilarityRequest")})}};
    s["RootResponse"] = {{"oneOf", json::array({ref("EmbedResponse"), ref("SimilarityResponse")})}};
  }
  return s;
}

}  // namespace

json openapi_document(const ModelCard& card, const RequestLimits& limits,
                      const std::string& served_model_name) {
  Bounds b;
  b.batch = static_cast<int64_t>(limits.max_client_batch_size);
  b.max_id = std::max<int64_t>(0, static_cast<int64_t>(card.vocab_size) - 1);
  b.max_decode_id =
      card.tokenizer_vocab_size > 0
          ? std::min<int64_t>(b.max_id, static_cast<int64_t>(card.tokenizer_vocab_size) - 1)
          : b.max_id;
  b.max_tokens = std::max<int32_t>(1, card.max_input_length);
  b.dimensions = std::max<int32_t>(1, card.hidden_size);
  b.prompt_names = card.prompt_names;
  json paths;
  paths["/"] = post("TEI's route for this model's head: embed or similarity, predict, or rerank",
                    "RootRequest", ref("RootResponse"));
  paths["/embed"] = post("Embed texts or token ids", "EmbedRequest", ref("EmbedResponse"));
  paths["/embed_all"] = post("Per-token final hidden states (not pooled, not normalised)",
                             "EmbedRequest", ref("EmbedAllResponse"));
  paths["/embed_sparse"] = post("SPLADE sparse embeddings (424: radix serves no SPLADE model)",
                                "EmbedRequest", ref("EmbedSparseResponse"));
  paths["/similarity"] = post("Cosine similarity of sentences to a source sentence",
                              "SimilarityRequest", ref("SimilarityResponse"));
  paths["/rerank"] = post("Score texts against a query (Qwen3-Reranker template applied here)",
                          "RerankRequest", ref("RerankResponse"));
  paths["/predict"] =
      post("Classify texts or text pairs", "PredictRequest", ref("PredictResponse"));
  paths["/tokenize"] = post("Tokenize texts", "TokenizeRequest", ref("TokenizeResponse"));
  paths["/decode"] = post("Decode token ids", "DecodeRequest", ref("DecodeResponse"));
  paths["/v1/embeddings"] = post("OpenAI-compatible embeddings", "OpenAIEmbeddingsRequest",
                                 ref("OpenAIEmbeddingsResponse"), "OpenAIErrorResponse");
  paths["/v1/rerank"] = post("Cohere/Jina-style rerank", "OpenAIRerankRequest",
                             ref("OpenAIRerankResponse"), "OpenAIErrorResponse");
  paths["/v1/models"] =
      get("The served model (OpenAI's model list)", response("OK", ref("ModelList")));
  paths["/v1/models/{model}"] = {
      {"get",
       {{"summary", "One model (OpenAI's models.retrieve)"},
        {"parameters",
         json::array(
             {{{"name", "model"},
               {"in", "path"},
               {"required", true},
               {"schema", {{"type", "string"}, {"enum", json::array({served_model_name})}}}}})},
        {"responses",
         {{"200", response("OK", ref("Model"))},
          {"404", response("No such model", ref("OpenAIErrorResponse"))}}}}}};
  paths["/info"] = get("Model and server information", response("OK", ref("Info")));
  paths["/health"] = {{"get",
                       {{"summary", "200 when ready, 503 when not ready or shutting down"},
                        {"responses",
                         {{"200", {{"description", "Ready"}}},
                          {"503", response("Unhealthy", ref("ErrorResponse"))}}}}}};
  paths["/metrics"] =
      get("Prometheus metrics", {{"description", "Prometheus text format 0.0.4"},
                                 {"content", {{"text/plain", {{"schema", str()}}}}}});
  paths["/openapi.json"] = get("This document", {{"description", "OpenAPI 3.0 JSON"}});
  return {{"openapi", "3.0.3"},
          {"info",
           {{"title", "radix"},
            {"version", "0.1.0"},
            {"description",
             "Embeddings, reranking and classification with intra-batch prefix dedup. Built for "
             "this server: batch sizes, token ids, dimensions and prompt names are its own "
             "limits. With --api-key every route needs `Authorization: Bearer <key>`."}}},
          {"paths", paths},
          {"components",
           {{"schemas", schemas(b, card.head)},
            {"securitySchemes", {{"bearer", {{"type", "http"}, {"scheme", "bearer"}}}}}}}};
}

}  // namespace radix::server
