// build_grouped_fold_plan: groups never share a row, each group folds as it would alone, one group
// is build_fold_plan itself, and the threshold and padding apply to the whole.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "core/fold_plan.h"
#include "core/ragged_batch.h"

namespace radix {
namespace {

RaggedBatch random_batch(std::mt19937& rng, int seqs) {
  std::uniform_int_distribution<int> len(1, 7), tok(1, 2);
  RaggedBatch b;
  for (int s = 0; s < seqs; ++s) {
    std::vector<int32_t> seq(len(rng));
    for (int32_t& t : seq) t = tok(rng);
    b.add_sequence(seq);
  }
  return b;
}

TEST(GroupedFoldPlan, GroupsNeverShareRowsAndStayInPreOrder) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 300; ++trial) {
    const RaggedBatch b = random_batch(rng, 1 + trial % 9);
    const int32_t n = b.num_sequences();
    std::vector<int32_t> starts{0};
    for (int32_t s = 1; s < n; ++s) {
      if (rng() % 3 == 0) starts.push_back(s);
    }
    starts.push_back(n);
    const FoldPlan plan = build_grouped_fold_plan(b.ids, b.positions, b.cu_seqlens, starts);
    ASSERT_TRUE(plan.folded);
    std::vector<int32_t> group_of_row(plan.num_rows, -1);
    int64_t unique = 0;
    for (size_t g = 0; g + 1 < starts.size(); ++g) {
      // Each group's rows are what that group folds to alone.
      RaggedBatch part;
      for (int32_t s = starts[g]; s < starts[g + 1]; ++s) {
        part.add_sequence(std::vector<int32_t>(b.ids.begin() + b.cu_seqlens[s],
                                               b.ids.begin() + b.cu_seqlens[s + 1]));
      }
      unique += build_fold_plan(part.ids, part.positions, part.cu_seqlens).num_unique;
      for (int32_t t = b.cu_seqlens[starts[g]]; t < b.cu_seqlens[starts[g + 1]]; ++t) {
        const int32_t r = plan.scatter[t];
        ASSERT_TRUE(group_of_row[r] == -1 || group_of_row[r] == static_cast<int32_t>(g));
        group_of_row[r] = static_cast<int32_t>(g);
        ASSERT_EQ(plan.ids[r], b.ids[t]);
        ASSERT_EQ(plan.positions[r], b.positions[t]);
      }
    }
    EXPECT_EQ(plan.num_unique, unique);
    for (int32_t r = 0; r < plan.num_rows; ++r) {
      ASSERT_GT(plan.subtree_end[r], r);
      ASSERT_LE(plan.subtree_end[r], plan.num_rows);
      if (plan.parent[r] >= 0) {
        ASSERT_LT(plan.parent[r], r);
        ASSERT_GE(plan.subtree_end[plan.parent[r]], plan.subtree_end[r]);
        ASSERT_EQ(group_of_row[plan.parent[r]], group_of_row[r]);
      }
    }
    for (int32_t s = 0; s < n; ++s)
      EXPECT_EQ(plan.last_rows[s], plan.scatter[b.cu_seqlens[s + 1] - 1]);
  }
}

TEST(GroupedFoldPlan, OneGroupIsTheFoldPlanAndTheThresholdAppliesToTheWhole) {
  std::mt19937 rng(5);
  const RaggedBatch b = random_batch(rng, 6);
  const std::vector<int32_t> one{0, 6};
  FoldOptions pad;
  pad.pad_to_multiple = 8;
  const FoldPlan grouped = build_grouped_fold_plan(b.ids, b.positions, b.cu_seqlens, one, pad);
  const FoldPlan plain = build_fold_plan(b.ids, b.positions, b.cu_seqlens, pad);
  EXPECT_EQ(grouped.ids, plain.ids);
  EXPECT_EQ(grouped.subtree_end, plain.subtree_end);
  EXPECT_EQ(grouped.scatter, plain.scatter);
  EXPECT_EQ(grouped.gather, plain.gather);
  EXPECT_EQ(grouped.num_rows % 8, 0);
  FoldOptions never;
  never.threshold = 0;
  const FoldPlan identity = build_grouped_fold_plan(b.ids, b.positions, b.cu_seqlens, one, never);
  EXPECT_FALSE(identity.folded);
  EXPECT_EQ(identity.num_rows, b.num_tokens());
  EXPECT_THROW(
      build_grouped_fold_plan(b.ids, b.positions, b.cu_seqlens, std::vector<int32_t>{0, 4}),
      std::invalid_argument);
}

}  // namespace
}  // namespace radix
