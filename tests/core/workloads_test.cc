#include "workloads.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "core/fold_plan.h"

namespace radix::bench {
namespace {

TEST(Workloads, SynHasTheDocumentedShapeAndCompression) {
  const Workload w = parse_workload("syn:B=32,P=2048,S=256");
  EXPECT_EQ(w.batch.num_sequences(), 32);
  EXPECT_EQ(w.batch.num_tokens(), 32 * (2048 + 256));
  const FoldPlan plan = build_fold_plan(w.batch.ids, w.batch.positions, w.batch.cu_seqlens);
  EXPECT_EQ(plan.num_unique, 2048 + 32 * 256);
  for (int32_t id : w.batch.ids) {
    ASSERT_GE(id, 100);
    ASSERT_LT(id, 150000);
  }
}

TEST(Workloads, RerankLikeSharesSystemPromptAndQueries) {
  const Workload w = parse_workload("rerank-like:G=40,D=10");
  EXPECT_EQ(w.batch.num_sequences(), 400);
  const FoldPlan plan = build_fold_plan(w.batch.ids, w.batch.positions, w.batch.cu_seqlens);
  EXPECT_LT(plan.compression_ratio(), 0.8);
  EXPECT_EQ(parse_workload("rerank-like:G=40,D=10").batch.ids, w.batch.ids) << "not deterministic";
  EXPECT_NE(parse_workload("rerank-like:G=40,D=10,seed=2").batch.ids, w.batch.ids);
}

TEST(Workloads, TokenIdsFitASmallVocabulary) {
  // Mistral's vocabulary: every id below it; a vocabulary above the range changes nothing.
  const Workload small = parse_workload("rerank-like:G=4,D=3", 32000);
  for (int32_t id : small.batch.ids) {
    ASSERT_GE(id, 100);
    ASSERT_LT(id, 32000);
  }
  const Workload base = parse_workload("rerank-like:G=4,D=3");
  EXPECT_EQ(small.batch.cu_seqlens, base.batch.cu_seqlens) << "lengths must not depend on vocab";
  EXPECT_EQ(parse_workload("rerank-like:G=4,D=3", 151669).batch.ids, base.batch.ids);
  EXPECT_EQ(parse_workload("syn:B=4,P=8,S=4", 256000).batch.ids,
            parse_workload("syn:B=4,P=8,S=4").batch.ids);
}

TEST(Workloads, WideAndErrors) {
  const Workload w = parse_workload("wide:B=16,L=64,P=16");
  EXPECT_EQ(w.batch.num_tokens(), 16 * 64);
  EXPECT_THROW(parse_workload("nope:B=1"), std::invalid_argument);
  EXPECT_THROW(parse_workload("syn:B=x"), std::invalid_argument);
  EXPECT_THROW(parse_workload("syn:B=0"), std::invalid_argument);
  EXPECT_THROW(parse_workload("syn:Q=3"), std::invalid_argument);
  EXPECT_THROW(parse_workload("wide:L=4,P=8"), std::invalid_argument);
}

}  // namespace
}  // namespace radix::bench
