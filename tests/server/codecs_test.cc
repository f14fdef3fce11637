#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "server/base64.h"
#include "server/json_floats.h"
#include "server/utf8.h"

namespace radix::server {
namespace {

TEST(Base64, Rfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
}

TEST(Base64, FloatsAreLittleEndianFloat32) {
  const std::vector<float> v = {1.0f, -2.0f};  // 0x3f800000, 0xc0000000
  EXPECT_EQ(base64_encode_floats(v),
            base64_encode(std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8)));
}

TEST(Utf8, AcceptsWellFormedText) {
  EXPECT_FALSE(find_invalid_utf8("").has_value());
  EXPECT_FALSE(find_invalid_utf8("plain ascii").has_value());
  EXPECT_FALSE(find_invalid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80").has_value());
  EXPECT_FALSE(find_invalid_utf8("\xf4\x8f\xbf\xbf").has_value());  // U+10FFFF
}

TEST(Utf8, RejectsMalformedText) {
  EXPECT_EQ(find_invalid_utf8("ab\xff"), 2u);
  EXPECT_EQ(find_invalid_utf8("\xc0\xaf"), 0u);          // overlong '/'
  EXPECT_EQ(find_invalid_utf8("\xe0\x80\xaf"), 0u);      // overlong
  EXPECT_EQ(find_invalid_utf8("x\xed\xa0\x80"), 1u);     // surrogate U+D800
  EXPECT_EQ(find_invalid_utf8("\xf4\x90\x80\x80"), 0u);  // above U+10FFFF
  EXPECT_EQ(find_invalid_utf8("abc\xe2\x82"), 3u);       // truncated
  EXPECT_EQ(find_invalid_utf8("\x80"), 0u);              // lone continuation
  EXPECT_EQ(find_invalid_utf8("\xe2\x28\xa1"), 0u);      // bad continuation
}

std::string json_float(float v) {
  std::string out;
  append_json_float(out, v);
  return out;
}

TEST(JsonFloats, ShortestFloat32FormsAndIntegralValuesStayFloats) {
  EXPECT_EQ(json_float(0.1f), "0.1");  // not 0.10000000149011612, the double nlohmann would hold
  EXPECT_EQ(json_float(-0.040314432f), "-0.040314432");
  EXPECT_EQ(json_float(1.0f), "1.0");
  EXPECT_EQ(json_float(-0.0f), "-0.0");
  EXPECT_EQ(json_float(120.0f), "120.0");
  EXPECT_EQ(json_float(1e-30f), "1e-30");
  EXPECT_EQ(json_float(std::numeric_limits<float>::max()), "3.4028235e+38");
  EXPECT_EQ(json_float(std::numeric_limits<float>::denorm_min()), "1e-45");
}

// Every value reads back as the same float32, bit for bit (strtof is exact; no arithmetic here).
TEST(JsonFloats, EveryValueReadsBackAsTheSameFloat) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 200000; ++i) {
    uint32_t b = bits(rng);
    float v;
    std::memcpy(&v, &b, sizeof(v));
    if (!std::isfinite(v)) continue;
    const std::string text = json_float(v);
    const float back = std::strtof(text.c_str(), nullptr);
    uint32_t back_bits;
    std::memcpy(&back_bits, &back, sizeof(back));
    ASSERT_EQ(back_bits, b) << text;
  }
}

// A score inside a JSON object: nlohmann prints the held double as the float's shortest form.
TEST(JsonFloats, NumbersForJsonObjectsPrintAsTheFloat) {
  EXPECT_EQ(nlohmann::json(json_number(0.1f)).dump(), "0.1");
  EXPECT_EQ(nlohmann::json(json_number(0.98123456f)).dump(), "0.98123455");
  EXPECT_EQ(static_cast<float>(json_number(0.98123456f)), 0.98123456f);
  EXPECT_EQ(nlohmann::json(json_number(1.0f)).dump(), "1.0");
}

TEST(JsonFloats, RowsAreJsonArraysOfArrays) {
  const std::vector<std::vector<float>> rows{{0.5f, -2.0f, 1e-7f}, {}, {3.0f}};
  const std::string text = json_float_rows(rows);
  EXPECT_EQ(text, "[[0.5,-2.0,1e-07],[],[3.0]]");
  const nlohmann::json parsed = nlohmann::json::parse(text);
  ASSERT_EQ(parsed.size(), 3u);
  EXPECT_EQ(parsed[0][1].get<double>(), -2.0);
  EXPECT_TRUE(parsed[2][0].is_number_float());
  EXPECT_EQ(json_float_rows(std::vector<std::vector<float>>{}), "[]");
  const std::vector<std::vector<std::vector<float>>> states{{{1.0f, 2.0f}, {0.25f}}, {}};
  EXPECT_EQ(json_float_rows(states), "[[[1.0,2.0],[0.25]],[]]");
}

}  // namespace
}  // namespace radix::server
