// Loading tokenizer.json into a TokenizerImpl.
#include <memory>
#include <string>

#include "tokenizer/tokenizer_impl.h"

namespace radix::tokenizer_detail {
namespace {

const json& field_or_null(const json& doc, const char* key) {
  static const json null_value = nullptr;
  auto it = doc.find(key);
  return it == doc.end() ? null_value : *it;
}

Truncation parse_truncation(const json& j) {
  Truncation t;
  if (j.is_null()) return t;
  const int64_t max_length =
      json_int(json_require(j, "max_length", "truncation"), "truncation.max_length");
  if (max_length < 0) json_fail("truncation.max_length", "must not be negative");
  t.max_length = static_cast<size_t>(max_length);
  if (j.contains("direction")) {
    const std::string d = json_string(j["direction"], "truncation.direction");
    if (d == "Left") {
      t.side = TruncationSide::kLeft;
    } else if (d != "Right") {
      json_fail("truncation.direction", "expected \"Left\" or \"Right\", got \"" + d + "\"");
    }
  }
  if (j.contains("strategy") &&
      json_string(j["strategy"], "truncation.strategy") != "LongestFirst") {
    json_fail("truncation.strategy", "only LongestFirst is supported by radix");
  }
  if (j.contains("stride") && json_int(j["stride"], "truncation.stride") != 0) {
    json_fail("truncation.stride", "overflowing windows (stride > 0) are not supported by radix");
  }
  return t;
}

}  // namespace

std::shared_ptr<const TokenizerImpl> TokenizerImpl::from_json(const json& doc) {
  if (!doc.is_object()) {
    throw TokenizerError(std::string("tokenizer.json: expected a JSON object at the top, got ") +
                         doc.type_name());
  }
  if (!doc.contains("model")) throw TokenizerError("tokenizer.json: missing \"model\"");
  auto impl = std::make_shared<TokenizerImpl>();
  impl->normalizer = Normalizer::from_json(field_or_null(doc, "normalizer"));
  impl->pre_tokenizer = PreTokenizer::from_json(field_or_null(doc, "pre_tokenizer"));
  impl->model = BpeModel::from_json(doc["model"], impl->pre_tokenizer.byte_level());
  impl->added =
      AddedVocabulary::from_json(field_or_null(doc, "added_tokens"), impl->normalizer, impl->model);
  impl->post_processor = PostProcessor::from_json(field_or_null(doc, "post_processor"));
  impl->decoder = Decoder::from_json(field_or_null(doc, "decoder"));
  impl->default_truncation = parse_truncation(field_or_null(doc, "truncation"));
  return impl;
}

}  // namespace radix::tokenizer_detail
