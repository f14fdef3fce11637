#include "server/metrics.h"

#include <gtest/gtest.h>

#include "server/server_metrics.h"

namespace radix::server {
namespace {

TEST(Metrics, CounterAndGaugeExposition) {
  MetricsRegistry r;
  Counter& c = r.counter("x_total", "Things", {"route", "status"});
  c.add({"/embed", "200"});
  c.add({"/embed", "200"}, 2);
  c.add({"/a\"b", "429"});
  r.gauge("depth", "Queue depth", [] { return 7.0; });
  const std::string text = r.render();
  EXPECT_NE(text.find("# HELP x_total Things\n# TYPE x_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("x_total{route=\"/embed\",status=\"200\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("x_total{route=\"/a\\\"b\",status=\"429\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE depth gauge\ndepth 7\n"), std::string::npos);
  EXPECT_THROW(c.add({"only-one"}), std::invalid_argument);
  EXPECT_THROW(r.counter("x_total", "again"), std::invalid_argument);
}

TEST(Metrics, HistogramBucketsAreCumulative) {
  MetricsRegistry r;
  Histogram& h = r.histogram("lat_seconds", "Latency", {0.1, 1.0}, {"route"});
  h.observe({"/e"}, 0.05);
  h.observe({"/e"}, 0.1);  // le is inclusive
  h.observe({"/e"}, 0.5);
  h.observe({"/e"}, 5.0);
  const std::string text = r.render();
  EXPECT_NE(text.find("lat_seconds_bucket{route=\"/e\",le=\"0.1\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{route=\"/e\",le=\"1\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{route=\"/e\",le=\"+Inf\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_sum{route=\"/e\"} 5.65\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_count{route=\"/e\"} 4\n"), std::string::npos);
  EXPECT_EQ(h.count({"/e"}), 4u);
}

TEST(Metrics, UnlabelledFamiliesRenderBeforeAnyObservation) {
  MetricsRegistry r;
  r.counter("n_total", "N");
  r.histogram("h", "H", {1.0});
  const std::string text = r.render();
  EXPECT_NE(text.find("n_total 0\n"), std::string::npos);
  EXPECT_NE(text.find("h_bucket{le=\"+Inf\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("h_count 0\n"), std::string::npos);
}

TEST(ServerMetrics, BatchesFeedCompressionRatio) {
  ServerMetrics m([] { return 3.0; }, [] { return 1.0; });
  m.observe_batch({.sequences = 4, .requests = 2, .tokens = 100, .unique_tokens = 40});
  m.observe_batch({.sequences = 1, .requests = 1, .tokens = 100, .unique_tokens = 100});
  m.observe_request("/embed", 200, 0.01);
  const std::string text = m.render();
  EXPECT_NE(text.find("radix_compression_ratio 0.7\n"), std::string::npos);
  EXPECT_NE(text.find("radix_queue_depth 3\n"), std::string::npos);
  EXPECT_NE(text.find("radix_tokens_total 200\n"), std::string::npos);
  EXPECT_NE(text.find("radix_unique_tokens_total 140\n"), std::string::npos);
  EXPECT_NE(text.find("radix_batch_compression_ratio_bucket{le=\"0.4\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("radix_requests_total{route=\"/embed\",status=\"200\"} 1\n"),
            std::string::npos);
}

TEST(ServerMetrics, BatchPhasesAreOneHistogramLabelledByPhase) {
  ServerMetrics m([] { return 0.0; }, [] { return 0.0; });
  m.observe_batch({.sequences = 1,
                   .requests = 1,
                   .tokens = 10,
                   .unique_tokens = 10,
                   .run_seconds = 0.004,
                   .plan_seconds = 0.00002,
                   .prepare_seconds = 0.0003,
                   .enqueue_seconds = 0.002,
                   .wait_seconds = 0.0015,
                   .finish_seconds = 0.0001});
  const std::string text = m.render();
  // Cumulative buckets: 0.3 ms of prepare is in le=0.0005 and not in le=0.00025.
  EXPECT_NE(
      text.find("radix_batch_phase_duration_seconds_bucket{phase=\"prepare\",le=\"0.0005\"} 1\n"),
      std::string::npos);
  EXPECT_NE(
      text.find("radix_batch_phase_duration_seconds_bucket{phase=\"prepare\",le=\"0.00025\"} 0\n"),
      std::string::npos);
  for (const char* phase : {"plan", "prepare", "enqueue", "wait", "finish"}) {
    EXPECT_NE(text.find(std::string("radix_batch_phase_duration_seconds_count{phase=\"") + phase +
                        "\"} 1\n"),
              std::string::npos)
        << phase;
  }
  EXPECT_NE(text.find("radix_batch_phase_duration_seconds_sum{phase=\"enqueue\"} 0.002\n"),
            std::string::npos);
}

TEST(Metrics, ScrapedFamiliesRenderEverySeriesReadAtScrapeTime) {
  MetricsRegistry r;
  MetricsRegistry::Series now = {{{"a"}, 1}, {{"b\"c"}, 2.5}};
  r.scraped_family("w_total", "W", "counter", {"worker"}, [&now] { return now; });
  std::string text = r.render();
  EXPECT_NE(text.find("# TYPE w_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("w_total{worker=\"a\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("w_total{worker=\"b\\\"c\"} 2.5\n"), std::string::npos);
  now = {};
  text = r.render();
  EXPECT_NE(text.find("# TYPE w_total counter\n"), std::string::npos);
  EXPECT_EQ(text.find("w_total{"), std::string::npos);
}

TEST(ServerMetrics, WorkerLabelsNumberRepeatedDevicesOnly) {
  EXPECT_EQ(worker_labels({"cuda:0", "cuda:1"}), (std::vector<std::string>{"cuda:0", "cuda:1"}));
  EXPECT_EQ(worker_labels({"cpu", "cpu"}), (std::vector<std::string>{"cpu#0", "cpu#1"}));
  EXPECT_EQ(worker_labels({"cpu"}), (std::vector<std::string>{"cpu"}));
}

TEST(ServerMetrics, WorkersRenderPerWorkerAndSummedCacheNumbers) {
  ServerMetrics m([] { return 0.0; }, [] { return 0.0; });
  EXPECT_TRUE(m.workers().empty());
  std::vector<WorkerObservation> workers(2);
  workers[0].name = "cuda:0";
  workers[0].busy = true;
  workers[0].running_sequences = 7;
  workers[0].batches = 10;
  workers[0].prefix_routed_batches = 9;
  workers[0].cache_bytes = 1000;
  workers[0].hit_tokens = 300;
  workers[0].lookup_tokens = 400;
  workers[0].evicted_nodes = 2;
  workers[0].recorded_forwards = 4;
  workers[0].replayed_forwards = 96;
  workers[1].name = "cuda:1";
  workers[1].batches = 3;
  workers[1].cache_bytes = 24;
  workers[1].hit_tokens = 5;
  m.register_workers([&workers] { return workers; });
  const std::string text = m.render();
  for (const char* line :
       {"radix_prefix_cache_bytes 1024\n", "radix_prefix_cache_hit_tokens 305\n",
        "radix_prefix_cache_lookup_tokens 400\n", "radix_prefix_cache_evicted_nodes 2\n",
        "radix_worker_busy{worker=\"cuda:0\"} 1\n", "radix_worker_busy{worker=\"cuda:1\"} 0\n",
        "radix_worker_running_sequences{worker=\"cuda:0\"} 7\n",
        "radix_worker_batches_total{worker=\"cuda:1\"} 3\n",
        "radix_worker_prefix_routed_batches_total{worker=\"cuda:0\"} 9\n",
        "radix_worker_prefix_cache_bytes{worker=\"cuda:1\"} 24\n",
        "radix_worker_prefix_cache_hit_tokens{worker=\"cuda:0\"} 300\n",
        "radix_worker_prefix_cache_lookup_tokens{worker=\"cuda:0\"} 400\n",
        "radix_worker_prefix_cache_evicted_nodes{worker=\"cuda:0\"} 2\n",
        "radix_worker_recorded_forwards_total{worker=\"cuda:0\"} 4\n",
        "radix_worker_replayed_forwards_total{worker=\"cuda:1\"} 0\n"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line;
  }
  EXPECT_EQ(m.workers().size(), 2u);
}

}  // namespace
}  // namespace radix::server
