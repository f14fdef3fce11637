// Encodings of a hand-made tokenizer, worked out on paper (tiny_tokenizer.h lists its tokens).
#include "tiny_tokenizer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace radix {
namespace {

using Ids = std::vector<int32_t>;
using Offsets = std::vector<std::pair<size_t, size_t>>;

const Tokenizer& tiny() {
  static const Tokenizer t = Tokenizer::from_json(testing::tiny_tokenizer_json().dump());
  return t;
}

Ids ids(std::string_view text, bool special = false, Truncation t = {}) {
  return tiny().encode(text, special, t).ids;
}

TEST(TinyTokenizer, MergesApplyLowestRankFirst) {
  EXPECT_EQ(ids("abc"), (Ids{256, 'c'}));  // "a b" (rank 0) beats "b c" (rank 1)
  EXPECT_EQ(ids("bc"), (Ids{257}));
  EXPECT_EQ(ids(" ab"), (Ids{' ', 256}));  // "a b" first, then "Ġ ab" is no merge
  EXPECT_EQ(ids(" a"), (Ids{259}));
  EXPECT_EQ(ids("abcabc"), (Ids{256, 'c', 256, 'c'}));
  EXPECT_EQ(ids("abcd"), (Ids{256, 260}));
}

TEST(TinyTokenizer, EqualRanksMergeLeftmostFirst) {
  EXPECT_EQ(ids("aaa"), (Ids{258, 'a'}));
  EXPECT_EQ(ids("aaaa"), (Ids{258, 258}));
  EXPECT_EQ(ids("aaaaa"), (Ids{258, 258, 'a'}));
}

TEST(TinyTokenizer, IgnoreMergesTakesWholeWordsFromTheVocabulary) {
  const Tokenizer t = Tokenizer::from_json(testing::tiny_tokenizer_json(true).dump());
  EXPECT_EQ(t.encode("abcd", false).ids, (Ids{270}));
  EXPECT_EQ(t.encode("abc", false).ids, (Ids{256, 'c'}));
}

TEST(TinyTokenizer, EmptyInput) {
  EXPECT_TRUE(ids("").empty());
  EXPECT_TRUE(tiny().encode("", false).offsets.empty());
  EXPECT_EQ(ids("", true), (Ids{304, 300}));
  EXPECT_EQ(tiny().decode(Ids{}, false), "");
}

TEST(TinyTokenizer, WhitespaceRuns) {
  // GPT-2 split: "a", "  " (spaces not followed by a non-space), " b".
  EXPECT_EQ(ids("a   b"), (Ids{'a', ' ', ' ', ' ', 'b'}));
  EXPECT_EQ(ids("a\n\nb"), (Ids{'a', '\n', '\n', 'b'}));
  EXPECT_EQ(ids("   "), (Ids{' ', ' ', ' '}));
  EXPECT_EQ(ids("\t"), (Ids{'\t'}));
}

TEST(TinyTokenizer, AddedTokensInsideWordsAndAtEdges) {
  EXPECT_EQ(ids("ab<|endoftext|>cd"), (Ids{256, 300, 260}));
  EXPECT_EQ(ids("<|endoftext|>ab"), (Ids{300, 256}));
  EXPECT_EQ(ids("ab<|endoftext|>"), (Ids{256, 300}));
  EXPECT_EQ(ids("<|endoftext|><|endoftext|>"), (Ids{300, 300}));
  EXPECT_EQ(ids("<|endoftext|"), (Ids{'<', '|', 'e', 'n', 'd', 'o', 'f', 't', 'e', 'x', 't', '|'}));
  // Added tokens are not post-processor tokens: they stay without add_special_tokens.
  EXPECT_EQ(ids("ab<s>", true), (Ids{304, 256, 304, 300}));
}

TEST(TinyTokenizer, LstripAndRstrip) {
  // <mask> takes the spaces on its left; [SEP] the spaces on its right.
  EXPECT_EQ(ids("x <mask> y"), (Ids{'x', 301, ' ', 'y'}));
  EXPECT_EQ(ids("x   <mask>"), (Ids{'x', 301}));
  EXPECT_EQ(ids("x [SEP] y"), (Ids{'x', ' ', 302, 'y'}));
  EXPECT_EQ(ids("[SEP]\t\n y"), (Ids{302, 'y'}));
  const Encoding e = tiny().encode("x <mask>", false);
  EXPECT_EQ(e.offsets, (Offsets{{0, 1}, {1, 8}}));
}

TEST(TinyTokenizer, SingleWordTokensMatchOnlyWholeWords) {
  EXPECT_EQ(ids("a cat b"), (Ids{'a', ' ', 303, ' ', 'b'}));
  EXPECT_EQ(ids("cat"), (Ids{303}));
  EXPECT_EQ(ids("concat"), (Ids{'c', 'o', 'n', 'c', 'a', 't'}));
  EXPECT_EQ(ids("cats"), (Ids{'c', 'a', 't', 's'}));
  EXPECT_EQ(ids("(cat)"), (Ids{'(', 303, ')'}));
}

TEST(TinyTokenizer, OffsetsAreByteRangesOfTheInput) {
  EXPECT_EQ(tiny().encode("ab cd", false).offsets, (Offsets{{0, 2}, {2, 3}, {3, 5}}));
  EXPECT_EQ(tiny().encode("ab<|endoftext|>cd", true).offsets,
            (Offsets{{0, 0}, {0, 2}, {2, 15}, {15, 17}, {0, 0}}));
  // "e" + U+0301 composes to "é" (two bytes, two byte tokens); both map to the whole input.
  const Encoding e = tiny().encode("e\xCC\x81", false);
  EXPECT_EQ(e.ids, (Ids{0xC3, 0xA9}));
  EXPECT_EQ(e.offsets, (Offsets{{0, 3}, {0, 3}}));
}

TEST(TinyTokenizer, TruncationBothSidesKeepsTemplateTokens) {
  // "ab cd" -> ab, Ġ, cd.
  EXPECT_EQ(ids("ab cd", false, {2, TruncationSide::kRight}), (Ids{256, ' '}));
  EXPECT_EQ(ids("ab cd", false, {2, TruncationSide::kLeft}), (Ids{' ', 260}));
  EXPECT_EQ(ids("ab cd", true, {4, TruncationSide::kRight}), (Ids{304, 256, ' ', 300}));
  EXPECT_EQ(ids("ab cd", true, {4, TruncationSide::kLeft}), (Ids{304, ' ', 260, 300}));
  EXPECT_EQ(ids("ab cd", true, {2, TruncationSide::kRight}), (Ids{304, 300}));
  EXPECT_EQ(ids("ab cd", true, {100, TruncationSide::kRight}), (Ids{304, 256, ' ', 260, 300}));
  EXPECT_THROW(ids("ab cd", true, {1, TruncationSide::kRight}), TokenizerError);
  const Encoding e = tiny().encode("ab cd", false, {2, TruncationSide::kLeft});
  EXPECT_EQ(e.offsets, (Offsets{{2, 3}, {3, 5}}));
}

TEST(TinyTokenizer, PairTemplate) {
  EXPECT_EQ(tiny().encode_pair("ab", "cd", true).ids, (Ids{304, 256, 300, 260, 300}));
  EXPECT_EQ(tiny().encode_pair("ab", "cd", false).ids, (Ids{256, 260}));
  EXPECT_EQ(tiny().encode_pair("", "", true).ids, (Ids{304, 300, 300}));
  EXPECT_EQ(tiny().num_special_tokens_to_add(true), 3u);
  // Longest first: "ab cd" (3 tokens) vs "ab" (1); budget 5 - 3 = 2 -> one token each.
  EXPECT_EQ(tiny().encode_pair("ab cd", "ab", true, {5, TruncationSide::kRight}).ids,
            (Ids{304, 256, 300, 256, 300}));
  EXPECT_EQ(tiny().encode_pair("ab cd", "ab", true, {5, TruncationSide::kLeft}).ids,
            (Ids{304, 260, 300, 256, 300}));
  // Both longer than half of 3: one token for the first, two for the second.
  EXPECT_EQ(tiny().encode_pair("ab cd", "ab cd", false, {3, TruncationSide::kRight}).ids,
            (Ids{256, 256, ' '}));
}

TEST(TinyTokenizer, DecodeOfEncodeIsTheNfcText) {
  const std::string text =
      "e\xCC\x81"
      "cole caf\xC3\xA9  \n\t \xF0\x9F\x98\x80 <|endoftext|>x";
  const std::string nfc =
      "\xC3\xA9"
      "cole caf\xC3\xA9  \n\t \xF0\x9F\x98\x80 <|endoftext|>x";
  EXPECT_EQ(tiny().decode(tiny().encode(text, true).ids, false), "<s>" + nfc + "<|endoftext|>");
  EXPECT_EQ(tiny().decode(tiny().encode(text, true).ids, true),
            nfc.substr(0, nfc.size() - 14) + "x");
}

TEST(TinyTokenizer, DecodeRepairsSplitCharactersAndRejectsUnknownIds) {
  EXPECT_EQ(tiny().decode(Ids{0xC3}, false), "\xEF\xBF\xBD");
  EXPECT_EQ(tiny().decode(Ids{0xC3, 'a'}, false),
            "\xEF\xBF\xBD"
            "a");
  EXPECT_EQ(tiny().decode(Ids{0xE2, 0x82}, false), "\xEF\xBF\xBD");
  EXPECT_THROW(tiny().decode(Ids{999}, false), TokenizerError);
  EXPECT_THROW(tiny().decode(Ids{-1}, false), TokenizerError);
}

TEST(TinyTokenizer, InvalidUtf8SaysWhichByte) {
  try {
    tiny().encode(
        "ab\xFF"
        "cd",
        false);
    FAIL() << "no error";
  } catch (const TokenizerError& e) {
    EXPECT_NE(std::string(e.what()).find("at byte 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(tiny().encode("\xC3", false), TokenizerError);          // truncated
  EXPECT_THROW(tiny().encode("\xC0\x80", false), TokenizerError);      // overlong NUL
  EXPECT_THROW(tiny().encode("\xED\xA0\x80", false), TokenizerError);  // surrogate
  EXPECT_THROW(tiny().encode_pair("ok", "\xF5", false), TokenizerError);
  EXPECT_EQ(ids(std::string("a\0b", 3)), (Ids{'a', 0, 'b'}));
}

TEST(TinyTokenizer, VocabularyLookups) {
  EXPECT_EQ(tiny().vocab_size(), 300 + 5);  // 256 bytes, merges, "abcd", fillers; 5 added
  EXPECT_EQ(tiny().token_to_id("ab"), 256);
  EXPECT_EQ(tiny().token_to_id("<mask>"), 301);
  EXPECT_EQ(tiny().token_to_id("nope"), std::nullopt);
  EXPECT_EQ(tiny().id_to_token(303), "cat");
  EXPECT_EQ(tiny().id_to_token(5000), std::nullopt);
}

TEST(TinyTokenizer, BatchEqualsOneByOne) {
  std::vector<std::string> texts = {"", "abc", "x <mask> y", "a cat b", "aaaa", "\xF0\x9F\x98\x80"};
  for (int i = 0; i < 50; ++i) texts.push_back(std::string(i, 'a') + " cd " + std::to_string(i));
  for (int threads : {1, 2, 4}) {
    const auto batch = tiny().encode_batch(texts, true, {}, threads);
    ASSERT_EQ(batch.size(), texts.size());
    for (size_t i = 0; i < texts.size(); ++i) {
      EXPECT_EQ(batch[i].ids, tiny().encode(texts[i], true).ids);
      EXPECT_EQ(batch[i].offsets, tiny().encode(texts[i], true).offsets);
    }
  }
  std::vector<std::string> bad = {"ok", "bad\xFF"};
  EXPECT_THROW(tiny().encode_batch(bad, false, {}, 2), TokenizerError);
}

TEST(TinyTokenizer, ConcurrentBatchesShareThePool) {
  std::vector<std::string> texts;
  for (int i = 0; i < 300; ++i) texts.push_back("x <mask> " + std::to_string(i * 7919) + " abcd");
  std::vector<Ids> want;
  for (const auto& t : texts) want.push_back(tiny().encode(t, true).ids);
  std::vector<std::thread> callers;
  std::atomic<int> mismatches{0};
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&, c] {
      for (int round = 0; round < 20; ++round) {
        const auto batch = tiny().encode_batch(texts, true, {}, 1 + (c + round) % 4);
        for (size_t i = 0; i < texts.size(); ++i) mismatches += batch[i].ids != want[i];
      }
    });
  }
  for (auto& th : callers) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(TinyTokenizer, WordCacheOverflowKeepsResultsExact) {
  // 70,000 distinct words (" 0", " 1", ...) overflow the per-thread word cache more than once;
  // no merge applies to them, so the ids are the bytes of the text.
  std::string text;
  for (int i = 0; i < 70000; ++i) {
    text += ' ';
    text += std::to_string(i);
  }
  const Ids want(text.begin(), text.end());
  EXPECT_EQ(ids(text), want);
  EXPECT_EQ(ids(text), want);  // again, from whatever the cache kept
}

TEST(TinyTokenizer, LongRunsDoNotBreakTheRegex) {
  // A megabyte of one character class: one pre-token each, no stack exhaustion.
  EXPECT_EQ(ids(std::string(1 << 20, 'a')).size(), size_t{1} << 19);
  EXPECT_EQ(ids(std::string(1 << 20, ' ')).size(), size_t{1} << 20);
  EXPECT_EQ(ids(std::string(1 << 20, '!')).size(), size_t{1} << 20);
}

// The "demo" tokenizer other parts of radix build in memory: 256 byte tokens, no merges, one
// special token appended by a template.
TEST(TinyTokenizer, MinimalByteLevelTokenizerWithoutMerges) {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[testing::byte_char(b)] = b;
  const nlohmann::json doc = {
      {"added_tokens", {{{"id", 256}, {"content", "<|endoftext|>"}, {"special", true}}}},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", {{{"Sequence", {{"id", "A"}}}}, {{"SpecialToken", {{"id", "<|endoftext|>"}}}}}},
        {"pair", {{{"Sequence", {{"id", "A"}}}}, {{"Sequence", {{"id", "B"}}}}}},
        {"special_tokens", {{"<|endoftext|>", {{"id", "<|endoftext|>"}, {"ids", {256}}}}}}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}}}};
  const Tokenizer t = Tokenizer::from_json(doc.dump());
  EXPECT_EQ(t.encode("hi!", true).ids, (Ids{'h', 'i', '!', 256}));
  EXPECT_EQ(t.encode("hi!", false).ids, (Ids{'h', 'i', '!'}));
  EXPECT_EQ(t.decode(Ids{'h', 'i', 256}, true), "hi");
  EXPECT_EQ(t.vocab_size(), 257);
}

// A character-level BPE without ByteLevel: unknown characters go through byte_fallback,
// unk_token (fused or not), or vanish.
TEST(TinyTokenizer, UnknownCharactersByteFallbackAndUnk) {
  auto make = [](bool byte_fallback, const char* unk, bool fuse) {
    nlohmann::json model = {
        {"type", "BPE"},
        {"vocab", {{"a", 0}, {"b", 1}, {"<unk>", 2}, {"<0xC3>", 3}, {"<0xA9>", 4}}},
        {"merges", nlohmann::json::array()},
        {"byte_fallback", byte_fallback},
        {"fuse_unk", fuse}};
    model["unk_token"] = unk ? nlohmann::json(unk) : nlohmann::json(nullptr);
    return Tokenizer::from_json(nlohmann::json{{"model", model}}.dump());
  };
  EXPECT_EQ(make(true, "<unk>", false)
                .encode("a\xC3\xA9"
                        "b",
                        false)
                .ids,
            (Ids{0, 3, 4, 1}));
  EXPECT_EQ(make(true, "<unk>", false).encode("axyb", false).ids, (Ids{0, 2, 2, 1}));
  EXPECT_EQ(make(false, "<unk>", true).encode("axyb", false).ids, (Ids{0, 2, 1}));
  EXPECT_EQ(make(false, "<unk>", false).encode("axyb", false).ids, (Ids{0, 2, 2, 1}));
  EXPECT_EQ(make(false, nullptr, false).encode("axyb", false).ids, (Ids{0, 1}));
  // No decoder: tokens joined by spaces.
  EXPECT_EQ(make(false, nullptr, false).decode(Ids{0, 1, 2}, false), "a b <unk>");
}

}  // namespace
}  // namespace radix

namespace radix {
namespace {

Tokenizer with_post_processor(const nlohmann::json& post_processor) {
  nlohmann::json doc = testing::tiny_tokenizer_json();
  doc["post_processor"] = post_processor;
  return Tokenizer::from_json(doc.dump());
}

TEST(TinyTokenizer, OtherPostProcessors) {
  using nlohmann::json;
  // ByteLevel alone adds nothing.
  const Tokenizer byte_level = with_post_processor({{"type", "ByteLevel"}, {"trim_offsets", true}});
  EXPECT_EQ(byte_level.encode("ab", true).ids, (Ids{256}));
  EXPECT_EQ(byte_level.num_special_tokens_to_add(true), 0u);
  // Roberta: <s> A </s> </s> B </s>, with <s> = 304 and </s> = 300 here.
  const Tokenizer roberta = with_post_processor(
      {{"type", "RobertaProcessing"}, {"cls", {"<s>", 304}}, {"sep", {"</s>", 300}}});
  EXPECT_EQ(roberta.encode("ab", true).ids, (Ids{304, 256, 300}));
  EXPECT_EQ(roberta.encode_pair("ab", "cd", true).ids, (Ids{304, 256, 300, 300, 260, 300}));
  const Tokenizer bert = with_post_processor(
      {{"type", "BertProcessing"}, {"cls", {"[CLS]", 304}}, {"sep", {"[SEP]", 302}}});
  EXPECT_EQ(bert.encode_pair("ab", "cd", true).ids, (Ids{304, 256, 302, 260, 302}));
  // A Sequence with ByteLevel and a template behaves as the template.
  const json tmpl = testing::tiny_tokenizer_json()["post_processor"];
  const Tokenizer seq =
      with_post_processor({{"type", "Sequence"}, {"processors", {{{"type", "ByteLevel"}}, tmpl}}});
  EXPECT_EQ(seq.encode("ab", true).ids, (Ids{304, 256, 300}));
  EXPECT_THROW(with_post_processor({{"type", "Sequence"}, {"processors", {tmpl, tmpl}}}),
               TokenizerError);
}

TEST(TinyTokenizer, NormalizerSequenceAndNfkc) {
  nlohmann::json doc = testing::tiny_tokenizer_json();
  // U+FB01 (the "fi" ligature) is NFC-stable but NFKC turns it into "fi".
  EXPECT_EQ(ids("\xEF\xAC\x81"), (Ids{0xEF, 0xAC, 0x81}));
  doc["normalizer"] = {{"type", "Sequence"},
                       {"normalizers", {{{"type", "NFD"}}, {{"type", "NFKC"}}}}};
  const Tokenizer t = Tokenizer::from_json(doc.dump());
  EXPECT_EQ(t.encode("\xEF\xAC\x81", false).ids, (Ids{'f', 'i'}));
  doc["normalizer"] = nullptr;
  const Tokenizer none = Tokenizer::from_json(doc.dump());
  EXPECT_EQ(none.encode("e\xCC\x81", false).ids, (Ids{'e', 0xCC, 0x81}));
}

}  // namespace
}  // namespace radix
