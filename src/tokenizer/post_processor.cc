#include "tokenizer/post_processor.h"

#include <string>

namespace radix::tokenizer_detail {
namespace {

// Template pieces: {"Sequence": {"id": "A"|"B", ...}} or {"SpecialToken": {"id": name, ...}}.
std::vector<PostProcessor::Item> parse_template(const json& list, const json& special_tokens,
                                                const std::string& where) {
  if (!list.is_array()) json_fail(where, std::string("expected an array, got ") + list.type_name());
  std::vector<PostProcessor::Item> items;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string at = where + "[" + std::to_string(i) + "]";
    const json& e = list[i];
    PostProcessor::Item item;
    if (e.is_object() && e.contains("Sequence")) {
      const std::string id = json_string_field(e["Sequence"], "id", at + ".Sequence");
      if (id != "A" && id != "B") json_fail(at + ".Sequence.id", "expected \"A\" or \"B\"");
      item.sequence = id == "A" ? 0 : 1;
    } else if (e.is_object() && e.contains("SpecialToken")) {
      const std::string name = json_string_field(e["SpecialToken"], "id", at + ".SpecialToken");
      if (!special_tokens.is_object() || !special_tokens.contains(name)) {
        json_fail(at, "special token \"" + name + "\" is not listed in special_tokens");
      }
      const json& ids = json_require(special_tokens[name], "ids", where + " special_tokens");
      if (!ids.is_array()) json_fail("special_tokens[\"" + name + "\"].ids", "expected an array");
      for (const json& id : ids) {
        item.ids.push_back(json_token_id(id, "special_tokens[\"" + name + "\"].ids"));
      }
    } else {
      json_fail(at, "expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
    }
    items.push_back(std::move(item));
  }
  return items;
}

// Bert/Roberta name a token as [content, id].
int32_t named_token(const json& j, const std::string& where) {
  if (!j.is_array() || j.size() != 2) json_fail(where, "expected [token, id]");
  json_string(j[0], where + "[0]");
  return json_token_id(j[1], where + "[1]");
}

}  // namespace

PostProcessor PostProcessor::from_json(const json& j) {
  PostProcessor p;
  if (!j.is_null()) p.add(j, "post_processor");
  return p;
}

void PostProcessor::add(const json& j, const std::string& where) {
  const std::string type = json_string_field(j, "type", where);
  auto set_template = [&](std::vector<Item> single, std::vector<Item> pair) {
    if (has_template_) {
      json_fail(where,
                "more than one post-processor adding tokens in a Sequence is not "
                "supported by radix");
    }
    has_template_ = true;
    single_ = std::move(single);
    pair_ = std::move(pair);
  };
  if (type == "ByteLevel") {
    // Only trims offsets; ids are unchanged and radix reports untrimmed byte offsets.
    return;
  }
  if (type == "Sequence") {
    const json& list = json_require(j, "processors", where);
    if (!list.is_array()) json_fail(where + ".processors", "expected an array");
    for (size_t i = 0; i < list.size(); ++i) {
      add(list[i], where + ".processors[" + std::to_string(i) + "]");
    }
    return;
  }
  if (type == "TemplateProcessing") {
    const json& special = j.contains("special_tokens") ? j["special_tokens"] : json::object();
    set_template(parse_template(json_require(j, "single", where), special, where + ".single"),
                 parse_template(json_require(j, "pair", where), special, where + ".pair"));
    return;
  }
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    const int32_t cls = named_token(json_require(j, "cls", where), where + ".cls");
    const int32_t sep = named_token(json_require(j, "sep", where), where + ".sep");
    std::vector<Item> single = {{-1, {cls}}, {0, {}}, {-1, {sep}}};
    std::vector<Item> pair = {{-1, {cls}}, {0, {}}, {-1, {sep}}};
    if (type == "RobertaProcessing") pair.push_back({-1, {sep}});
    pair.push_back({1, {}});
    pair.push_back({-1, {sep}});
    set_template(std::move(single), std::move(pair));
    return;
  }
  json_fail(where, "post-processor type \"" + type +
                       "\" is not supported by radix (supported: TemplateProcessing, ByteLevel, "
                       "BertProcessing, RobertaProcessing, Sequence)");
}

size_t PostProcessor::added_count(bool pair) const {
  if (!has_template_) return 0;
  size_t n = 0;
  for (const Item& it : items(pair)) n += it.ids.size();
  return n;
}

}  // namespace radix::tokenizer_detail
