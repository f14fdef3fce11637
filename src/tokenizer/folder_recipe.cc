#include "tokenizer/folder_recipe.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace radix::tokenizer_detail {
namespace {

namespace fs = std::filesystem;

// transformers' Qwen2 pre-tokenizer pattern.
constexpr const char* kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::string read_required(const fs::path& path) {
  if (!fs::exists(path)) {
    throw TokenizerError("missing " + path.filename().string() +
                         " (a model folder needs tokenizer.json, or vocab.json + merges.txt + "
                         "tokenizer_config.json)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw TokenizerError("cannot open " + path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json parse_file(const fs::path& path) {
  try {
    return json::parse(read_required(path));
  } catch (const json::parse_error& e) {
    throw TokenizerError(path.filename().string() + ": not valid JSON: " + e.what());
  }
}

// merges.txt: an optional "#version" first line, then one "left right" pair per line.
json parse_merges(const std::string& text) {
  json merges = json::array();
  std::istringstream in(text);
  std::string line;
  for (size_t line_no = 1; std::getline(in, line); ++line_no) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) continue;
    const size_t sp = line.find(' ');
    if (sp == std::string::npos || line.find(' ', sp + 1) != std::string::npos) {
      throw TokenizerError("merges.txt line " + std::to_string(line_no) +
                           ": expected \"left right\", got \"" + line + "\"");
    }
    merges.push_back(line);
  }
  return merges;
}

// A special-token entry of tokenizer_config.json: a string or {"content": ...}.
std::string token_content(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string()) {
    return j["content"].get<std::string>();
  }
  return {};
}

}  // namespace

json tokenizer_json_from_folder(const std::string& dir) {
  const fs::path root(dir);
  const json vocab = parse_file(root / "vocab.json");
  if (!vocab.is_object()) throw TokenizerError("vocab.json: expected an object of token -> id");
  const json merges = parse_merges(read_required(root / "merges.txt"));
  const json config = parse_file(root / "tokenizer_config.json");
  if (!config.is_object()) throw TokenizerError("tokenizer_config.json: expected an object");

  const std::string cls = config.value("tokenizer_class", std::string());
  const bool qwen2 = cls == "Qwen2Tokenizer" || cls == "Qwen2TokenizerFast";
  const bool gpt2 = cls == "GPT2Tokenizer" || cls == "GPT2TokenizerFast";
  if (!qwen2 && !gpt2) {
    throw TokenizerError("tokenizer_config.json: tokenizer_class \"" + cls +
                         "\" has no vocab.json + merges.txt recipe in radix (supported: "
                         "Qwen2Tokenizer, GPT2Tokenizer); provide a tokenizer.json");
  }
  const bool add_prefix_space =
      config.contains("add_prefix_space") && config["add_prefix_space"].is_boolean()
          ? config["add_prefix_space"].get<bool>()
          : false;

  json doc;
  doc["version"] = "1.0";
  doc["truncation"] = nullptr;
  doc["padding"] = nullptr;

  // Added tokens: added_tokens_decoder first, then named special tokens not listed there.
  json added = json::array();
  std::set<std::string> seen;
  int64_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (it.value().is_number_integer())
      max_id = std::max<int64_t>(max_id, it.value().get<int64_t>());
  }
  if (config.contains("added_tokens_decoder")) {
    const json& dec = config["added_tokens_decoder"];
    if (!dec.is_object())
      throw TokenizerError("tokenizer_config.json: added_tokens_decoder must be an object");
    std::vector<std::pair<int64_t, json>> entries;
    for (auto it = dec.begin(); it != dec.end(); ++it) {
      int64_t id;
      try {
        id = std::stoll(it.key());
      } catch (const std::exception&) {
        throw TokenizerError("tokenizer_config.json: added_tokens_decoder key \"" + it.key() +
                             "\" is not a token id");
      }
      const json& t = it.value();
      const std::string content = token_content(t);
      if (content.empty()) {
        throw TokenizerError("tokenizer_config.json: added_tokens_decoder[\"" + it.key() +
                             "\"] has no content");
      }
      const bool special = t.value("special", false);
      entries.emplace_back(id, json{{"id", id},
                                    {"content", content},
                                    {"single_word", t.value("single_word", false)},
                                    {"lstrip", t.value("lstrip", false)},
                                    {"rstrip", t.value("rstrip", false)},
                                    {"normalized", t.value("normalized", !special)},
                                    {"special", special}});
    }
    std::sort(entries.begin(), entries.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [id, t] : entries) {
      seen.insert(t["content"].get<std::string>());
      max_id = std::max(max_id, id);
      added.push_back(std::move(t));
    }
  }
  std::vector<std::string> named;
  for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token"}) {
    if (config.contains(key)) named.push_back(token_content(config[key]));
  }
  if (config.contains("additional_special_tokens") &&
      config["additional_special_tokens"].is_array()) {
    for (const json& t : config["additional_special_tokens"]) named.push_back(token_content(t));
  }
  for (const std::string& content : named) {
    if (content.empty() || seen.count(content)) continue;
    seen.insert(content);
    const int64_t id = vocab.contains(content) ? vocab[content].get<int64_t>() : ++max_id;
    added.push_back(json{{"id", id},
                         {"content", content},
                         {"single_word", false},
                         {"lstrip", false},
                         {"rstrip", false},
                         {"normalized", false},
                         {"special", true}});
  }
  doc["added_tokens"] = std::move(added);

  const json byte_level = {{"type", "ByteLevel"},
                           {"add_prefix_space", add_prefix_space},
                           {"trim_offsets", !qwen2},
                           {"use_regex", gpt2}};
  if (qwen2) {
    doc["normalizer"] = {{"type", "NFC"}};
    doc["pre_tokenizer"] = {
        {"type", "Sequence"},
        {"pretokenizers", json::array({json{{"type", "Split"},
                                            {"pattern", {{"Regex", kQwen2Pattern}}},
                                            {"behavior", "Isolated"},
                                            {"invert", false}},
                                       byte_level})}};
  } else {
    doc["normalizer"] = nullptr;
    doc["pre_tokenizer"] = byte_level;
  }

  // add_bos_token / add_eos_token become a template, as transformers does for them.
  const bool add_bos = config.value("add_bos_token", false);
  const bool add_eos = config.value("add_eos_token", false);
  std::string bos = config.contains("bos_token") ? token_content(config["bos_token"]) : "";
  std::string eos = config.contains("eos_token") ? token_content(config["eos_token"]) : "";
  if ((add_bos && !bos.empty()) || (add_eos && !eos.empty())) {
    json special = json::object();
    auto token_id = [&](const std::string& content) -> int64_t {
      for (const json& t : doc["added_tokens"]) {
        if (t["content"] == content) return t["id"].get<int64_t>();
      }
      if (vocab.contains(content)) return vocab[content].get<int64_t>();
      throw TokenizerError("tokenizer_config.json: \"" + content + "\" is not a known token");
    };
    json single = json::array(), pair = json::array();
    for (int seq = 0; seq < 2; ++seq) {
      json& target = seq == 0 ? single : pair;
      for (int part = 0; part < (seq == 0 ? 1 : 2); ++part) {
        const char* id = part == 0 ? "A" : "B";
        if (add_bos && !bos.empty()) {
          target.push_back({{"SpecialToken", {{"id", bos}, {"type_id", part}}}});
          special[bos] = {{"id", bos}, {"ids", {token_id(bos)}}, {"tokens", {bos}}};
        }
        target.push_back({{"Sequence", {{"id", id}, {"type_id", part}}}});
        if (add_eos && !eos.empty()) {
          target.push_back({{"SpecialToken", {{"id", eos}, {"type_id", part}}}});
          special[eos] = {{"id", eos}, {"ids", {token_id(eos)}}, {"tokens", {eos}}};
        }
      }
    }
    doc["post_processor"] = {{"type", "TemplateProcessing"},
                             {"single", single},
                             {"pair", pair},
                             {"special_tokens", special}};
  } else {
    doc["post_processor"] = {{"type", "ByteLevel"},
                             {"add_prefix_space", false},
                             {"trim_offsets", false},
                             {"use_regex", false}};
  }
  doc["decoder"] = {{"type", "ByteLevel"},
                    {"add_prefix_space", true},
                    {"trim_offsets", true},
                    {"use_regex", true}};
  doc["model"] = {{"type", "BPE"},
                  {"dropout", nullptr},
                  {"unk_token", nullptr},
                  {"continuing_subword_prefix", nullptr},
                  {"end_of_word_suffix", nullptr},
                  {"fuse_unk", false},
                  {"byte_fallback", false},
                  {"ignore_merges", false},
                  {"vocab", vocab},
                  {"merges", merges}};
  return doc;
}

}  // namespace radix::tokenizer_detail
