// SentencePiece-style tokenizers (Llama-2, newer Mistral, Gemma shapes) against what Hugging Face
// `tokenizers` gave for them: tests/fixtures/tokenizers/<shape>/{tokenizer.json,expected.json},
// written by tools/make_tokenizer_fixtures.py. Ids with and without special tokens, byte offsets,
// decodes with and without skip_special_tokens, pairs.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_assets.h"
#include "tokenizer/tokenizer.h"

namespace radix {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Ids = std::vector<int32_t>;

fs::path fixture_dir(const std::string& shape) {
  return fs::path(RADIX_SOURCE_DIR) / "tests" / "fixtures" / "tokenizers" / shape;
}

json expected(const std::string& shape) {
  return json::parse(testing::read_text_file(fixture_dir(shape) / "expected.json"));
}

class SentencePieceFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(SentencePieceFixture, EncodesAsTokenizersDoes) {
  const Tokenizer tok = Tokenizer::from_file((fixture_dir(GetParam()) / "tokenizer.json").string());
  const json exp = expected(GetParam());
  ASSERT_GT(exp["cases"].size(), 40u);
  for (const json& c : exp["cases"]) {
    const std::string text = c["text"];
    SCOPED_TRACE("text: \"" + text + "\"");
    EXPECT_EQ(tok.encode(text, false).ids, c["ids"].get<Ids>());
    const Encoding e = tok.encode(text, true);
    EXPECT_EQ(e.ids, c["ids_special"].get<Ids>());
    std::vector<std::pair<size_t, size_t>> offsets;
    for (const json& o : c["offsets_special"]) offsets.emplace_back(o[0], o[1]);
    EXPECT_EQ(e.offsets, offsets);
  }
}

TEST_P(SentencePieceFixture, DecodesAsTokenizersDoes) {
  const Tokenizer tok = Tokenizer::from_file((fixture_dir(GetParam()) / "tokenizer.json").string());
  const json want = expected(GetParam());
  for (const json& c : want["cases"]) {
    SCOPED_TRACE("text: \"" + c["text"].get<std::string>() + "\"");
    const Ids ids = c["ids_special"].get<Ids>();
    EXPECT_EQ(tok.decode(ids, false), c["decode"].get<std::string>());
    EXPECT_EQ(tok.decode(ids, true), c["decode_skip"].get<std::string>());
  }
}

TEST_P(SentencePieceFixture, PairsAsTokenizersDoes) {
  const Tokenizer tok = Tokenizer::from_file((fixture_dir(GetParam()) / "tokenizer.json").string());
  const json want = expected(GetParam());
  for (const json& p : want["pairs"]) {
    EXPECT_EQ(tok.encode_pair(p["a"].get<std::string>(), p["b"].get<std::string>(), true).ids,
              p["ids_special"].get<Ids>());
  }
}

TEST_P(SentencePieceFixture, BatchEqualsOneByOne) {
  const Tokenizer tok = Tokenizer::from_file((fixture_dir(GetParam()) / "tokenizer.json").string());
  std::vector<std::string> texts;
  const json want = expected(GetParam());
  for (const json& c : want["cases"]) texts.push_back(c["text"]);
  const auto batch = tok.encode_batch(texts, true, {}, 3);
  ASSERT_EQ(batch.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) EXPECT_EQ(batch[i].ids, tok.encode(texts[i], true).ids);
}

INSTANTIATE_TEST_SUITE_P(Shapes, SentencePieceFixture,
                         ::testing::Values("llama2", "mistral", "gemma"));

// Hand-checked facts about the shapes, independent of expected.json.
TEST(SentencePieceShapes, ByteFallbackSpellsUnknownCharactersInBytes) {
  const Tokenizer tok = Tokenizer::from_file((fixture_dir("llama2") / "tokenizer.json").string());
  // "€" (E2 82 AC) is not in the tiny vocabulary: three byte tokens, each reporting the whole
  // character, after the "▁" that Prepend put in front.
  const Encoding e = tok.encode("\xE2\x82\xAC", false);
  ASSERT_EQ(e.ids.size(), 4u);
  EXPECT_EQ(tok.id_to_token(e.ids[1]), "<0xE2>");
  EXPECT_EQ(tok.id_to_token(e.ids[2]), "<0x82>");
  EXPECT_EQ(tok.id_to_token(e.ids[3]), "<0xAC>");
  for (const auto& o : e.offsets) EXPECT_EQ(o, (std::pair<size_t, size_t>{0, 3}));
  EXPECT_EQ(tok.decode(e.ids, false), "\xE2\x82\xAC");
  // Byte tokens that do not form UTF-8 decode to one U+FFFD each.
  const Ids broken = {*tok.token_to_id("<0xE2>"), *tok.token_to_id("<0x82>")};
  EXPECT_EQ(tok.decode(broken, false), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(SentencePieceShapes, PrependSchemeFirstOnlyAtTheStartOfTheInput) {
  const Tokenizer tok = Tokenizer::from_file((fixture_dir("mistral") / "tokenizer.json").string());
  const auto hello = tok.encode("hello", false).ids;
  ASSERT_FALSE(hello.empty());
  EXPECT_EQ(tok.id_to_token(hello[0]).value().rfind("\xE2\x96\x81", 0), 0u);  // starts with ▁
  // After a special token the piece does not start the input: no ▁ in front.
  const auto after = tok.encode("[INST]hello", false).ids;
  ASSERT_GE(after.size(), 2u);
  EXPECT_EQ(tok.id_to_token(after[0]), "[INST]");
  EXPECT_NE(tok.id_to_token(after[1]).value().rfind("\xE2\x96\x81", 0), 0u);
}

TEST(SentencePieceShapes, LlamaDecodeStripsOneLeadingSpace) {
  const Tokenizer tok = Tokenizer::from_file((fixture_dir("llama2") / "tokenizer.json").string());
  EXPECT_EQ(tok.decode(tok.encode("hello world", false).ids, false), "hello world");
  EXPECT_EQ(tok.decode(tok.encode("  two", false).ids, false), "  two");
  EXPECT_EQ(tok.decode(tok.encode("hello", true).ids, false), "<s> hello");
  EXPECT_EQ(tok.decode(tok.encode("hello", true).ids, true), "hello");
}

}  // namespace
}  // namespace radix
