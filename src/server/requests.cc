#include "server/requests.h"

#include <limits>
#include <nlohmann/json.hpp>

#include "server/api_error.h"
#include "server/utf8.h"

namespace radix::server {
namespace {

using nlohmann::json;

[[noreturn]] void invalid(const std::string& message) {
  throw ApiError(ErrorType::kValidation, message);
}
[[noreturn]] void empty(const std::string& message) { throw ApiError(ErrorType::kEmpty, message); }

json parse_object(std::string_view body) {
  if (auto bad = find_invalid_utf8(body)) {
    invalid("request body is not valid UTF-8: invalid byte at offset " + std::to_string(*bad));
  }
  json doc;
  try {
    doc = json::parse(body.begin(), body.end());
  } catch (const json::parse_error& e) {
    const std::string what = e.what();
    // An escaped lone surrogate is invalid Unicode text rather than broken JSON.
    if (what.find("surrogate") != std::string::npos) {
      invalid("request body is not valid Unicode: " + what);
    }
    throw ApiError(ErrorType::kValidation, 400, "request body is not valid JSON: " + what);
  } catch (const json::out_of_range& e) {
    // Well-formed but unrepresentable, e.g. 9e9909 (found by the fuzzer).
    invalid(std::string("request body has a number out of range: ") + e.what());
  } catch (const json::exception& e) {
    throw ApiError(ErrorType::kValidation, 400,
                   std::string("request body is not valid JSON: ") + e.what());
  }
  if (!doc.is_object()) invalid("request body must be a JSON object");
  return doc;
}

// The fields of a request body (a JSON object), with TEI-like messages; a null field counts as
// absent.
class Fields {
 public:
  explicit Fields(std::string_view body) : object_(parse_object(body)) {}
  explicit Fields(const json& object) : object_(object) {}

  const json* find(const char* name) const {
    auto it = object_.find(name);
    if (it == object_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  const json& require(const char* name) const {
    const json* v = find(name);
    if (!v) invalid(std::string("missing field `") + name + "`");
    return *v;
  }
  std::optional<bool> boolean(const char* name) const {
    const json* v = find(name);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) invalid(std::string("`") + name + "` must be a boolean");
    return v->get<bool>();
  }
  std::optional<std::string> string(const char* name) const {
    const json* v = find(name);
    if (!v) return std::nullopt;
    if (!v->is_string()) invalid(std::string("`") + name + "` must be a string");
    return v->get<std::string>();
  }
  std::string required_string(const char* name) const {
    require(name);
    return *string(name);
  }
  std::optional<int32_t> positive_int(const char* name) const {
    const json* v = find(name);
    if (!v) return std::nullopt;
    if (!v->is_number_integer()) invalid(std::string("`") + name + "` must be an integer");
    if (v->is_number_unsigned()) {
      const auto u = v->get<uint64_t>();
      if (u == 0 || u > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
        invalid(std::string("`") + name + "` must be between 1 and 2147483647");
      }
      return static_cast<int32_t>(u);
    }
    invalid(std::string("`") + name + "` must be between 1 and 2147483647");  // negative
  }
  TruncationDirection direction() const {
    const auto s = string("truncation_direction");
    if (!s || *s == "right" || *s == "Right") return TruncationDirection::kRight;
    if (*s == "left" || *s == "Left") return TruncationDirection::kLeft;
    invalid("`truncation_direction` must be \"left\" or \"right\", got \"" + *s + "\"");
  }
  // `truncate` and `truncation_direction`, of the requests that have both.
  template <typename Request>
  void truncation(Request& r) const {
    r.truncate = boolean("truncate");
    r.truncation_direction = direction();
  }

 private:
  const json object_;
};

void check_batch_size(size_t n, const RequestLimits& limits) {
  if (n > limits.max_client_batch_size) {
    invalid("batch size " + std::to_string(n) + " > maximum allowed batch size " +
            std::to_string(limits.max_client_batch_size));
  }
}

int32_t token_id(const json& v, const char* field) {
  if (!v.is_number_integer()) {
    invalid(std::string("`") + field + "` token ids must be integers");
  }
  if (v.is_number_unsigned() &&
      v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
    return static_cast<int32_t>(v.get<uint64_t>());
  }
  invalid(std::string("`") + field + "` token ids must be between 0 and 2147483647");
}

std::vector<int32_t> token_ids(const json& array, const char* field) {
  if (array.empty()) empty(std::string("`") + field + "` cannot be empty");
  std::vector<int32_t> ids;
  ids.reserve(array.size());
  for (const json& v : array) ids.push_back(token_id(v, field));
  return ids;
}

std::string nonempty_text(const json& v, const char* field) {
  if (!v.is_string()) invalid(std::string("`") + field + "` must contain strings");
  std::string s = v.get<std::string>();
  if (s.empty()) empty(std::string("`") + field + "` cannot contain an empty string");
  return s;
}

// string | [int] | [string | [int], ...]
std::vector<Input> parse_inputs(const json& v, const char* field, const RequestLimits& limits) {
  std::vector<Input> inputs;
  if (v.is_string()) {
    inputs.push_back({nonempty_text(v, field), {}, false});
    return inputs;
  }
  if (!v.is_array()) {
    invalid(std::string("`") + field +
            "` must be a string, a list of strings, a list of token ids or a list of lists of "
            "token ids");
  }
  if (v.empty()) empty(std::string("`") + field + "` cannot be empty");
  if (v.front().is_number()) {  // one sequence of token ids
    inputs.push_back({{}, token_ids(v, field), true});
    return inputs;
  }
  check_batch_size(v.size(), limits);
  inputs.reserve(v.size());
  for (const json& item : v) {
    if (item.is_string()) {
      inputs.push_back({nonempty_text(item, field), {}, false});
    } else if (item.is_array()) {
      inputs.push_back({{}, token_ids(item, field), true});
    } else {
      invalid(std::string("`") + field + "` items must be strings or lists of token ids");
    }
  }
  return inputs;
}

std::vector<std::string> string_list(const json& v, const char* field, const RequestLimits& limits,
                                     bool allow_empty_strings) {
  if (!v.is_array()) invalid(std::string("`") + field + "` must be a list of strings");
  if (v.empty()) empty(std::string("`") + field + "` cannot be empty");
  check_batch_size(v.size(), limits);
  std::vector<std::string> out;
  out.reserve(v.size());
  for (const json& item : v) {
    if (allow_empty_strings) {
      if (!item.is_string()) invalid(std::string("`") + field + "` must be a list of strings");
      out.push_back(item.get<std::string>());
    } else {
      out.push_back(nonempty_text(item, field));
    }
  }
  return out;
}

}  // namespace

EmbedRequest parse_embed_request(std::string_view body, const RequestLimits& limits) {
  const Fields f(body);
  EmbedRequest r;
  r.inputs = parse_inputs(f.require("inputs"), "inputs", limits);
  f.truncation(r);
  r.prompt_name = f.string("prompt_name");
  r.normalize = f.boolean("normalize").value_or(true);
  r.dimensions = f.positive_int("dimensions");
  return r;
}

OpenAIEmbeddingsRequest parse_openai_embeddings_request(std::string_view body,
                                                        const RequestLimits& limits) {
  const Fields f(body);
  OpenAIEmbeddingsRequest r;
  r.inputs = parse_inputs(f.require("input"), "input", limits);
  const std::string format = f.string("encoding_format").value_or("float");
  if (format == "float") {
    r.encoding_format = EncodingFormat::kFloat;
  } else if (format == "base64") {
    r.encoding_format = EncodingFormat::kBase64;
  } else {
    invalid("`encoding_format` must be \"float\" or \"base64\", got \"" + format + "\"");
  }
  r.dimensions = f.positive_int("dimensions");
  r.model = f.string("model").value_or("");
  f.string("user");  // accepted for compatibility; must be a string when given
  f.truncation(r);
  return r;
}

RerankRequest parse_rerank_request(std::string_view body, const RequestLimits& limits) {
  const Fields f(body);
  RerankRequest r;
  r.query = f.required_string("query");
  r.texts = string_list(f.require("texts"), "texts", limits, /*allow_empty_strings=*/true);
  f.truncation(r);
  r.raw_scores = f.boolean("raw_scores").value_or(false);
  r.return_text = f.boolean("return_text").value_or(false);
  r.instruction = f.string("instruction");
  return r;
}

OpenAIRerankRequest parse_openai_rerank_request(std::string_view body,
                                                const RequestLimits& limits) {
  const Fields f(body);
  OpenAIRerankRequest r;
  r.query = f.required_string("query");
  const json& docs = f.require("documents");
  if (!docs.is_array()) invalid("`documents` must be a list of strings or {\"text\": ...} objects");
  if (docs.empty()) empty("`documents` cannot be empty");
  check_batch_size(docs.size(), limits);
  r.documents.reserve(docs.size());
  for (const json& d : docs) {
    if (d.is_string()) {
      r.documents.push_back(d.get<std::string>());
    } else if (d.is_object() && d.contains("text") && d["text"].is_string()) {
      r.documents.push_back(d["text"].get<std::string>());
    } else {
      invalid("`documents` must be a list of strings or {\"text\": ...} objects");
    }
  }
  r.top_n = f.positive_int("top_n");
  r.return_documents = f.boolean("return_documents").value_or(false);
  r.instruction = f.string("instruction");
  r.model = f.string("model").value_or("");
  f.truncation(r);
  return r;
}

SimilarityRequest parse_similarity_request(std::string_view body, const RequestLimits& limits) {
  const Fields f(body);
  SimilarityRequest r;
  const json& inputs = f.require("inputs");
  if (!inputs.is_object()) {
    invalid("`inputs` must be an object {\"source_sentence\": ..., \"sentences\": [...]}");
  }
  const Fields in(inputs);
  r.source_sentence = nonempty_text(in.require("source_sentence"), "source_sentence");
  const json& sentences = in.require("sentences");
  if (sentences.is_array()) check_batch_size(sentences.size() + 1, limits);
  r.sentences = string_list(sentences, "sentences", limits, /*allow_empty_strings=*/false);
  f.truncation(r);
  r.prompt_name = f.string("prompt_name");
  return r;
}

PredictRequest parse_predict_request(std::string_view body, const RequestLimits& limits) {
  const Fields f(body);
  PredictRequest r;
  const json& v = f.require("inputs");
  const char* shape =
      "`inputs` must be a string, a pair of strings [string, string] or a batch of them "
      "[[string], [string, string], ...]";
  auto sequence = [&](const json& item) -> std::pair<std::string, std::optional<std::string>> {
    if (!item.is_array() || item.empty() || item.size() > 2) invalid(shape);
    std::pair<std::string, std::optional<std::string>> p{nonempty_text(item[0], "inputs"), {}};
    if (item.size() == 2) p.second = nonempty_text(item[1], "inputs");
    return p;
  };
  if (v.is_string()) {
    r.inputs.push_back({nonempty_text(v, "inputs"), std::nullopt});
  } else if (v.is_array()) {
    if (v.empty()) empty("`inputs` cannot be empty");
    if (v.front().is_string()) {  // one text or one pair
      r.inputs.push_back(sequence(v));
    } else {
      check_batch_size(v.size(), limits);
      r.batched = true;
      for (const json& item : v) r.inputs.push_back(sequence(item));
    }
  } else {
    invalid(shape);
  }
  f.truncation(r);
  r.raw_scores = f.boolean("raw_scores").value_or(false);
  return r;
}

TokenizeRequest parse_tokenize_request(std::string_view body, const RequestLimits& limits) {
  const Fields f(body);
  TokenizeRequest r;
  const json& v = f.require("inputs");
  if (v.is_string()) {
    r.inputs.push_back(nonempty_text(v, "inputs"));
  } else {
    r.inputs = string_list(v, "inputs", limits, /*allow_empty_strings=*/false);
  }
  r.add_special_tokens = f.boolean("add_special_tokens").value_or(true);
  r.prompt_name = f.string("prompt_name");
  return r;
}

DecodeRequest parse_decode_request(std::string_view body, const RequestLimits& limits) {
  const Fields f(body);
  DecodeRequest r;
  const json& v = f.require("ids");
  if (!v.is_array()) invalid("`ids` must be a list of token ids or a list of lists of token ids");
  if (v.empty()) empty("`ids` cannot be empty");
  if (v.front().is_array()) {
    check_batch_size(v.size(), limits);
    for (const json& item : v) {
      if (!item.is_array()) invalid("`ids` must not mix token ids and lists of token ids");
      r.ids.push_back(token_ids(item, "ids"));
    }
  } else {
    r.ids.push_back(token_ids(v, "ids"));
  }
  r.skip_special_tokens = f.boolean("skip_special_tokens").value_or(true);
  return r;
}

}  // namespace radix::server
