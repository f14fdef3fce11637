#include "model/flops.h"

#include <gtest/gtest.h>

#include "core/fold_plan.h"

namespace radix {
namespace {

TEST(Flops, CountsRowsAndVisiblePairsPerMode) {
  Qwen3Config c = decoder_preset("qwen3-0.6b");
  RaggedBatch batch;
  batch.add_sequence(std::vector<int32_t>{1, 2, 3});
  batch.add_sequence(std::vector<int32_t>{1, 2, 4});
  const FoldPlan plan = build_fold_plan(batch.ids, batch.positions, batch.cu_seqlens);
  const int64_t params = c.layer_matmul_params();
  // 1024 * (2048 + 2 * 1024) + 2048 * 1024 + 3 * 1024 * 3072
  EXPECT_EQ(params, 1024LL * 4096 + 2048LL * 1024 + 3LL * 1024 * 3072);

  const ForwardFlops off = count_forward_flops(c, batch, plan, AttentionMode::kOff);
  EXPECT_EQ(off.rows, 6);
  EXPECT_EQ(off.attention_pairs, 12);  // 1 + 2 + 3 per sequence
  EXPECT_DOUBLE_EQ(off.matmul, 2.0 * params * 28 * 6);
  EXPECT_DOUBLE_EQ(off.attention, 4.0 * 128 * 12 * 16 * 28);

  const ForwardFlops scatter = count_forward_flops(c, batch, plan, AttentionMode::kScatter);
  EXPECT_EQ(scatter.rows, 4);
  EXPECT_EQ(scatter.attention_pairs, 12);  // attention still runs on the tokens

  const ForwardFlops tree = count_forward_flops(c, batch, plan, AttentionMode::kTree);
  EXPECT_EQ(tree.rows, 4);
  EXPECT_EQ(tree.attention_pairs, 1 + 2 + 3 + 3);  // rows 1, 2, 3, 4 at depths 1, 2, 3, 3
  EXPECT_DOUBLE_EQ(tree.total(), 2.0 * params * 28 * 4 + 4.0 * 128 * 9 * 16 * 28);

  // The last layer's o_proj and MLP run on the 2 last rows, not on all 4 (or 6) rows.
  const double post_attention = 2048.0 * 1024 + 3.0 * 1024 * 3072;
  EXPECT_DOUBLE_EQ(tree.executed(), tree.total() - 2.0 * post_attention * (4 - 2));
  EXPECT_DOUBLE_EQ(off.executed(), off.total() - 2.0 * post_attention * (6 - 2));
}

}  // namespace
}  // namespace radix

namespace radix {
namespace {

TEST(Flops, SlidingWindowLayersCountOnlyTheKeysInTheirWindow) {
  DecoderConfig c = decoder_preset("gemma2-9b");  // window 4096 on the even layers
  c.sliding_window = 3;
  RaggedBatch batch;
  batch.add_sequence(std::vector<int32_t>{1, 2, 3, 4, 5});  // 15 causal pairs, 12 in a window 3
  const FoldPlan plan = build_fold_plan(batch.ids, batch.positions, batch.cu_seqlens);
  for (const AttentionMode mode : {AttentionMode::kOff, AttentionMode::kTree}) {
    const ForwardFlops f = count_forward_flops(c, batch, plan, mode);
    EXPECT_EQ(f.attention_pairs, 15);
    const double per_pair = 4.0 * c.head_dim * c.num_attention_heads;
    EXPECT_DOUBLE_EQ(f.attention, per_pair * (15 * 21 + 12 * 21));  // 21 full, 21 sliding
  }
}

}  // namespace
}  // namespace radix
