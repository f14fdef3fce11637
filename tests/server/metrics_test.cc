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

}  // namespace
}  // namespace radix::server
