// The runtime builder: options in, a working core out; options out of range refused with a
// message naming the flag; the engine's fold options (padding, threshold) reach the forward.
#include "service/runtime.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>

namespace radix::service {
namespace {

RuntimeOptions demo_options() {
  RuntimeOptions o;
  o.model = "demo";
  o.threads = 2;
  o.max_batch_tokens = 4096;
  return o;
}

std::string error_of(const RuntimeOptions& o) {
  try {
    Runtime::build(o);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(Runtime, BuildsAWorkingCore) {
  RuntimeOptions o = demo_options();
  std::atomic<int> batches{0};
  o.on_batch = [&](const BatchReport& r) {
    EXPECT_EQ(r.sequences, 2);
    EXPECT_LE(r.rows, r.tokens);
    batches.fetch_add(1);
  };
  auto runtime = Runtime::build(o);
  EXPECT_EQ(runtime->info().dtype, "float32");
  EXPECT_EQ(runtime->num_workers(), 1u);
  EXPECT_EQ(runtime->service().summary().head, "embedding");
  EXPECT_EQ(runtime->service().summary().max_input_length, 4096);  // min(positions, batch)
  EmbedRequest r;
  r.inputs = {Input::of_text("shared prefix a"), Input::of_text("shared prefix b")};
  const EmbedResult out = runtime->service().embed(r);
  ASSERT_EQ(out.embeddings.size(), 2u);
  EXPECT_EQ(batches.load(), 1);
  runtime->shutdown();
  EXPECT_FALSE(runtime->service().accepting());
}

TEST(Runtime, RefusesOptionsOutOfRange) {
  RuntimeOptions o = demo_options();
  o.radix_threshold = 7;
  EXPECT_NE(error_of(o).find("--radix-threshold must be in [0, 1]"), std::string::npos);
  o = demo_options();
  o.max_batch_tokens = 0;
  EXPECT_NE(error_of(o).find("--max-batch-tokens must be at least 1"), std::string::npos);
  o = demo_options();
  o.dtype = "float16";
  EXPECT_NE(error_of(o).find("cpu backend runs float32"), std::string::npos) << error_of(o);
  o.dtype = "float8";
  EXPECT_NE(error_of(o).find("--dtype float8"), std::string::npos);
  o = demo_options();
  o.pooling = "max";
  EXPECT_NE(error_of(o).find("--pooling max"), std::string::npos);
  o = demo_options();
  o.service.max_input_length = 1 << 20;
  EXPECT_NE(error_of(o).find("--max-input-length"), std::string::npos);
  o = demo_options();
  o.model = "random:qwen3-0.6b";
  o.max_batch_tokens = 64;
  o.preallocate = false;
  EXPECT_NE(error_of(o).find("no tokenizer"), std::string::npos);
  o.tokenizer = "/nonexistent/tokenizer.json";
  EXPECT_NE(error_of(o).find("/nonexistent/tokenizer.json"), std::string::npos);
}

// The same inputs through engines that fold with and without padding, and never: the plan the
// engine builds is the one the forward runs, and every layout gives the same embeddings.
TEST(Runtime, FoldOptionsReachTheForward) {
  EmbedRequest r;
  r.inputs = {Input::of_text("a shared beginning, then one"),
              Input::of_text("a shared beginning, then two"), Input::of_text("something else")};
  std::vector<std::vector<float>> want;
  for (auto [threshold, pad] : {std::pair{1.0, 1}, std::pair{1.0, 16}, std::pair{0.0, 8}}) {
    RuntimeOptions o = demo_options();
    o.radix_threshold = threshold;
    o.pad_to_multiple = pad;
    BatchReport seen;
    o.on_batch = [&](const BatchReport& b) { seen = b; };
    auto runtime = Runtime::build(o);
    const EmbedResult out = runtime->service().embed(r);
    runtime->shutdown();
    EXPECT_EQ(seen.folded, threshold > 0);
    if (threshold > 0) EXPECT_LT(seen.rows, seen.tokens);
    if (want.empty()) {
      for (const auto& e : out.embeddings) want.push_back(e.values);
      continue;
    }
    // Other layouts put rows at other BLAS positions: equal to float rounding.
    for (size_t i = 0; i < want.size(); ++i) {
      for (size_t k = 0; k < want[i].size(); ++k) {
        EXPECT_NEAR(out.embeddings[i].values[k], want[i][k], 1e-5) << threshold << " " << pad;
      }
    }
  }
}

// --pooling mean overrides the folder's last-token pooling; the summary says which is used.
TEST(Runtime, PoolingOverride) {
  RuntimeOptions o = demo_options();
  o.pooling = "mean";
  auto mean = Runtime::build(o);
  EXPECT_EQ(mean->service().summary().pooling, "mean");
  o.pooling = "last_token";
  auto last = Runtime::build(o);
  EXPECT_EQ(last->service().summary().pooling, "lasttoken");
  EmbedRequest r;
  r.inputs = {Input::of_text("pooled differently")};
  const auto a = mean->service().embed(r).embeddings.at(0).values;
  const auto b = last->service().embed(r).embeddings.at(0).values;
  double diff = 0;
  for (size_t k = 0; k < a.size(); ++k) diff = std::max(diff, std::abs(double(a[k]) - b[k]));
  EXPECT_GT(diff, 1e-3);  // a mean over several tokens is not the last token's state
}

}  // namespace
}  // namespace radix::service
