// What DevicePrefixCache::run decides before the forward (docs/prefix_cache.md "When a batch uses
// the cache"): which rows it stores (every row of a batch of at most 4; in a larger one the rows
// its sequences share, once an earlier batch shared them too) and when a hit is too small a part
// of the batch to read (the batch then runs as it is, with its own plan and no hook). The forward
// here is a stand-in that records what it was given; exactness with a real forward is
// prefix_cache_forward_test.cc's.
#include <gtest/gtest.h>

#include <vector>

#include "backend/backend.h"
#include "cache/device_prefix_cache.h"
#include "core/fold_plan.h"

namespace radix::cache {
namespace {

struct Seen {
  const RaggedBatch* batch = nullptr;
  const FoldPlan* plan = nullptr;
  PrefixHook* hook = nullptr;
  int64_t tokens = 0;
  int64_t rows = 0;  // the forward's plan's rows
};

constexpr DevicePrefixCacheOptions kOptions{.budget_bytes = 1 << 20, .min_prefix_tokens = 4};

struct Fixture {
  explicit Fixture(DevicePrefixCacheOptions options = kOptions) : cache(*be, 2, 1, 4, options) {}
  std::unique_ptr<Backend> be = create_backend(BackendOptions{});
  DevicePrefixCache cache;
  Seen seen;

  std::vector<std::vector<float>> run(const RaggedBatch& batch) {
    const FoldPlan plan = build_fold_plan(batch.ids, batch.positions, batch.cu_seqlens);
    return cache.run(
        batch, FoldOptions{},
        [&](const RaggedBatch& rest, const FoldPlan& p, PrefixHook* hook) {
          seen = {&rest, &p, hook, rest.num_tokens(), p.num_rows};
          return std::vector<std::vector<float>>(rest.num_sequences(), std::vector<float>{1.0f});
        },
        &plan);
  }
};

std::vector<int32_t> seq(const std::vector<int32_t>& head, int32_t tail_first, int32_t tail_len) {
  std::vector<int32_t> s = head;
  for (int32_t i = 0; i < tail_len; ++i) s.push_back(tail_first + i);
  return s;
}

const std::vector<int32_t> kTemplate{11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
                                     21, 22, 23, 24, 25, 26, 27, 28, 29, 30};

// Six documents under one template: what they share is stored when a later batch shares it
// again, never their own tokens.
RaggedBatch documents(const std::vector<int32_t>& head, int32_t first_token, int32_t n = 6) {
  RaggedBatch batch;
  for (int32_t d = 0; d < n; ++d) batch.add_sequence(seq(head, first_token + 100 * d, 30));
  return batch;
}

TEST(PrefixCachePolicy, ManySequencesStoreWhatTheyShareOnItsSecondSighting) {
  Fixture f;
  f.run(documents(kTemplate, 1000));
  EXPECT_EQ(f.cache.index().stats().nodes, 0);  // seen once: not stored
  EXPECT_EQ(f.seen.hook, nullptr);              // so the forward ran as with the cache off
  f.run(documents(kTemplate, 2000));
  EXPECT_EQ(f.cache.index().stats().nodes, 20);  // the template, not the 180 own tokens
  EXPECT_NE(f.seen.hook, nullptr);               // it wrote the template's K/V
  f.run(documents(kTemplate, 3000));
  EXPECT_EQ(f.seen.tokens, 6 * 30);  // the template was read
  EXPECT_EQ(f.cache.counters().prefix_hits, 6);
  EXPECT_TRUE(f.cache.index().check_invariants());
}

TEST(PrefixCachePolicy, ManySequencesStoreWhatTheyShareOnSightWhenAsked) {
  DevicePrefixCacheOptions options = kOptions;
  options.shared_rows_seen_twice = false;
  Fixture f(options);
  f.run(documents(kTemplate, 1000));
  EXPECT_EQ(f.cache.index().stats().nodes, 20);
  EXPECT_NE(f.seen.hook, nullptr);
  EXPECT_TRUE(f.cache.index().check_invariants());
}

// Under a GPU's read bar (1/2 of a batch's rows), a template under long documents would never be
// read, so it is not stored either; under short ones it is.
TEST(PrefixCachePolicy, WhatABatchSharesIsStoredOnlyIfItWouldBeRead) {
  DevicePrefixCacheOptions options = kOptions;
  options.min_hit_fraction = 0.5;
  Fixture f(options);
  for (int32_t b = 0; b < 3; ++b) f.run(documents(kTemplate, 1000 * (b + 1)));  // 20 of 200 rows
  EXPECT_EQ(f.cache.index().stats().nodes, 0);
  EXPECT_EQ(f.seen.hook, nullptr);
  // 20 of 32 rows: stored on the second sighting by such a batch (the long ones did not count).
  RaggedBatch short_tails;
  for (int32_t d = 0; d < 6; ++d) short_tails.add_sequence(seq(kTemplate, 5000 + 100 * d, 2));
  f.run(short_tails);
  EXPECT_EQ(f.cache.index().stats().nodes, 0);
  f.run(short_tails);
  EXPECT_EQ(f.cache.index().stats().nodes, 20);
  EXPECT_TRUE(f.cache.index().check_invariants());
}

// A long shared prompt is stored whole on its second sighting: the filter must not lose keys of
// one path to each other (thousands of them land in it at once).
TEST(PrefixCachePolicy, ALongSharedPromptIsStoredWholeOnItsSecondSighting) {
  DevicePrefixCacheOptions options = kOptions;
  options.budget_bytes = int64_t{64} << 20;
  Fixture f(options);
  std::vector<int32_t> prompt(6000);
  for (int32_t i = 0; i < 6000; ++i) prompt[i] = 100 + i;
  f.run(documents(prompt, 100000));
  EXPECT_EQ(f.cache.index().stats().nodes, 0);
  f.run(documents(prompt, 200000));
  EXPECT_EQ(f.cache.index().stats().nodes, 6000);
  EXPECT_TRUE(f.cache.index().check_invariants());
}

// A reranker's traffic: each request a new query under a cached template. A query shared by its
// documents but never sent again is not stored; one paged over several requests is stored on its
// second request (keyed under the cached template) and read from its third.
TEST(PrefixCachePolicy, AQueryIsStoredOnlyWhenItComesBack) {
  Fixture f;
  f.run(documents(kTemplate, 1000));
  f.run(documents(kTemplate, 2000));
  ASSERT_EQ(f.cache.index().stats().nodes, 20);
  for (int32_t q = 0; q < 3; ++q) {
    f.run(documents(seq(kTemplate, 500 + 10 * q, 8), 3000 + 1000 * q));
    EXPECT_EQ(f.cache.index().stats().nodes, 20) << "query " << q;
    EXPECT_EQ(f.seen.rows, 8 + 6 * 30);  // the template was read, the query ran once
  }
  const std::vector<int32_t> query = seq(kTemplate, 510, 8);  // query 1 again
  f.run(documents(query, 7000));
  EXPECT_EQ(f.cache.index().stats().nodes, 28);
  f.run(documents(query, 8000));
  EXPECT_EQ(f.seen.rows, 6 * 30);
  EXPECT_TRUE(f.cache.index().check_invariants());
}

TEST(PrefixCachePolicy, ASmallBatchIsStoredWhole) {
  Fixture f;
  RaggedBatch batch;
  for (int32_t d = 0; d < 4; ++d) batch.add_sequence(seq(kTemplate, 1000 + 100 * d, 30));
  f.run(batch);
  EXPECT_EQ(f.cache.index().stats().nodes, 20 + 4 * 30);
  EXPECT_TRUE(f.cache.index().check_invariants());
}

TEST(PrefixCachePolicy, OneSequenceIsStoredWhole) {
  Fixture f;
  RaggedBatch one;
  one.add_sequence(seq(kTemplate, 500, 10));
  f.run(one);
  EXPECT_EQ(f.cache.index().stats().nodes, 30);
  // The next request continues it: the 30 cached tokens are read, 5 new ones run and are stored.
  RaggedBatch next;
  next.add_sequence(seq(seq(kTemplate, 500, 10), 900, 5));
  f.run(next);
  EXPECT_EQ(f.seen.tokens, 5);
  EXPECT_NE(f.seen.hook, nullptr);
  EXPECT_EQ(f.cache.counters().prefix_hits, 1);
  EXPECT_EQ(f.cache.index().stats().nodes, 35);
}

TEST(PrefixCachePolicy, ASmallHitRunsThePlainBatch) {
  Fixture f;
  RaggedBatch first;
  for (int32_t d = 0; d < 5; ++d) first.add_sequence(seq(kTemplate, 2000 + 100 * d, 3));
  f.run(first);
  f.run(first);  // its second sighting stores the template
  ASSERT_EQ(f.cache.index().stats().nodes, 20);
  // 20 cached rows of 20 + 6 * 200 unique: under 1/32, not worth a split plan and a second key
  // range. The batch runs as given, its own plan, no hook (nothing new is shared).
  RaggedBatch big;
  for (int32_t d = 0; d < 6; ++d) big.add_sequence(seq(kTemplate, 3000 + 1000 * d, 200));
  const FoldPlan* whole = nullptr;
  {
    const FoldPlan plan = build_fold_plan(big.ids, big.positions, big.cu_seqlens);
    f.cache.run(
        big, FoldOptions{},
        [&](const RaggedBatch& rest, const FoldPlan& p, PrefixHook* hook) {
          f.seen = {&rest, &p, hook, rest.num_tokens(), p.num_rows};
          return std::vector<std::vector<float>>(rest.num_sequences(), std::vector<float>{1.0f});
        },
        &plan);
    whole = &plan;
    EXPECT_EQ(f.seen.plan, whole);
  }
  EXPECT_EQ(f.seen.batch, &big);
  EXPECT_EQ(f.seen.hook, nullptr);
  EXPECT_EQ(f.cache.counters().prefix_hits, 0);
  EXPECT_EQ(f.cache.index().stats().nodes, 20);
  // The same template under short tails is most of the batch: read.
  RaggedBatch small;
  for (int32_t d = 0; d < 6; ++d) small.add_sequence(seq(kTemplate, 9000 + 100 * d, 2));
  f.run(small);
  EXPECT_EQ(f.seen.tokens, 12);
  EXPECT_NE(f.seen.hook, nullptr);
  EXPECT_EQ(f.cache.counters().prefix_hits, 6);
  EXPECT_TRUE(f.cache.index().check_invariants());
}

}  // namespace
}  // namespace radix::cache
