#include "engine/engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <numeric>
#include <random>
#include <set>
#include <thread>

#include "common/call_gate.h"

namespace radix::engine {
namespace {

using namespace std::chrono_literals;

// Output of a sequence: {sum of ids, length, last id}; a pure function of the sequence, so any
// mix-up in batching or fan-out shows.
SequenceOutput expected_output(const std::vector<int32_t>& seq) {
  return {static_cast<float>(std::accumulate(seq.begin(), seq.end(), 0)),
          static_cast<float>(seq.size()), static_cast<float>(seq.back())};
}

struct Recorded {
  int32_t sequences;
  int64_t tokens;
  std::vector<std::vector<int32_t>> seqs;
};

// Computes expected_output per sequence; records every batch; can be held at a gate, and can be
// told to fail batches that contain a given token id.
class FakeRunner : public BatchRunner {
 public:
  std::vector<SequenceOutput> run(const RaggedBatch& batch, const FoldPlan& plan) override {
    gate.pass();
    EXPECT_EQ(plan.num_tokens, batch.num_tokens());
    Recorded rec{batch.num_sequences(), batch.num_tokens(), {}};
    std::vector<SequenceOutput> out;
    for (int32_t s = 0; s < batch.num_sequences(); ++s) {
      std::vector<int32_t> seq(batch.ids.begin() + batch.cu_seqlens[s],
                               batch.ids.begin() + batch.cu_seqlens[s + 1]);
      for (int32_t id : seq) {
        if (id == fail_on) throw std::runtime_error("poisoned token");
      }
      out.push_back(expected_output(seq));
      rec.seqs.push_back(std::move(seq));
    }
    std::lock_guard<std::mutex> lock(mu);
    batches.push_back(std::move(rec));
    return out;
  }
  std::string device() const override { return "fake"; }
  RunTimings last_timings() const override { return {0.25, 0.5, 0.125, 0.0625}; }

  testing::CallGate gate;
  std::mutex mu;
  int32_t fail_on = -1;
  std::vector<Recorded> batches;
};

struct Fixture {
  explicit Fixture(EngineOptions options, int workers = 1) {
    std::vector<std::unique_ptr<BatchRunner>> runners;
    for (int i = 0; i < workers; ++i) {
      auto r = std::make_unique<FakeRunner>();
      fakes.push_back(r.get());
      runners.push_back(std::move(r));
    }
    engine = std::make_unique<Engine>(std::move(runners), options, [this](const BatchStats& s) {
      std::lock_guard<std::mutex> lock(mu);
      stats.push_back(s);
    });
  }
  // Declared before the engine so that they outlive its workers.
  std::mutex mu;
  std::vector<BatchStats> stats;
  std::vector<FakeRunner*> fakes;
  std::unique_ptr<Engine> engine;
};

EngineOptions limits(int64_t tokens, int32_t seqs) {
  EngineOptions o;
  o.limits.max_batch_tokens = tokens;
  o.limits.max_batch_requests = seqs;
  return o;
}

TEST(Engine, AnswersOneRequest) {
  Fixture f(limits(100, 0));
  const std::vector<std::vector<int32_t>> seqs = {{1, 2, 3}, {4}, {5, 6}};
  auto out = f.engine->submit(seqs).get();
  ASSERT_EQ(out.size(), 3u);
  for (size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(out[i], expected_output(seqs[i]));
}

// A batch's stats carry the fold plan's time and the runner's own phases, within the run.
TEST(Engine, BatchStatsCarryThePlanAndTheRunnersPhases) {
  Fixture f(limits(100, 0));
  f.engine->submit({{1, 2, 3}, {1, 2, 4}}).get();
  std::lock_guard<std::mutex> lock(f.mu);
  ASSERT_EQ(f.stats.size(), 1u);
  const BatchStats& s = f.stats[0];
  EXPECT_GE(s.plan_seconds, 0.0);
  EXPECT_LE(s.plan_seconds, s.run_seconds);
  EXPECT_EQ(s.timings.prepare_seconds, 0.25);
  EXPECT_EQ(s.timings.enqueue_seconds, 0.5);
  EXPECT_EQ(s.timings.wait_seconds, 0.125);
  EXPECT_EQ(s.timings.finish_seconds, 0.0625);
}

TEST(Engine, EmptyRequestAndEmptySequence) {
  Fixture f(limits(100, 0));
  EXPECT_TRUE(f.engine->submit({}).get().empty());
  EXPECT_THROW(f.engine->submit({{1}, {}}), std::invalid_argument);
}

TEST(Engine, SplitsALargeRequestAndKeepsItsOrder) {
  Fixture f(limits(10, 0));
  std::vector<std::vector<int32_t>> seqs;
  for (int i = 0; i < 9; ++i) seqs.push_back({i + 1, i + 2, i + 3, i + 4});  // 36 tokens
  auto out = f.engine->submit(seqs).get();
  ASSERT_EQ(out.size(), seqs.size());
  for (size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(out[i], expected_output(seqs[i]));
  f.engine->shutdown();
  EXPECT_GE(f.fakes[0]->batches.size(), 5u);
  for (const auto& b : f.fakes[0]->batches) EXPECT_LE(b.tokens, 10);
}

TEST(Engine, ManyClientsGetTheirOwnAnswersAndBatchesRespectLimits) {
  Fixture f(limits(64, 8), 2);
  constexpr int kClients = 16;
  constexpr int kRequests = 30;
  std::atomic<int> wrong{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      std::mt19937 rng(c);
      for (int r = 0; r < kRequests; ++r) {
        std::vector<std::vector<int32_t>> seqs(std::uniform_int_distribution<int>(1, 5)(rng));
        for (auto& s : seqs) {
          s.resize(std::uniform_int_distribution<int>(1, 20)(rng));
          // A shared prefix (as a reranker's system prompt would be), then the client's tokens.
          for (size_t i = 0; i < s.size(); ++i) {
            s[i] = i < 4 ? 7 : std::uniform_int_distribution<int>(1, 1000)(rng);
          }
        }
        auto out = f.engine->submit(seqs).get();
        for (size_t i = 0; i < seqs.size(); ++i) {
          if (out[i] != expected_output(seqs[i])) ++wrong;
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  f.engine->shutdown();
  EXPECT_EQ(wrong.load(), 0);
  int64_t tokens = 0, unique = 0;
  for (FakeRunner* fake : f.fakes) {
    for (const auto& b : fake->batches) {
      EXPECT_LE(b.tokens, 64);
      EXPECT_LE(b.sequences, 8);
    }
  }
  for (const auto& s : f.stats) {
    EXPECT_FALSE(s.failed);
    EXPECT_LE(s.unique_tokens, s.tokens);
    tokens += s.tokens;
    unique += s.unique_tokens;
  }
  EXPECT_LT(unique, tokens);  // the shared 4-token prefix folds within batches
  EXPECT_EQ(f.engine->queued_requests(), 0u);
  EXPECT_EQ(f.engine->queued_sequences(), 0);
}

TEST(Engine, RequestsFromDifferentClientsShareABatch) {
  Fixture f(limits(1000, 0));
  f.fakes[0]->gate.close();
  auto first = f.engine->submit({{1, 2}});
  f.fakes[0]->gate.wait_held(1);  // the worker holds batch 1; the next three queue up behind it
  auto a = f.engine->submit({{9, 9, 1}});
  auto b = f.engine->submit({{9, 9, 2}});
  auto c = f.engine->submit({{9, 9, 3}});
  f.fakes[0]->gate.open();
  EXPECT_EQ(a.get()[0], expected_output({9, 9, 1}));
  EXPECT_EQ(c.get()[0], expected_output({9, 9, 3}));
  first.get();
  b.get();
  f.engine->shutdown();
  ASSERT_EQ(f.stats.size(), 2u);
  EXPECT_EQ(f.stats[1].requests, 3);
  EXPECT_EQ(f.stats[1].tokens, 9);
  EXPECT_EQ(f.stats[1].unique_tokens, 5);  // 9 9 shared, then 1 | 2 | 3
}

TEST(Engine, CancelledRequestIsDroppedBeforeItRuns) {
  Fixture f(limits(1000, 0));
  f.fakes[0]->gate.close();
  auto first = f.engine->submit({{1}});
  f.fakes[0]->gate.wait_held(1);
  auto flag = std::make_shared<std::atomic<bool>>(false);
  auto doomed = f.engine->submit({{777, 778}}, flag);
  auto kept = f.engine->submit({{5}});
  flag->store(true);
  f.fakes[0]->gate.open();
  try {
    doomed.get();
    FAIL() << "expected a cancellation";
  } catch (const EngineError& e) {
    EXPECT_EQ(e.kind(), EngineError::Kind::kCancelled);
  }
  EXPECT_EQ(kept.get()[0], expected_output({5}));
  first.get();
  f.engine->shutdown();
  for (const auto& b : f.fakes[0]->batches) {
    for (const auto& s : b.seqs) EXPECT_NE(s[0], 777);
  }
}

TEST(Engine, RunnerFailureFailsItsBatchOnly) {
  Fixture f(limits(1000, 0));
  f.fakes[0]->fail_on = 666;
  auto bad = f.engine->submit({{1, 666}});
  try {
    bad.get();
    FAIL() << "expected a backend error";
  } catch (const EngineError& e) {
    EXPECT_EQ(e.kind(), EngineError::Kind::kBackend);
    EXPECT_NE(std::string(e.what()).find("poisoned token"), std::string::npos);
  }
  EXPECT_EQ(f.engine->submit({{3}}).get()[0], expected_output({3}));
}

TEST(Engine, FailedPartOfASplitRequestDropsTheRest) {
  Fixture f(limits(4, 0));
  f.fakes[0]->fail_on = 666;
  auto bad = f.engine->submit({{666, 1, 1, 1}, {2, 2, 2, 2}, {3, 3, 3, 3}});
  EXPECT_THROW(bad.get(), EngineError);
  EXPECT_EQ(f.engine->submit({{4}}).get()[0], expected_output({4}));
  f.engine->shutdown();
  for (const auto& b : f.fakes[0]->batches) {
    for (const auto& s : b.seqs) EXPECT_NE(s[0], 3);
  }
}

TEST(Engine, ShutdownDrainsQueuedWorkAndRefusesNewWork) {
  Fixture f(limits(4, 0));
  f.fakes[0]->gate.close();
  std::vector<std::future<RequestOutputs>> futures;
  for (int i = 1; i <= 6; ++i) futures.push_back(f.engine->submit({{i, i, i}}));
  f.fakes[0]->gate.wait_held(1);
  std::thread stopper([&] { f.engine->shutdown(); });
  // Shutdown has begun (or is about to): new work is refused once accepting() is false.
  for (int spin = 0; spin < 1000 && f.engine->accepting(); ++spin) std::this_thread::sleep_for(1ms);
  ASSERT_FALSE(f.engine->accepting());
  try {
    f.engine->submit({{1}});
    FAIL() << "expected shutting-down";
  } catch (const EngineError& e) {
    EXPECT_EQ(e.kind(), EngineError::Kind::kShuttingDown);
  }
  f.fakes[0]->gate.open();
  stopper.join();
  for (int i = 1; i <= 6; ++i) EXPECT_EQ(futures[i - 1].get()[0], expected_output({i, i, i}));
}

TEST(Engine, EveryDeviceWorkerTakesBatches) {
  Fixture f(limits(3, 0), 2);
  f.fakes[0]->gate.close();
  f.fakes[1]->gate.close();
  std::vector<std::future<RequestOutputs>> futures;
  for (int i = 1; i <= 4; ++i) futures.push_back(f.engine->submit({{i, i, i}}));
  f.fakes[0]->gate.wait_held(1);
  f.fakes[1]->gate.wait_held(1);  // both workers hold a batch at once
  f.fakes[0]->gate.open();
  f.fakes[1]->gate.open();
  for (int i = 1; i <= 4; ++i) EXPECT_EQ(futures[i - 1].get()[0], expected_output({i, i, i}));
}

TEST(Engine, BatchIsReportedBeforeItsRequestsAreAnswered) {
  Fixture f(limits(100, 0));
  for (size_t i = 1; i <= 50; ++i) {
    f.engine->submit({{static_cast<int32_t>(i), 2}}).get();
    std::lock_guard<std::mutex> lock(f.mu);
    ASSERT_EQ(f.stats.size(), i);  // /metrics already counts the batch a client got its answer from
  }
}

TEST(Engine, ThresholdDecidesFolding) {
  EngineOptions o = limits(100, 0);
  o.fold.threshold = 0.0;  // never fold
  Fixture f(o);
  f.engine->submit({{1, 2, 3}, {1, 2, 4}}).get();
  f.engine->shutdown();
  ASSERT_EQ(f.stats.size(), 1u);
  EXPECT_FALSE(f.stats[0].folded);
  EXPECT_EQ(f.stats[0].unique_tokens, 4);
}

}  // namespace
}  // namespace radix::engine
