// The prefix cache's index on its own: longest-prefix lookup, insertion, LRU leaf eviction (the
// cache stays closed under ancestors), pins, the byte budget with results, and hash collisions
// (a colliding key never gives a wrong hit: lookups verify tokens and positions).
#include "cache/prefix_cache.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <vector>

namespace radix::cache {
namespace {

std::vector<int32_t> iota_positions(size_t n) {
  std::vector<int32_t> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<int32_t>(i);
  return p;
}

// Inserts a whole sequence; returns its nodes (-1 from the first that did not fit).
std::vector<int32_t> insert_all(PrefixCache& c, const std::vector<int32_t>& ids) {
  std::vector<int32_t> nodes;
  int32_t at = PrefixCache::kRoot;
  for (size_t i = 0; i < ids.size(); ++i) {
    at = c.insert(at, ids[i], static_cast<int32_t>(i));
    nodes.push_back(at);
    if (at < 0) break;
  }
  return nodes;
}

int32_t match_len(PrefixCache& c, const std::vector<int32_t>& ids) {
  return static_cast<int32_t>(c.match(ids, iota_positions(ids.size())).size());
}

TEST(PrefixCache, LongestCachedPrefix) {
  PrefixCache c({.budget_bytes = 100, .node_bytes = 1});
  insert_all(c, {1, 2, 3, 4});
  insert_all(c, {1, 2, 5});
  EXPECT_EQ(match_len(c, {1, 2, 3, 4, 9}), 4);
  EXPECT_EQ(match_len(c, {1, 2, 5, 4}), 3);
  EXPECT_EQ(match_len(c, {1, 2, 6}), 2);
  EXPECT_EQ(match_len(c, {2, 2, 3}), 0);
  EXPECT_EQ(c.stats().nodes, 5);  // 1 2 3 4 and 5 under 2
  // The same token at another position is another node.
  const std::vector<int32_t> ids{1, 2}, shifted{1, 2};
  const std::vector<int32_t> pos{0, 1}, pos2{0, 2};
  EXPECT_EQ(c.match(ids, pos).size(), 2u);
  EXPECT_EQ(c.match(shifted, pos2).size(), 1u);
  EXPECT_EQ(c.cached_prefix_length(ids, pos), 2);
  // Keys are a hash chain: a path's key is found without the trie.
  const uint64_t k1 = path_hash(PrefixCache::kRootKey, 1, 0);
  EXPECT_TRUE(c.holds_key(path_hash(k1, 2, 1)));
  EXPECT_FALSE(c.holds_key(path_hash(k1, 7, 1)));
  EXPECT_TRUE(c.check_invariants());
}

TEST(PrefixCache, InsertIsIdempotentAndNeedsAParent) {
  PrefixCache c({.budget_bytes = 10, .node_bytes = 1});
  const int32_t a = c.insert(PrefixCache::kRoot, 4, 0);
  EXPECT_EQ(c.insert(PrefixCache::kRoot, 4, 0), a);
  EXPECT_EQ(c.stats().nodes, 1);
  EXPECT_THROW(c.insert(7, 1, 1), std::invalid_argument);
}

TEST(PrefixCache, EvictsLeastRecentlyUsedLeavesFirst) {
  // Room for 6 nodes.
  PrefixCache c({.budget_bytes = 6, .node_bytes = 1});
  insert_all(c, {1, 2, 3});  // A: the shared part 1 2, own 3
  insert_all(c, {1, 2, 4});  // B
  insert_all(c, {5, 6});     // C
  EXPECT_EQ(c.stats().nodes, 6);
  match_len(c, {1, 2, 3});  // A used last, C before it, B oldest
  match_len(c, {5, 6});
  match_len(c, {1, 2, 3});
  insert_all(c, {7});  // evicts B's leaf 4 only
  EXPECT_EQ(c.stats().evicted_nodes, 1);
  EXPECT_EQ(c.cached_prefix_length(std::vector<int32_t>{1, 2, 4}, iota_positions(3)), 2);
  EXPECT_EQ(c.cached_prefix_length(std::vector<int32_t>{5, 6}, iota_positions(2)), 2);
  insert_all(c, {8, 9});  // the next oldest: C, leaf first, then its root
  EXPECT_EQ(c.stats().evicted_nodes, 3);
  EXPECT_EQ(c.cached_prefix_length(std::vector<int32_t>{5, 6}, iota_positions(2)), 0);
  EXPECT_EQ(c.cached_prefix_length(std::vector<int32_t>{1, 2, 3}, iota_positions(3)), 3);
  EXPECT_TRUE(c.check_invariants());
}

TEST(PrefixCache, PinnedNodesStayAndAFullCacheRefuses) {
  PrefixCache c({.budget_bytes = 3, .node_bytes = 1});
  const std::vector<int32_t> a = insert_all(c, {1, 2, 3});
  c.pin(a[2]);  // pins the path: ancestors of a pinned leaf are not leaves
  EXPECT_EQ(c.insert(PrefixCache::kRoot, 9, 0), -1);
  EXPECT_EQ(c.stats().failed_inserts, 1);
  c.unpin(a[2]);
  EXPECT_GE(c.insert(PrefixCache::kRoot, 9, 0), 0);
  EXPECT_THROW(c.unpin(a[0]), std::logic_error);
  EXPECT_TRUE(c.check_invariants());
}

TEST(PrefixCache, BudgetCountsNodesAndResults) {
  PrefixCache c({.budget_bytes = 64, .node_bytes = 8});
  EXPECT_EQ(c.capacity(), 8);
  const std::vector<int32_t> a = insert_all(c, {1, 2});
  EXPECT_EQ(c.stats().bytes, 16);
  EXPECT_TRUE(c.set_result(a[1], {1.0f, 2.0f, 3.0f, 4.0f}));  // 16 bytes
  EXPECT_EQ(c.stats().bytes, 32);
  ASSERT_NE(c.result(a[1]), nullptr);
  EXPECT_EQ((*c.result(a[1]))[3], 4.0f);
  // A result larger than the budget does not fit, and leaves the node as it was.
  EXPECT_FALSE(c.set_result(a[1], std::vector<float>(100)));
  EXPECT_EQ(c.stats().bytes, 32);
  insert_all(c, {5, 6, 7, 8, 9});  // 5 more nodes: 72 > 64, the oldest leaf (with its result) goes
  EXPECT_LE(c.stats().bytes, 64);
  EXPECT_EQ(c.result(a[1]), nullptr);
  EXPECT_TRUE(c.check_invariants());
  PrefixCache off({.budget_bytes = 0, .node_bytes = 8});
  EXPECT_EQ(off.insert(PrefixCache::kRoot, 1, 0), -1);
}

uint64_t colliding_hash(uint64_t, int32_t, int32_t) { return 42; }

TEST(PrefixCache, CollidingHashesNeverGiveAWrongHit) {
  PrefixCache c({.budget_bytes = 100, .node_bytes = 1, .hash = colliding_hash});
  insert_all(c, {1, 2, 3});
  insert_all(c, {1, 4});
  EXPECT_EQ(match_len(c, {1, 2, 3}), 3);
  EXPECT_EQ(match_len(c, {1, 4, 3}), 2);
  EXPECT_EQ(match_len(c, {2, 2, 3}), 0);
  EXPECT_EQ(match_len(c, {1, 3}), 1);
  EXPECT_TRUE(c.check_invariants());
}

// Random operations against a model of what must be cached: whatever was evicted, every match
// returns a real prefix of a sequence inserted earlier, and the invariants hold throughout.
TEST(PrefixCache, RandomOperationsKeepInvariants) {
  std::mt19937 rng(7);
  for (const HashFn hash : {path_hash, colliding_hash}) {
    PrefixCache c({.budget_bytes = 40, .node_bytes = 1, .hash = hash});
    std::vector<std::vector<int32_t>> seen;
    std::uniform_int_distribution<int> tok(0, 2), len(1, 8), op(0, 3);
    for (int step = 0; step < 600; ++step) {
      std::vector<int32_t> s;
      if (!seen.empty() && op(rng) == 0) {
        s = seen[std::uniform_int_distribution<size_t>(0, seen.size() - 1)(rng)];
      } else {
        for (int i = len(rng); i > 0; --i) s.push_back(tok(rng));
      }
      const std::vector<int32_t> path = c.match(s, iota_positions(s.size()));
      for (size_t i = 0; i < path.size(); ++i) {
        ASSERT_EQ(c.token(path[i]), s[i]);
        ASSERT_EQ(c.position(path[i]), static_cast<int32_t>(i));
      }
      if (op(rng) != 0) {
        insert_all(c, s);
        seen.push_back(s);
        if (op(rng) == 0 && !path.empty() && c.alive(path.back()))
          c.set_result(path.back(), {1.0f, 2.0f});
      }
      ASSERT_TRUE(c.check_invariants()) << "step " << step;
    }
    EXPECT_GT(c.stats().evicted_nodes, 0);
  }
}

}  // namespace
}  // namespace radix::cache
