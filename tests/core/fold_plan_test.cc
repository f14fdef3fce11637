// The fold plan against a brute-force reference that names every flat token by its whole prefix.
#include "core/fold_plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/ragged_batch.h"

namespace radix {
namespace {

using Prefix = std::vector<std::pair<int32_t, int32_t>>;

// Reference: for each flat token, the index of its distinct (token, position) prefix and the
// first flat index where that prefix occurs.
struct Reference {
  std::vector<int32_t> group;  // per flat token
  std::vector<int32_t> first;  // per group
  int64_t num_unique = 0;
};

Reference reference(const RaggedBatch& b) {
  Reference ref;
  std::map<Prefix, int32_t> groups;
  for (int32_t s = 0; s < b.num_sequences(); ++s) {
    Prefix prefix;
    for (int32_t i = b.cu_seqlens[s]; i < b.cu_seqlens[s + 1]; ++i) {
      prefix.emplace_back(b.ids[i], b.positions[i]);
      auto [it, inserted] = groups.emplace(prefix, static_cast<int32_t>(groups.size()));
      if (inserted) ref.first.push_back(i);
      ref.group.push_back(it->second);
    }
  }
  ref.num_unique = static_cast<int64_t>(groups.size());
  return ref;
}

struct GenParams {
  int max_seqs = 24;
  int max_len = 40;
  int alphabet = 3;            // small, so unrelated sequences still collide
  bool odd_positions = false;  // positions not 0..len-1, to check they take part in the key
};

RaggedBatch random_batch(std::mt19937& rng, const GenParams& p) {
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const int num_stems = uni(1, 4);
  std::vector<std::vector<int32_t>> stems(num_stems);
  for (auto& stem : stems) {
    stem.resize(uni(0, p.max_len));
    for (auto& t : stem) t = uni(0, 1000);
  }
  RaggedBatch b;
  std::vector<std::vector<int32_t>> made;
  const int n = uni(1, p.max_seqs);
  for (int s = 0; s < n; ++s) {
    std::vector<int32_t> seq;
    if (!made.empty() && uni(0, 5) == 0) {
      seq = made[uni(0, static_cast<int>(made.size()) - 1)];  // exact duplicate
    } else {
      const auto& stem = stems[uni(0, num_stems - 1)];
      seq.assign(stem.begin(), stem.begin() + uni(0, static_cast<int>(stem.size())));
      const int tail = uni(seq.empty() ? 1 : 0, p.max_len / 2);
      for (int i = 0; i < tail; ++i) seq.push_back(uni(0, p.alphabet - 1));
    }
    made.push_back(seq);
    for (size_t i = 0; i < seq.size(); ++i) {
      b.ids.push_back(seq[i]);
      b.positions.push_back(p.odd_positions && uni(0, 7) == 0 ? uni(0, 3)
                                                              : static_cast<int32_t>(i));
    }
    b.cu_seqlens.push_back(static_cast<int32_t>(b.ids.size()));
  }
  return b;
}

bool is_ancestor_or_self(const FoldPlan& plan, int32_t k, int32_t q) {
  for (int32_t r = q; r >= 0; r = plan.parent[r]) {
    if (r == k) return true;
  }
  return false;
}

void check_plan(const RaggedBatch& b, const FoldPlan& plan, const FoldOptions& options) {
  const Reference ref = reference(b);
  const int32_t n = static_cast<int32_t>(b.num_tokens());
  ASSERT_EQ(plan.num_tokens, n);
  ASSERT_EQ(plan.num_unique, ref.num_unique);
  EXPECT_DOUBLE_EQ(plan.compression_ratio(), static_cast<double>(ref.num_unique) / n);
  const bool expect_folded =
      options.threshold >= 1.0 || plan.compression_ratio() < options.threshold;
  ASSERT_EQ(plan.folded, expect_folded);
  const int32_t rows = plan.folded ? static_cast<int32_t>(ref.num_unique) : n;
  const int32_t pad = options.pad_to_multiple;
  ASSERT_EQ(plan.num_rows % pad, 0);
  ASSERT_GE(plan.num_rows, rows);
  ASSERT_LT(plan.num_rows - rows, pad);
  for (const auto* v :
       {&plan.ids, &plan.positions, &plan.parent, &plan.subtree_end, &plan.gather}) {
    ASSERT_EQ(static_cast<int32_t>(v->size()), plan.num_rows);
  }
  ASSERT_EQ(static_cast<int32_t>(plan.scatter.size()), n);
  ASSERT_EQ(plan.num_sequences(), b.num_sequences());

  // Reconstruction, and rows are shared exactly when prefixes are (or never, unfolded).
  std::map<int32_t, int32_t> group_of_row;
  for (int32_t i = 0; i < n; ++i) {
    const int32_t row = plan.scatter[i];
    ASSERT_GE(row, 0);
    ASSERT_LT(row, rows) << "a flat token scatters to a padding row";
    EXPECT_EQ(plan.ids[row], b.ids[i]);
    EXPECT_EQ(plan.positions[row], b.positions[i]);
    if (plan.folded) {
      auto [it, inserted] = group_of_row.emplace(row, ref.group[i]);
      EXPECT_EQ(it->second, ref.group[i]) << "row " << row << " holds two different prefixes";
      EXPECT_EQ(plan.gather[row], ref.first[ref.group[i]]) << "gather is not the first occurrence";
    } else {
      EXPECT_EQ(row, i);
      EXPECT_EQ(plan.gather[row], i);
    }
  }
  if (plan.folded) {
    ASSERT_EQ(static_cast<int64_t>(group_of_row.size()), ref.num_unique) << "a prefix got two rows";
  }

  // Parents follow the sequences; rows are in pre-order with contiguous subtrees.
  for (int32_t s = 0; s < b.num_sequences(); ++s) {
    for (int32_t i = b.cu_seqlens[s]; i < b.cu_seqlens[s + 1]; ++i) {
      const int32_t expected_parent = i == b.cu_seqlens[s] ? -1 : plan.scatter[i - 1];
      EXPECT_EQ(plan.parent[plan.scatter[i]], expected_parent);
    }
    EXPECT_EQ(plan.last_rows[s], plan.scatter[b.cu_seqlens[s + 1] - 1]);
  }
  for (int32_t r = 0; r < rows; ++r) {
    EXPECT_LT(plan.parent[r], r);
    EXPECT_GT(plan.subtree_end[r], r);
    EXPECT_LE(plan.subtree_end[r], rows);
  }
  if (rows <= 400) {
    for (int32_t k = 0; k < rows; ++k) {
      for (int32_t q = 0; q < rows; ++q) {
        const bool visible = k <= q && q < plan.subtree_end[k];
        ASSERT_EQ(visible, is_ancestor_or_self(plan, k, q)) << "k=" << k << " q=" << q;
      }
    }
  }
  // Siblings appear in (token, position) order: the trie of lexicographically sorted sequences.
  if (plan.folded) {
    std::map<int32_t, int32_t> last_child;
    for (int32_t r = 0; r < rows; ++r) {
      auto it = last_child.find(plan.parent[r]);
      if (it != last_child.end()) {
        const int32_t prev = it->second;
        EXPECT_LT(std::make_pair(plan.ids[prev], plan.positions[prev]),
                  std::make_pair(plan.ids[r], plan.positions[r]));
      }
      last_child[plan.parent[r]] = r;
    }
  }
  // Padding rows are inert.
  for (int32_t r = rows; r < plan.num_rows; ++r) {
    EXPECT_EQ(plan.ids[r], 0);
    EXPECT_EQ(plan.positions[r], 0);
    EXPECT_EQ(plan.parent[r], -1);
    EXPECT_EQ(plan.subtree_end[r], r + 1);
    EXPECT_EQ(plan.gather[r], -1);
  }
}

TEST(FoldPlan, MatchesBruteForceOnRandomBatches) {
  std::mt19937 rng(12345);
  FoldPlan reused;  // exercises buffer reuse across batches of different sizes
  for (int iter = 0; iter < 3000; ++iter) {
    GenParams p;
    p.max_seqs = iter % 10 == 0 ? 1 : (iter % 7 == 0 ? 200 : 24);
    p.max_len = iter % 13 == 0 ? 300 : (iter % 5 == 0 ? 2 : 40);
    p.alphabet = 1 + iter % 4;
    p.odd_positions = iter % 3 == 0;
    const RaggedBatch b = random_batch(rng, p);
    FoldOptions options;
    options.pad_to_multiple = std::vector<int>{1, 1, 2, 8, 64}[iter % 5];
    options.threshold = std::vector<double>{1.0, 1.0, 0.0, 0.5, 0.9, 2.0}[iter % 6];
    SCOPED_TRACE("iteration " + std::to_string(iter));
    build_fold_plan(b.ids, b.positions, b.cu_seqlens, options, reused);
    check_plan(b, reused, options);
    if (HasFatalFailure() || HasNonfatalFailure()) return;
  }
}

TEST(FoldPlan, SharedPrefixFoldsToExpectedCount) {
  RaggedBatch b;
  b.add_sequence(std::vector<int32_t>{1, 2, 3, 4});
  b.add_sequence(std::vector<int32_t>{1, 2, 3, 5});
  b.add_sequence(std::vector<int32_t>{1, 2});
  b.add_sequence(std::vector<int32_t>{1, 2, 3, 4});
  b.add_sequence(std::vector<int32_t>{7});
  const FoldPlan plan = build_fold_plan(b.ids, b.positions, b.cu_seqlens);
  EXPECT_EQ(plan.num_unique, 6);  // 1,2,3,4 | 5 | 7
  EXPECT_TRUE(plan.folded);
  EXPECT_EQ(plan.last_rows[0], plan.last_rows[3]);
  EXPECT_EQ(plan.last_rows[2], plan.scatter[1]);
  // Pre-order of the sorted trie: 1 2 3 4 5 7.
  EXPECT_EQ(plan.ids, (std::vector<int32_t>{1, 2, 3, 4, 5, 7}));
  EXPECT_EQ(plan.subtree_end, (std::vector<int32_t>{5, 5, 5, 4, 5, 6}));
  check_plan(b, plan, FoldOptions{});
}

TEST(FoldPlan, PositionsTakePartInTheKey) {
  RaggedBatch b;
  b.ids = {5, 6, 5, 6};
  b.positions = {0, 1, 0, 2};
  b.cu_seqlens = {0, 2, 4};
  const FoldPlan plan = build_fold_plan(b.ids, b.positions, b.cu_seqlens);
  EXPECT_EQ(plan.num_unique, 3);
  EXPECT_NE(plan.scatter[1], plan.scatter[3]);
}

TEST(FoldPlan, EmptyBatchIsAnEmptyPlan) {
  const std::vector<int32_t> none;
  const std::vector<int32_t> cu = {0};
  const FoldPlan plan = build_fold_plan(none, none, cu, FoldOptions{.pad_to_multiple = 8});
  EXPECT_EQ(plan.num_rows, 0);
  EXPECT_EQ(plan.num_unique, 0);
  EXPECT_EQ(plan.num_sequences(), 0);
}

TEST(FoldPlan, ThresholdDecides) {
  RaggedBatch b;
  b.add_sequence(std::vector<int32_t>{1, 2, 3, 4});
  b.add_sequence(std::vector<int32_t>{1, 2, 3, 9});  // ratio 5/8
  auto folded = [&](double threshold) {
    return build_fold_plan(b.ids, b.positions, b.cu_seqlens, {.threshold = threshold}).folded;
  };
  EXPECT_TRUE(folded(1.0));
  EXPECT_TRUE(folded(0.7));
  EXPECT_FALSE(folded(0.625));  // strictly below is required
  EXPECT_FALSE(folded(0.0));
  RaggedBatch distinct;
  distinct.add_sequence(std::vector<int32_t>{1});
  distinct.add_sequence(std::vector<int32_t>{2});
  EXPECT_TRUE(
      build_fold_plan(distinct.ids, distinct.positions, distinct.cu_seqlens, {.threshold = 1.0})
          .folded)
      << "threshold 1.0 forces the compact form even at ratio 1";
}

void expect_invalid(const std::vector<int32_t>& ids, const std::vector<int32_t>& positions,
                    const std::vector<int32_t>& cu, const std::string& needle,
                    FoldOptions options = {}) {
  try {
    build_fold_plan(ids, positions, cu, options);
    FAIL() << "expected std::invalid_argument mentioning '" << needle << "'";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(FoldPlan, RejectsBadInput) {
  expect_invalid({1, 2}, {0, 1}, {1, 2}, "must start at 0");
  expect_invalid({1, 2}, {0, 1}, {}, "cu_seqlens is empty");
  expect_invalid({1, 2, 3}, {0, 1, 2}, {0, 2, 1, 3}, "decreases at index 2");
  expect_invalid({1, 2}, {0, 1}, {0, 1}, "ends at 1 but the batch has 2 tokens");
  expect_invalid({1, 2}, {0, 1}, {0, 3}, "ends at 3");
  expect_invalid({1, 2}, {0}, {0, 2}, "positions has 1");
  expect_invalid({1, 2}, {0, 1}, {0, 0, 2}, "sequence 0 is empty");
  expect_invalid({1, 2}, {0, 1}, {0, 2, 2}, "sequence 1 is empty");
  expect_invalid({1, -2}, {0, 1}, {0, 2}, "negative token id -2 at flat index 1");
  expect_invalid({1, 2}, {-1, 1}, {0, 2}, "negative position -1 at flat index 0");
  expect_invalid({1, 2}, {0, 1}, {0, 2}, "pad_to_multiple", {.pad_to_multiple = 0});
}

}  // namespace
}  // namespace radix
