// A small metrics registry with Prometheus text exposition (format 0.0.4): counters and
// histograms with labels, gauges read at scrape time. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace radix::server {

using LabelValues = std::vector<std::string>;

class Counter {
 public:
  void add(const LabelValues& labels, double amount = 1.0);
  double value(const LabelValues& labels) const;

 private:
  friend class MetricsRegistry;
  Counter(std::string name, std::string help, std::vector<std::string> label_names);
  void render(std::string& out) const;

  std::string name_, help_;
  std::vector<std::string> label_names_;
  mutable std::mutex mu_;
  std::map<LabelValues, double> values_;
};

class Histogram {
 public:
  void observe(const LabelValues& labels, double value);
  uint64_t count(const LabelValues& labels) const;

 private:
  friend class MetricsRegistry;
  Histogram(std::string name, std::string help, std::vector<std::string> label_names,
            std::vector<double> upper_bounds);
  void render(std::string& out) const;

  struct Series {
    std::vector<uint64_t> buckets;  // non-cumulative counts per upper bound, then +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  std::string name_, help_;
  std::vector<std::string> label_names_;
  std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::map<LabelValues, Series> series_;
};

class MetricsRegistry {
 public:
  // Families render in registration order. Names must be unique (std::invalid_argument).
  Counter& counter(const std::string& name, const std::string& help,
                   std::vector<std::string> label_names = {});
  Histogram& histogram(const std::string& name, const std::string& help,
                       std::vector<double> upper_bounds, std::vector<std::string> label_names = {});
  void gauge(const std::string& name, const std::string& help, std::function<double()> read);
  // A labelled family read at scrape time: `read` returns every series (label values, value); type
  // "gauge", or "counter" for totals another component keeps. No series: only the header.
  using Series = std::vector<std::pair<LabelValues, double>>;
  void scraped_family(const std::string& name, const std::string& help, const char* type,
                      std::vector<std::string> label_names, std::function<Series()> read);

  std::string render() const;

  // 1, 2, 4, ... up to and including `max` (for token counts).
  static std::vector<double> powers_of_two(double max);
  // start, start*factor, ... (count bounds).
  static std::vector<double> exponential(double start, double factor, int count);

 private:
  struct Gauge {
    std::string name, help;
    std::function<double()> read;
  };
  struct ScrapedFamily {
    std::string name, help, type;
    std::vector<std::string> label_names;
    std::function<Series()> read;
  };
  void claim(const std::string& name);

  mutable std::mutex mu_;
  std::vector<std::string> names_;
  std::vector<std::function<void(std::string&)>> renderers_;
  std::vector<std::unique_ptr<Counter>> counters_;
  std::vector<std::unique_ptr<Histogram>> histograms_;
  std::vector<std::unique_ptr<Gauge>> gauges_;
  std::vector<std::unique_ptr<ScrapedFamily>> scraped_families_;
};

// Prometheus number formatting: integers without a fraction, +Inf/-Inf/NaN spelled out.
std::string format_metric_value(double v);

}  // namespace radix::server
