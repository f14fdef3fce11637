// The host-side RoPE tables (src/model/rope.h) against transformers' formulas, evaluated here in
// double: default, linear, dynamic NTK and llama3. (The llama3 table is also checked against
// transformers' own inv_freq buffer in family_fixture_test.)
#include "model/rope.h"

#include <gtest/gtest.h>

#include <cmath>

namespace radix::testing {
namespace {

DecoderConfig config(RopeScaling::Type type, double factor) {
  DecoderConfig c;
  c.head_dim = 64;
  c.rope_theta = 10000;
  c.max_position_embeddings = 2048;
  c.rope_scaling.type = type;
  c.rope_scaling.factor = factor;
  return c;
}

double default_freq(double base, int i, int d) { return std::pow(base, -2.0 * i / d); }

TEST(Rope, DefaultAndLinearTables) {
  const auto plain = rope_inv_freq(config(RopeScaling::Type::kDefault, 1));
  const auto linear = rope_inv_freq(config(RopeScaling::Type::kLinear, 4));
  ASSERT_EQ(plain.size(), 32u);
  for (int i = 0; i < 32; ++i) {
    EXPECT_NEAR(plain[i], default_freq(10000, i, 64), 1e-6 * plain[i]);
    EXPECT_FLOAT_EQ(linear[i], plain[i] / 4.0f);  // one fp32 division, as transformers
  }
}

TEST(Rope, DynamicGrowsTheBaseOnlyPastTheOriginalLength) {
  const DecoderConfig c = config(RopeScaling::Type::kDynamic, 2);
  const auto within = rope_inv_freq(c, 1000);
  const auto plain = rope_inv_freq(config(RopeScaling::Type::kDefault, 1));
  for (int i = 0; i < 32; ++i) EXPECT_FLOAT_EQ(within[i], plain[i]);
  const auto longer = rope_inv_freq(c, 4095);  // 4096 positions, twice the original
  const double base = 10000 * std::pow(2.0 * 4096 / 2048 - 1, 64.0 / 62);
  for (int i = 0; i < 32; ++i) EXPECT_NEAR(longer[i], default_freq(base, i, 64), 1e-6);
  EXPECT_LT(longer[31], plain[31]);
}

TEST(Rope, Llama3KeepsHighFrequenciesAndDividesLowOnes) {
  DecoderConfig c = config(RopeScaling::Type::kLlama3, 8);
  c.rope_theta = 500000;
  c.rope_scaling.low_freq_factor = 1;
  c.rope_scaling.high_freq_factor = 4;
  c.rope_scaling.original_max_position_embeddings = 8192;
  const auto table = rope_inv_freq(c);
  DecoderConfig d = config(RopeScaling::Type::kDefault, 1);
  d.rope_theta = 500000;
  const auto base = rope_inv_freq(d);
  int kept = 0, divided = 0, blended = 0;
  for (int i = 0; i < 32; ++i) {
    const double wavelen = 2 * 3.14159265358979323846 / base[i];
    if (wavelen < 8192 / 4.0) {
      ++kept;
      EXPECT_EQ(table[i], base[i]);
    } else if (wavelen > 8192 / 1.0) {
      ++divided;
      EXPECT_FLOAT_EQ(table[i], base[i] / 8);
    } else {
      const double smooth = (8192 / wavelen - 1) / 3;
      EXPECT_NEAR(table[i], (1 - smooth) * base[i] / 8 + smooth * base[i], 1e-6 * base[i]);
      ++blended;
    }
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(divided, 0);
  EXPECT_GT(blended, 0);
}

}  // namespace
}  // namespace radix::testing
