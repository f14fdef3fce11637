// RerankTemplate: the JSON form, its refusals, Qwen3-Reranker's built-in template, --rerank-
// template's file-or-inline value, and a model folder's radix_rerank_template.json.
#include "model/rerank_template.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "model/model_folder.h"
#include "model/prompts.h"

namespace radix {
namespace {

namespace fs = std::filesystem;

std::string joined(const RerankTemplate& t, std::string_view instruction, std::string_view query,
                   std::string_view document) {
  std::string out;
  for (size_t k = 0; k < t.segments().size(); ++k) out += t.fill(k, instruction, query, document);
  return out;
}

std::string error_of(std::string_view json) {
  try {
    parse_rerank_template(json, "T");
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(RerankTemplate, Qwen3TemplateIsTheWholePromptInThreePieces) {
  const RerankTemplate t = qwen3_rerank_template();
  ASSERT_EQ(t.segments().size(), 3u);
  EXPECT_TRUE(t.fixed(0));
  EXPECT_FALSE(t.fixed(1));
  EXPECT_TRUE(t.fixed(2));
  EXPECT_TRUE(t.takes_instruction());
  EXPECT_EQ(t.default_instruction(), kDefaultRerankInstruction);
  EXPECT_EQ(joined(t, "inst", "a query", "a document"),
            format_rerank_prompt("inst", "a query", "a document"));
  EXPECT_EQ(t.fill(0, "i", "q", "d"), kRerankPrefix);
  EXPECT_EQ(t.fill(2, "i", "q", "d"), kRerankSuffix);
}

TEST(RerankTemplate, ParsesSegmentsAndPlaceholders) {
  const RerankTemplate t = parse_rerank_template(
      R"({"segments": ["<bos>", "A: {query}", "\n", "B: {document}", "\n{instruction}"],
          "default_instruction": "Is B an answer to A?", "comment": "bge-style"})",
      "file.json");
  ASSERT_EQ(t.segments().size(), 5u);
  EXPECT_TRUE(t.fixed(0) && t.fixed(2));
  EXPECT_FALSE(t.fixed(1) || t.fixed(3) || t.fixed(4));
  EXPECT_EQ(t.origin(), "file.json");
  EXPECT_EQ(t.default_instruction(), "Is B an answer to A?");
  EXPECT_EQ(t.document_segment(), 3u);
  EXPECT_EQ(joined(t, "I", "q", "d"), "<bos>A: q\nB: d\nI");
  // Text from the request is never expanded, and braces that are no placeholder stay literal.
  EXPECT_EQ(t.fill(1, "I", "{document}", "d"), "A: {document}");
  const RerankTemplate braces =
      parse_rerank_template(R"({"segments": ["{ \"json\": 1 } {Q} {query} {document}"]})", "T");
  EXPECT_EQ(joined(braces, "", "q", "d"), "{ \"json\": 1 } {Q} q d");
  EXPECT_FALSE(braces.takes_instruction());
}

TEST(RerankTemplate, RefusesMalformedTemplates) {
  const std::pair<const char*, const char*> cases[] = {
      {"not json", "not valid JSON"},
      {R"(["A {query} {document}"])", "JSON object"},
      {R"({"segments": "A {query} {document}"})", "list of strings"},
      {R"({"segments": [1]})", "list of strings"},
      {R"({"segments": []})", "no segments"},
      {R"({"segments": ["", "{query}{document}"]})", "empty"},
      {R"({"segments": ["A: {query}"]})", "{document} must appear exactly once, found 0"},
      {R"({"segments": ["{query}{document}", "{document}"]})", "found 2"},
      {R"({"segments": ["{query} {doc}"]})", "unknown placeholder {doc}"},
      {R"({"segments": ["{instruction}{query}{document}"]})", "no \"default_instruction\""},
      {R"({"segments": ["{query}{document}"], "default_instruction": "x"})",
       "has no {instruction}"},
      {R"({"segments": ["{query}{document}"], "prefix": "x"})", "unknown key \"prefix\""},
  };
  for (const auto& [json, expected] : cases) {
    const std::string e = error_of(json);
    EXPECT_NE(e.find(expected), std::string::npos) << json << " -> " << e;
    EXPECT_EQ(e.rfind("T: ", 0), 0u) << e;  // names where the template came from
  }
}

TEST(RerankTemplate, FlagTakesAFileOrInlineJson) {
  const fs::path dir = fs::temp_directory_path() / ("radix_rt_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path file = dir / "t.json";
  std::ofstream(file) << R"({"segments": ["F {query} {document}"]})";
  EXPECT_EQ(load_rerank_template(file.string()).origin(), file.string());
  EXPECT_EQ(joined(load_rerank_template(file.string()), "", "q", "d"), "F q d");
  const RerankTemplate inline_json =
      load_rerank_template(R"(  {"segments": ["I {query} {document}"]})");
  EXPECT_EQ(inline_json.origin(), "--rerank-template");
  EXPECT_EQ(joined(inline_json, "", "q", "d"), "I q d");
  try {
    load_rerank_template((dir / "missing.json").string());
    FAIL() << "a missing file was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--rerank-template: cannot open"), std::string::npos);
  }
  std::ofstream(file) << R"({"segments": ["{query}"]})";
  try {
    load_rerank_template(file.string());
    FAIL() << "a template without {document} was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--rerank-template: " + file.string()), std::string::npos)
        << e.what();
  }
  fs::remove_all(dir);
}

TEST(RerankTemplate, ModelFolderFileIsReadAtLoad) {
  const fs::path dir =
      fs::temp_directory_path() / ("radix_rt_folder_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::copy_file(fs::path(RADIX_SOURCE_DIR) / "tests/fixtures/families/gemma/config.json",
                dir / "config.json", fs::copy_options::overwrite_existing);
  EXPECT_FALSE(read_model_folder(dir.string(), true).rerank_template.has_value());
  const fs::path file = dir / std::string(kRerankTemplateFile);
  std::ofstream(file)
      << R"({"segments": ["<bos>", "A: {query}", "\n", "B: {document}", "\nYes?"]})";
  const ModelInfo info = read_model_folder(dir.string(), true);
  ASSERT_TRUE(info.rerank_template.has_value());
  EXPECT_EQ(info.rerank_template->origin(), file.string());
  EXPECT_EQ(info.rerank_template->segments().size(), 5u);
  std::ofstream(file) << R"({"segments": ["A: {query}"]})";
  try {
    read_model_folder(dir.string(), true);
    FAIL() << "a broken template file was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(file.string()), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace radix
