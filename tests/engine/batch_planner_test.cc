#include "engine/batch_planner.h"

#include <gtest/gtest.h>

#include <numeric>
#include <random>
#include <vector>

namespace radix::engine {
namespace {

using Queue = std::vector<std::vector<int32_t>>;

TEST(BatchPlanner, EmptyQueueGivesEmptyBatch) {
  EXPECT_TRUE(plan_batch(Queue{}, {}).empty());
  EXPECT_TRUE(plan_batch(Queue{{}, {}}, {}).empty());
}

TEST(BatchPlanner, TakesWholeRequestsThatFit) {
  const Queue q = {{10, 20}, {5}, {30, 1, 1}};
  const auto slices = plan_batch(q, {.max_batch_tokens = 100, .max_batch_requests = 0});
  ASSERT_EQ(slices.size(), 3u);
  EXPECT_EQ(slices[0].request, 0u);
  EXPECT_EQ(slices[0].end, 2);
  EXPECT_EQ(slices[2].request, 2u);
  EXPECT_EQ(slices[2].begin, 0);
  EXPECT_EQ(slices[2].end, 3);
}

TEST(BatchPlanner, KeepsARequestTogetherWhenItFitsTheNextBatch) {
  // 60 + 50 > 100, but 50 fits an empty batch: it waits rather than being split.
  const Queue q = {{30, 30}, {25, 25}, {1}};
  const auto slices = plan_batch(q, {.max_batch_tokens = 100, .max_batch_requests = 0});
  ASSERT_EQ(slices.size(), 1u);
  EXPECT_EQ(slices[0].request, 0u);
  EXPECT_EQ(slices[0].end, 2);
}

TEST(BatchPlanner, SplitsARequestLargerThanAnyBatch) {
  const Queue q = {{40}, {30, 30, 30, 30}, {1}};
  const auto slices = plan_batch(q, {.max_batch_tokens = 100, .max_batch_requests = 0});
  ASSERT_EQ(slices.size(), 2u);
  EXPECT_EQ(slices[0].request, 0u);
  EXPECT_EQ(slices[1].request, 1u);
  EXPECT_EQ(slices[1].begin, 0);
  EXPECT_EQ(slices[1].end, 2);  // 40 + 30 + 30 = 100
}

TEST(BatchPlanner, RespectsTheSequenceLimit) {
  const Queue q = {{1, 1}, {1, 1}, {1}};
  auto slices = plan_batch(q, {.max_batch_tokens = 100, .max_batch_requests = 3});
  ASSERT_EQ(slices.size(), 1u);  // the second request would make 4 and fits an empty batch
  EXPECT_EQ(slices[0].end, 2);

  const Queue big = {{1, 1, 1, 1, 1}};
  slices = plan_batch(big, {.max_batch_tokens = 100, .max_batch_requests = 3});
  ASSERT_EQ(slices.size(), 1u);
  EXPECT_EQ(slices[0].end, 3);
}

TEST(BatchPlanner, ALoneOverlongSequenceStillRuns) {
  const Queue q = {{500, 10}, {10}};
  const auto slices = plan_batch(q, {.max_batch_tokens = 100, .max_batch_requests = 0});
  ASSERT_EQ(slices.size(), 1u);
  EXPECT_EQ(slices[0].end, 1);
}

// Drains random queues batch by batch and checks the invariants: every sequence is dispatched
// exactly once and in order; a batch over a limit holds a single sequence; a request that fits an
// empty batch is never split.
TEST(BatchPlanner, RandomQueuesDrainWithInvariants) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    const BatchLimits limits{.max_batch_tokens = std::uniform_int_distribution<int>(1, 200)(rng),
                             .max_batch_requests = std::uniform_int_distribution<int>(0, 6)(rng)};
    Queue q(std::uniform_int_distribution<int>(1, 12)(rng));
    for (auto& r : q) {
      r.resize(std::uniform_int_distribution<int>(1, 8)(rng));
      for (auto& len : r) len = std::uniform_int_distribution<int>(1, 80)(rng);
    }
    const Queue original = q;
    std::vector<int> dispatched(q.size(), 0);
    std::vector<int> batches_touching(q.size(), 0);
    int guard = 0;
    for (;;) {
      const auto slices = plan_batch(q, limits);
      if (slices.empty()) break;
      ASSERT_LT(++guard, 10000);
      int64_t tokens = 0;
      int64_t seqs = 0;
      for (const auto& s : slices) {
        ASSERT_EQ(s.begin, 0);
        ASSERT_GT(s.end, 0);
        ASSERT_LE(s.end, static_cast<int32_t>(q[s.request].size()));
        for (int32_t i = 0; i < s.end; ++i) tokens += q[s.request][i];
        seqs += s.end;
        dispatched[s.request] += s.end;
        batches_touching[s.request] += 1;
        q[s.request].erase(q[s.request].begin(), q[s.request].begin() + s.end);
      }
      const bool over = tokens > limits.max_batch_tokens ||
                        (limits.max_batch_requests > 0 && seqs > limits.max_batch_requests);
      if (over) {
        EXPECT_EQ(seqs, 1);
      }
      // FIFO: no slice may come from a request behind one that still has work left before it.
      for (size_t i = 0; i < slices.size(); ++i) {
        for (size_t r = 0; r < slices[i].request; ++r) ASSERT_TRUE(q[r].empty());
      }
    }
    for (size_t r = 0; r < q.size(); ++r) {
      ASSERT_EQ(dispatched[r], static_cast<int>(original[r].size()));
      const int64_t total = std::accumulate(original[r].begin(), original[r].end(), int64_t{0});
      const bool fits = total <= limits.max_batch_tokens &&
                        (limits.max_batch_requests == 0 ||
                         static_cast<int64_t>(original[r].size()) <= limits.max_batch_requests);
      if (fits) {
        EXPECT_EQ(batches_touching[r], 1) << "trial " << trial << " request " << r;
      }
    }
  }
}

}  // namespace
}  // namespace radix::engine
