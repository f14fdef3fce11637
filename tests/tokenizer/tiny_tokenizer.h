// A hand-made byte-level BPE whose every encoding can be worked out on paper: token id = byte
// value for the 256 byte tokens, a handful of merges, added tokens with each option, and a
// "<s> $A <|endoftext|>" template.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace radix::testing {

// Byte-level spelling of one byte (GPT-2 alphabet), written out independently of src/.
inline std::string byte_char(int b) {
  const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
  int cp = b;
  if (!printable) {
    int n = 0;
    for (int k = 0; k < b; ++k) {
      const bool p = (k >= 0x21 && k <= 0x7E) || (k >= 0xA1 && k <= 0xAC) || k >= 0xAE;
      if (!p) ++n;
    }
    cp = 256 + n;
  }
  std::string s;
  if (cp < 0x80) {
    s.push_back(static_cast<char>(cp));
  } else {
    s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return s;
}

// Merges, by rank: "a b"->256 (ab), "b c"->257 (bc), "a a"->258 (aa), "Ġ a"->259 (Ġa),
// "c d"->260 (cd). Extra vocabulary entry "abcd" = 270 is reachable only with ignore_merges;
// "<fillerN>" fill the other ids below 300 and are never reached.
// Added: <|endoftext|> 300 (special), <mask> 301 (special, lstrip), [SEP] 302 (special, rstrip),
// cat 303 (not special, single_word, normalized), <s> 304 (special).
inline nlohmann::json tiny_tokenizer_json(bool ignore_merges = false) {
  using nlohmann::json;
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_char(b)] = b;
  vocab["ab"] = 256;
  vocab["bc"] = 257;
  vocab["aa"] = 258;
  vocab[byte_char(' ') + "a"] = 259;
  vocab["cd"] = 260;
  vocab["abcd"] = 270;
  // Unreachable fillers up to id 299: the reference numbers added tokens that are not in the
  // vocabulary from the vocabulary's size on, so it must hold 300 entries for them to be 300...
  for (int id = 261; id < 300; ++id) {
    if (id != 270) vocab["<filler" + std::to_string(id) + ">"] = id;
  }
  json merges = json::array({"a b", "b c", "a a", byte_char(' ') + " a", "c d"});
  auto added = [](int id, const char* content, bool special, bool lstrip, bool rstrip,
                  bool single_word, bool normalized) {
    return json{{"id", id},
                {"content", content},
                {"special", special},
                {"lstrip", lstrip},
                {"rstrip", rstrip},
                {"single_word", single_word},
                {"normalized", normalized}};
  };
  json doc;
  doc["version"] = "1.0";
  doc["truncation"] = nullptr;
  doc["padding"] = nullptr;
  doc["added_tokens"] = json::array({added(300, "<|endoftext|>", true, false, false, false, false),
                                     added(301, "<mask>", true, true, false, false, false),
                                     added(302, "[SEP]", true, false, true, false, false),
                                     added(303, "cat", false, false, false, true, true),
                                     added(304, "<s>", true, false, false, false, false)});
  doc["normalizer"] = {{"type", "NFC"}};
  doc["pre_tokenizer"] = {{"type", "ByteLevel"},
                          {"add_prefix_space", false},
                          {"trim_offsets", true},
                          {"use_regex", true}};
  auto special = [](const char* name) {
    return json{{"SpecialToken", {{"id", name}, {"type_id", 0}}}};
  };
  auto seq = [](const char* id) { return json{{"Sequence", {{"id", id}, {"type_id", 0}}}}; };
  doc["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", json::array({special("<s>"), seq("A"), special("<|endoftext|>")})},
      {"pair", json::array({special("<s>"), seq("A"), special("<|endoftext|>"), seq("B"),
                            special("<|endoftext|>")})},
      {"special_tokens",
       {{"<s>", {{"id", "<s>"}, {"ids", {304}}, {"tokens", {"<s>"}}}},
        {"<|endoftext|>",
         {{"id", "<|endoftext|>"}, {"ids", {300}}, {"tokens", {"<|endoftext|>"}}}}}}};
  doc["decoder"] = {{"type", "ByteLevel"},
                    {"add_prefix_space", true},
                    {"trim_offsets", true},
                    {"use_regex", true}};
  doc["model"] = {{"type", "BPE"},     {"dropout", nullptr},     {"unk_token", nullptr},
                  {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", ignore_merges},
                  {"vocab", vocab},    {"merges", merges}};
  return doc;
}

}  // namespace radix::testing
