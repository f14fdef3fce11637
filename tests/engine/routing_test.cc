// Prefix-affine routing: with several workers, a request goes to the worker whose cache holds the
// longest prefix of it (ties: an idle worker, then the lowest index), and to an idle worker when
// that one is busy, so no worker idles while there is work.
#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>
#include <vector>

#include "common/call_gate.h"
#include "engine/engine.h"

namespace radix::engine {
namespace {

// "Caches" every sequence it runs: its cached prefix of a sequence is the longest common prefix
// with any of them. Records which sequences it ran; can be held at a gate.
class CachingRunner : public BatchRunner {
 public:
  std::vector<SequenceOutput> run(const RaggedBatch& batch, const FoldPlan&) override {
    gate.pass();
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<SequenceOutput> out;
    for (int32_t s = 0; s < batch.num_sequences(); ++s) {
      seen_.emplace_back(batch.ids.begin() + batch.cu_seqlens[s],
                         batch.ids.begin() + batch.cu_seqlens[s + 1]);
      out.push_back({static_cast<float>(seen_.back().size())});
    }
    ++batches_;
    return out;
  }
  std::string device() const override { return "fake"; }
  int32_t cached_prefix_length(const std::vector<int32_t>& sequence) const override {
    std::lock_guard<std::mutex> lock(mu_);
    size_t best = 0;
    for (const auto& s : seen_) {
      const auto [a, b] = std::mismatch(s.begin(), s.end(), sequence.begin(), sequence.end());
      best = std::max(best, static_cast<size_t>(a - s.begin()));
    }
    return static_cast<int32_t>(best);
  }
  int batches() const {
    std::lock_guard<std::mutex> lock(mu_);
    return batches_;
  }

  testing::CallGate gate;

 private:
  mutable std::mutex mu_;
  std::vector<std::vector<int32_t>> seen_;
  int batches_ = 0;
};

std::vector<int32_t> with_prefix(int32_t prefix_token, int32_t own) {
  std::vector<int32_t> s(32, prefix_token);
  s.push_back(own);
  return s;
}

struct Workers {
  std::vector<CachingRunner*> runners;
  std::unique_ptr<Engine> engine;
  explicit Workers(int n) {
    std::vector<std::unique_ptr<BatchRunner>> owned;
    for (int i = 0; i < n; ++i) {
      auto r = std::make_unique<CachingRunner>();
      runners.push_back(r.get());
      owned.push_back(std::move(r));
    }
    engine = std::make_unique<Engine>(std::move(owned), EngineOptions{});
  }
};

TEST(Routing, RequestsSharingAPrefixMeetOnOneWorker) {
  Workers w(3);
  // One request at a time (the stream workload): the first goes to worker 0 (all idle, nothing
  // cached), every later one with the same prefix follows it.
  for (int i = 0; i < 12; ++i) {
    w.engine->submit({with_prefix(5, 100 + i)}).get();
  }
  EXPECT_EQ(w.runners[0]->batches(), 12);
  EXPECT_EQ(w.runners[1]->batches() + w.runners[2]->batches(), 0);
  // A second prefix, cached nowhere: the tie goes to an idle worker that took fewer batches
  // (worker 1), so the families spread over the caches; then it stays there.
  for (int i = 0; i < 4; ++i) w.engine->submit({with_prefix(6, 200 + i)}).get();
  EXPECT_EQ(w.runners[0]->batches(), 12);
  EXPECT_EQ(w.runners[1]->batches(), 4);
  // A third goes to worker 2, and the first family still finds worker 0.
  for (int i = 0; i < 3; ++i) w.engine->submit({with_prefix(7, 300 + i)}).get();
  EXPECT_EQ(w.runners[2]->batches(), 3);
  w.engine->submit({with_prefix(5, 999)}).get();
  EXPECT_EQ(w.runners[0]->batches(), 13);
}

TEST(Routing, WorkerLoadsCountBatchesAndPrefixRoutedOnes) {
  Workers w(2);
  for (int i = 0; i < 5; ++i) w.engine->submit({with_prefix(5, 100 + i)}).get();
  w.engine->submit({with_prefix(6, 1)}).get();
  const std::vector<WorkerLoad> loads = w.engine->worker_loads();
  ASSERT_EQ(loads.size(), 2u);
  EXPECT_EQ(loads[0].batches, 5);
  // The first request of prefix 5 found nothing cached; the four later ones did.
  EXPECT_EQ(loads[0].prefix_routed_batches, 4);
  // Prefix 6 is cached nowhere: the worker with fewer batches takes it.
  EXPECT_EQ(loads[1].batches, 1);
  EXPECT_EQ(loads[1].prefix_routed_batches, 0);
  for (const WorkerLoad& l : loads) {
    EXPECT_FALSE(l.busy);
    EXPECT_EQ(l.running_sequences, 0);
  }
}

TEST(Routing, ABusyWorkerShowsItsRunningBatch) {
  Workers w(2);
  w.runners[0]->gate.close();
  auto held = w.engine->submit({with_prefix(5, 1), with_prefix(5, 2), with_prefix(5, 3)});
  w.runners[0]->gate.wait_held(1);
  std::vector<WorkerLoad> loads = w.engine->worker_loads();
  EXPECT_TRUE(loads[0].busy);
  EXPECT_EQ(loads[0].running_sequences, 3);
  EXPECT_FALSE(loads[1].busy);
  w.runners[0]->gate.open();
  held.get();
  loads = w.engine->worker_loads();
  EXPECT_FALSE(loads[0].busy);
  EXPECT_EQ(loads[0].running_sequences, 0);
}

TEST(Routing, ABusyPreferredWorkerHandsOverToAnIdleOne) {
  Workers w(2);
  w.engine->submit({with_prefix(5, 1)}).get();  // worker 0 caches prefix 5
  w.runners[0]->gate.close();
  auto held = w.engine->submit({with_prefix(5, 2)});
  w.runners[0]->gate.wait_held(1);
  // Worker 0 is busy: the next request with its prefix runs on worker 1 rather than wait.
  auto other = w.engine->submit({with_prefix(5, 3)});
  EXPECT_EQ(other.get()[0][0], 33.0f);
  EXPECT_EQ(w.runners[1]->batches(), 1);
  w.runners[0]->gate.open();
  EXPECT_EQ(held.get()[0][0], 33.0f);
  EXPECT_EQ(w.runners[0]->batches(), 2);
}

}  // namespace
}  // namespace radix::engine
