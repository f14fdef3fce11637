// Corrupt or unsupported tokenizer files fail with a TokenizerError that says what is wrong.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tiny_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace radix {
namespace {

using nlohmann::json;

// The error message of loading `text`, or "" if it loaded.
std::string load_error(const std::string& text) {
  try {
    Tokenizer::from_json(text);
  } catch (const TokenizerError& e) {
    return e.what();
  }
  return "";
}

std::string load_error(const json& doc) { return load_error(doc.dump()); }

#define EXPECT_ERROR_MENTIONS(msg, needle)                                        \
  do {                                                                            \
    const std::string m = (msg);                                                  \
    EXPECT_NE(m.find(needle), std::string::npos) << "error was: \"" << m << "\""; \
  } while (0)

TEST(TokenizerErrors, TruncatedJson) {
  const std::string full = testing::tiny_tokenizer_json().dump();
  for (size_t cut : {size_t{0}, size_t{1}, full.size() / 3, full.size() / 2, full.size() - 1}) {
    EXPECT_ERROR_MENTIONS(load_error(full.substr(0, cut)), "not valid JSON");
  }
}

TEST(TokenizerErrors, NotAnObjectOrNoModel) {
  EXPECT_ERROR_MENTIONS(load_error(std::string("[1, 2]")), "expected a JSON object");
  json doc = testing::tiny_tokenizer_json();
  doc.erase("model");
  EXPECT_ERROR_MENTIONS(load_error(doc), "missing \"model\"");
  doc["model"] = nullptr;
  EXPECT_ERROR_MENTIONS(load_error(doc), "model");
}

TEST(TokenizerErrors, WrongTypes) {
  json doc = testing::tiny_tokenizer_json();
  doc["model"]["vocab"] = json::array({"a", "b"});
  EXPECT_ERROR_MENTIONS(load_error(doc), "model.vocab: expected an object");

  doc = testing::tiny_tokenizer_json();
  doc["model"]["vocab"]["a"] = "97";
  EXPECT_ERROR_MENTIONS(load_error(doc), "expected an integer");

  doc = testing::tiny_tokenizer_json();
  doc["model"]["merges"] = "a b";
  EXPECT_ERROR_MENTIONS(load_error(doc), "model.merges: expected an array");

  doc = testing::tiny_tokenizer_json();
  doc["model"]["merges"][1] = 7;
  EXPECT_ERROR_MENTIONS(load_error(doc), "model.merges[1]");

  doc = testing::tiny_tokenizer_json();
  doc["added_tokens"][0]["id"] = "300";
  EXPECT_ERROR_MENTIONS(load_error(doc), "added_tokens[0].id: expected an integer");

  doc = testing::tiny_tokenizer_json();
  doc["added_tokens"][1]["lstrip"] = "yes";
  EXPECT_ERROR_MENTIONS(load_error(doc), "added_tokens[1].lstrip: expected a boolean");

  doc = testing::tiny_tokenizer_json();
  doc["model"]["vocab"]["a"] = -4;
  EXPECT_ERROR_MENTIONS(load_error(doc), "out of range");

  doc = testing::tiny_tokenizer_json();
  doc["model"]["vocab"]["a"] = 2000000000;
  EXPECT_ERROR_MENTIONS(load_error(doc), "far beyond");
}

TEST(TokenizerErrors, MergesMustBeInTheVocabulary) {
  json doc = testing::tiny_tokenizer_json();
  doc["model"]["merges"].push_back("x y");
  EXPECT_ERROR_MENTIONS(load_error(doc), "\"xy\" is not in the vocabulary");
  doc = testing::tiny_tokenizer_json();
  doc["model"]["merges"].push_back("a b c");
  EXPECT_ERROR_MENTIONS(load_error(doc), "two tokens and one space");
  doc = testing::tiny_tokenizer_json();
  doc["model"]["merges"].push_back(json::array({"c", "d"}));  // pair form is accepted
  EXPECT_EQ(load_error(doc), "");
  doc["model"]["unk_token"] = "<nope>";
  EXPECT_ERROR_MENTIONS(load_error(doc), "unk_token: \"<nope>\" is not in the vocabulary");
}

TEST(TokenizerErrors, UnsupportedComponentsAreNamed) {
  struct Case {
    const char* field;
    json value;
    const char* needle;
  };
  const Case cases[] = {
      {"normalizer", {{"type", "Lowercase"}}, "normalizer type \"Lowercase\""},
      {"normalizer",
       {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}, {{"type", "Strip"}}}}},
       "normalizer type \"Strip\""},
      {"pre_tokenizer", {{"type", "Whitespace"}}, "pre-tokenizer type \"Whitespace\""},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "ByteLevel"}},
          {{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "Isolated"}}}}},
       "ByteLevel must come last"},
      {"pre_tokenizer",
       {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}},
       "does not compile"},
      {"pre_tokenizer",
       {{"type", "Split"}, {"pattern", {{"String", "x"}}}, {"behavior", "Sideways"}},
       "unknown split behavior \"Sideways\""},
      {"post_processor", {{"type", "Whatever"}}, "post-processor type \"Whatever\""},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", {{{"SpecialToken", {{"id", "[CLS]"}}}}}},
        {"pair", json::array()},
        {"special_tokens", json::object()}},
       "special token \"[CLS]\" is not listed"},
      {"decoder", {{"type", "WordPiece"}}, "decoder type \"WordPiece\""},
      {"decoder",
       {{"type", "Sequence"}, {"decoders", {{{"type", "ByteFallback"}}, {{"type", "CTC"}}}}},
       "decoder type \"CTC\""},
      {"decoder",
       {{"type", "Strip"}, {"content", "ab"}, {"start", 1}, {"stop", 0}},
       "decoder.content: expected exactly one character"},
      {"decoder", {{"type", "Strip"}, {"content", " "}, {"start", -1}, {"stop", 0}}, "negative"},
      {"decoder", {{"type", "Replace"}, {"content", " "}}, "missing field \"pattern\""},
      {"normalizer",
       {{"type", "Replace"}, {"pattern", {{"Regex", "(unclosed"}}}, {"content", ""}},
       "normalizer.pattern.Regex: pattern does not compile"},
      {"normalizer",
       {{"type", "Replace"}, {"pattern", "x"}, {"content", ""}},
       "expected {\"Regex\": ...} or {\"String\": ...}"},
      {"normalizer", {{"type", "Prepend"}}, "missing field \"prepend\""},
      {"pre_tokenizer",
       {{"type", "Metaspace"}, {"replacement", "__"}, {"prepend_scheme", "always"}},
       "replacement: expected exactly one character"},
      {"pre_tokenizer",
       {{"type", "Metaspace"}, {"replacement", "_"}, {"prepend_scheme", "sometimes"}},
       "expected \"always\", \"first\" or \"never\""},
      {"pre_tokenizer",
       {{"type", "Metaspace"}, {"replacement", "_"}, {"add_prefix_space", false}},
       "add_prefix_space: false contradicts prepend_scheme"},
      {"truncation", {{"max_length", 8}, {"stride", 2}}, "stride"},
  };
  for (const Case& c : cases) {
    json doc = testing::tiny_tokenizer_json();
    doc[c.field] = c.value;
    EXPECT_ERROR_MENTIONS(load_error(doc), c.needle);
  }
  json doc = testing::tiny_tokenizer_json();
  doc["model"]["type"] = "WordPiece";
  EXPECT_ERROR_MENTIONS(load_error(doc), "model type \"WordPiece\" is not supported");
  doc = testing::tiny_tokenizer_json();
  doc["model"]["dropout"] = 0.1;
  EXPECT_ERROR_MENTIONS(load_error(doc), "dropout");
  doc = testing::tiny_tokenizer_json();
  doc["model"]["continuing_subword_prefix"] = "##";
  EXPECT_ERROR_MENTIONS(load_error(doc), "continuing_subword_prefix");
}

TEST(TokenizerErrors, TruncationInTheFileIsTheDefault) {
  json doc = testing::tiny_tokenizer_json();
  doc["truncation"] = {
      {"max_length", 3}, {"direction", "Left"}, {"strategy", "LongestFirst"}, {"stride", 0}};
  const Tokenizer t = Tokenizer::from_json(doc.dump());
  EXPECT_EQ(t.encode("ab cd", true).ids, (std::vector<int32_t>{304, 260, 300}));
  // An explicit truncation overrides it.
  EXPECT_EQ(t.encode("ab cd", true, {4, TruncationSide::kRight}).ids,
            (std::vector<int32_t>{304, 256, ' ', 300}));
}

TEST(TokenizerErrors, Files) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("radix_tok_err_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto expect_file_error = [](auto load, const char* needle) {
    try {
      load();
      ADD_FAILURE() << "no error";
    } catch (const TokenizerError& e) {
      EXPECT_ERROR_MENTIONS(e.what(), needle);
    }
  };
  expect_file_error([&] { Tokenizer::from_file((dir / "none.json").string()); }, "cannot open");
  expect_file_error([&] { Tokenizer::from_directory((dir / "nope").string()); }, "not a directory");
  // A folder with neither tokenizer.json nor the vocab files names what is missing.
  expect_file_error([&] { Tokenizer::from_directory(dir.string()); }, "missing vocab.json");
  std::ofstream(dir / "vocab.json") << R"({"a": 0, "b": 1, "ab": 2})";
  expect_file_error([&] { Tokenizer::from_directory(dir.string()); }, "missing merges.txt");
  std::ofstream(dir / "merges.txt") << "#version: 0.2\na b\n";
  expect_file_error([&] { Tokenizer::from_directory(dir.string()); },
                    "missing tokenizer_config.json");
  std::ofstream(dir / "tokenizer_config.json") << R"({"tokenizer_class": "BertTokenizer"})";
  expect_file_error([&] { Tokenizer::from_directory(dir.string()); }, "BertTokenizer");
  std::ofstream(dir / "tokenizer_config.json") << R"({"tokenizer_class": "Qwen2Tokenizer"})";
  std::ofstream(dir / "merges.txt") << "#version: 0.2\na b c\n";
  expect_file_error([&] { Tokenizer::from_directory(dir.string()); }, "merges.txt line 2");
  std::ofstream(dir / "merges.txt") << "#version: 0.2\na b\n";
  const Tokenizer t = Tokenizer::from_directory(dir.string());
  EXPECT_EQ(t.encode("ab", false).ids, (std::vector<int32_t>{2}));
  // from_path: the folder as a folder, nothing at a path as its own error.
  EXPECT_EQ(Tokenizer::from_path(dir.string()).encode("ab", false).ids, (std::vector<int32_t>{2}));
  expect_file_error([&] { Tokenizer::from_path((dir / "nope").string()); },
                    "no such file or folder");
  std::ofstream(dir / "tokenizer.json") << "{\"model\": ";
  expect_file_error([&] { Tokenizer::from_directory(dir.string()); }, "tokenizer.json");
  // from_path on a file reads it as a tokenizer.json.
  expect_file_error([&] { Tokenizer::from_path((dir / "tokenizer.json").string()); },
                    "tokenizer.json");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace radix
