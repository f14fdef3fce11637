#include "server/openapi.h"

#include <string>

namespace radix::server {
namespace {

using nlohmann::json;

json ref(const std::string& name) { return {{"$ref", "#/components/schemas/" + name}}; }
json array_of(const json& items) { return {{"type", "array"}, {"items", items}}; }
json str() { return {{"type", "string"}}; }
json boolean(bool def) { return {{"type", "boolean"}, {"default", def}}; }
json integer(int minimum) { return {{"type", "integer"}, {"minimum", minimum}}; }
json number() { return {{"type", "number"}}; }

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

json input_schema() {
  const json ids = array_of(integer(0));
  return {{"oneOf", json::array({str(), ids, array_of({{"oneOf", json::array({str(), ids})}})})},
          {"description",
           "A text, a list of texts, token ids, or a list of token-id lists (at most "
           "--max-client-batch-size items)"}};
}

json truncation_direction() {
  return {{"type", "string"},
          {"enum", json::array({"left", "right", "Left", "Right"})},
          {"default", "right"}};
}

json schemas() {
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
                              {"properties",
                               {{"error",
                                 {{"type", "object"},
                                  {"properties",
                                   {{"message", str()},
                                    {"type", str()},
                                    {"param", {{"type", "string"}, {"nullable", true}}},
                                    {"code", {{"type", "string"}, {"nullable", true}}}}}}}}}};
  s["EmbedRequest"] = {
      {"type", "object"},
      {"required", json::array({"inputs"})},
      {"properties",
       {{"inputs", input_schema()},
        {"normalize", boolean(true)},
        {"truncate",
         {{"type", "boolean"}, {"nullable", true}, {"description", "Default: --auto-truncate"}}},
        {"truncation_direction", truncation_direction()},
        {"prompt_name",
         {{"type", "string"},
          {"nullable", true},
          {"description", "A prompt from config_sentence_transformers.json, prepended to texts"}}},
        {"dimensions",
         {{"type", "integer"},
          {"minimum", 1},
          {"nullable", true},
          {"description", "Keep the first N dimensions (before normalisation)"}}}}}};
  s["EmbedResponse"] = array_of(array_of(number()));
  s["RerankRequest"] = {
      {"type", "object"},
      {"required", json::array({"query", "texts"})},
      {"properties",
       {{"query", str()},
        {"texts", array_of(str())},
        {"raw_scores", boolean(false)},
        {"return_text", boolean(false)},
        {"truncate", {{"type", "boolean"}, {"nullable", true}}},
        {"truncation_direction", truncation_direction()},
        {"instruction",
         {{"type", "string"},
          {"nullable", true},
          {"description", "Qwen3-Reranker instruction; default: the model card's"}}}}}};
  s["Rank"] = {{"type", "object"},
               {"required", json::array({"index", "score"})},
               {"properties", {{"index", integer(0)}, {"score", number()}, {"text", str()}}}};
  s["RerankResponse"] = {
      {"type", "array"}, {"items", ref("Rank")}, {"description", "Sorted by score, highest first"}};
  s["PredictRequest"] = {
      {"type", "object"},
      {"required", json::array({"inputs"})},
      {"properties",
       {{"inputs",
         {{"oneOf", json::array({str(), array_of(str()), array_of(array_of(str()))})},
          {"description", "A text, a pair [text, text], or a batch of texts and pairs"}}},
        {"raw_scores", boolean(false)},
        {"truncate", {{"type", "boolean"}, {"nullable", true}}},
        {"truncation_direction", truncation_direction()}}}};
  s["Prediction"] = {{"type", "object"}, {"properties", {{"score", number()}, {"label", str()}}}};
  s["PredictResponse"] = {
      {"oneOf", json::array({array_of(ref("Prediction")), array_of(array_of(ref("Prediction")))})}};
  s["TokenizeRequest"] = {{"type", "object"},
                          {"required", json::array({"inputs"})},
                          {"properties",
                           {{"inputs", {{"oneOf", json::array({str(), array_of(str())})}}},
                            {"add_special_tokens", boolean(true)},
                            {"prompt_name", {{"type", "string"}, {"nullable", true}}}}}};
  s["SimpleToken"] = {{"type", "object"},
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
       {{"ids", {{"oneOf", json::array({array_of(integer(0)), array_of(array_of(integer(0)))})}}},
        {"skip_special_tokens", boolean(true)}}}};
  s["DecodeResponse"] = array_of(str());
  s["OpenAIEmbeddingsRequest"] = {
      {"type", "object"},
      {"required", json::array({"input"})},
      {"properties",
       {{"input", input_schema()},
        {"model", str()},
        {"user", str()},
        {"encoding_format",
         {{"type", "string"}, {"enum", json::array({"float", "base64"})}, {"default", "float"}}},
        {"dimensions", {{"type", "integer"}, {"minimum", 1}}}}}};
  s["OpenAIEmbeddingsResponse"] = {
      {"type", "object"},
      {"properties",
       {{"object", str()},
        {"model", str()},
        {"data", array_of({{"type", "object"},
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
        {"documents",
         array_of(
             {{"oneOf",
               json::array({str(), {{"type", "object"}, {"properties", {{"text", str()}}}}})}})},
        {"top_n", {{"type", "integer"}, {"minimum", 1}}},
        {"return_documents", boolean(false)},
        {"instruction", str()},
        {"model", str()}}}};
  s["OpenAIRerankResponse"] = {
      {"type", "object"},
      {"properties",
       {{"object", str()},
        {"model", str()},
        {"results",
         array_of({{"type", "object"},
                   {"properties",
                    {{"index", integer(0)},
                     {"relevance_score", number()},
                     {"document", {{"type", "object"}, {"properties", {{"text", str()}}}}}}}})},
        {"usage",
         {{"type", "object"},
          {"properties", {{"prompt_tokens", integer(0)}, {"total_tokens", integer(0)}}}}}}}};
  s["Info"] = {{"type", "object"},
               {"description", "Model, limits and radix settings (TEI's /info fields and more)"}};
  return s;
}

}  // namespace

json openapi_document() {
  json paths;
  paths["/embed"] = post("Embed texts or token ids", "EmbedRequest", ref("EmbedResponse"));
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
             "Embeddings, reranking and classification with intra-batch prefix dedup. With "
             "--api-key every route needs `Authorization: Bearer <key>`."}}},
          {"paths", paths},
          {"components",
           {{"schemas", schemas()},
            {"securitySchemes", {{"bearer", {{"type", "http"}, {"scheme", "bearer"}}}}}}}};
}

}  // namespace radix::server
