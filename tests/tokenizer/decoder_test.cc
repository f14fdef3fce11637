// Decoder chains on token strings, against what Hugging Face `tokenizers` 0.23 returned for the
// same decoders and tokens (each expectation was printed by `tokenizers.decoders.*.decode`).
#include "tokenizer/decoder.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace radix::tokenizer_detail {
namespace {

using Tokens = std::vector<std::string>;

std::string decode(const json& spec, Tokens tokens) {
  return Decoder::from_json(spec).decode(std::move(tokens));
}

json metaspace(const char* scheme) {
  return {{"type", "Metaspace"},
          {"replacement", "\xE2\x96\x81"},
          {"prepend_scheme", scheme},
          {"split", true}};
}

json sequence(std::vector<json> steps) { return {{"type", "Sequence"}, {"decoders", steps}}; }

const json kByteLevel = {{"type", "ByteLevel"}};
const json kByteFallback = {{"type", "ByteFallback"}};
const json kFuse = {{"type", "Fuse"}};

json strip(const char* c, int start, int stop) {
  return {{"type", "Strip"}, {"content", c}, {"start", start}, {"stop", stop}};
}

json replace_string(const char* pattern, const char* content) {
  return {{"type", "Replace"}, {"pattern", {{"String", pattern}}}, {"content", content}};
}

TEST(Decoder, MetaspaceDropsEveryReplacementOfTheFirstTokenUnlessNever) {
  EXPECT_EQ(decode(metaspace("always"), {"\xE2\x96\x81\xE2\x96\x81"
                                         "a",
                                         "\xE2\x96\x81"
                                         "b\xE2\x96\x81"}),
            "a b ");
  EXPECT_EQ(decode(metaspace("never"), {"\xE2\x96\x81\xE2\x96\x81"
                                        "a",
                                        "\xE2\x96\x81"
                                        "b\xE2\x96\x81"}),
            "  a b ");
  EXPECT_EQ(decode(metaspace("first"), {"a\xE2\x96\x81",
                                        "\xE2\x96\x81"
                                        "b"}),
            "a b");
}

TEST(Decoder, ByteFallbackJoinsByteRunsOrReplacesEachByte) {
  // E2 82 is not UTF-8: one U+FFFD per byte; e2 82 AC is "€" (hex in either case); "+A" parses
  // as 10 in the reference's number parser; malformed tokens stay as they are.
  EXPECT_EQ(decode(kByteFallback, {"<0xE2>", "<0x82>", "a", "<0xe2>", "<0x82>", "<0xAC>", "<0x+A>",
                                   "<0xZZ>", "<0x41"}),
            "\xEF\xBF\xBD\xEF\xBF\xBD"
            "a\xE2\x82\xAC\n<0xZZ><0x41");
}

TEST(Decoder, ByteLevelMakesOneStringForTheStepsAfterIt) {
  EXPECT_EQ(decode(sequence({kByteLevel, strip(" ", 1, 0)}), {"\xC4\xA0"
                                                              "a",
                                                              "\xC4\xA0"
                                                              "b"}),
            "a b");
  EXPECT_EQ(decode(sequence({kByteLevel, metaspace("always")}), {"\xE2\x96\x81"
                                                                 "a",
                                                                 "\xE2\x96\x81"
                                                                 "b"}),
            "ab");
  EXPECT_EQ(decode(sequence({kByteFallback, kByteLevel}), {"<0x41>",
                                                           "\xC4\xA0"
                                                           "b",
                                                           "\xC3\x83\xC2\xA9"}),
            "A b\xC3\xA9");
}

TEST(Decoder, LlamaChain) {
  const json llama =
      sequence({replace_string("\xE2\x96\x81", " "), kByteFallback, kFuse, strip(" ", 1, 0)});
  EXPECT_EQ(decode(llama, {"<s>", "\xE2\x96\x81", "\xE2\x96\x81hi", "<0xC3>", "<0xA9>"}),
            "<s>  hi\xC3\xA9");
  EXPECT_EQ(decode(llama, {"\xE2\x96\x81\xE2\x96\x81hi", "<0xC3>"}), " hi\xEF\xBF\xBD");
}

TEST(Decoder, StripReplaceFuse) {
  EXPECT_EQ(decode(sequence({strip("x", 2, 1), kFuse}), {"xxxaxx", "xa", "ax", "b"}), "xaxaab");
  const json regex = {{"type", "Replace"}, {"pattern", {{"Regex", "a+"}}}, {"content", "-"}};
  EXPECT_EQ(decode(regex, {"baaab", "a", ""}), "b-b-");
  EXPECT_EQ(decode(kFuse, {}), "");
  // Where the reference panics (start and stop crossing), radix stops.
  EXPECT_EQ(decode(strip(" ", 3, 3), {"  ", " a "}), "a");
}

TEST(Decoder, NoDecoderJoinsWithSpaces) {
  EXPECT_EQ(decode(nullptr, {"a", "b",
                             "\xE2\x96\x81"
                             "c"}),
            "a b \xE2\x96\x81"
            "c");
}

}  // namespace
}  // namespace radix::tokenizer_detail
