#include "server/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace radix::server {
namespace {

std::string escape_label(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// {a="x",b="y"} with an optional extra label (le) at the end; empty string when no labels.
std::string label_set(const std::vector<std::string>& names, const LabelValues& values,
                      const char* extra_name = nullptr, const std::string& extra_value = {}) {
  if (names.empty() && !extra_name) return {};
  std::string out = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) out += ',';
    out += names[i] + "=\"" + escape_label(values[i]) + '"';
  }
  if (extra_name) {
    if (!names.empty()) out += ',';
    out += std::string(extra_name) + "=\"" + extra_value + '"';
  }
  return out + "}";
}

void header(std::string& out, const std::string& name, const std::string& help, const char* type) {
  out += "# HELP " + name + ' ' + help + '\n';
  out += "# TYPE " + name + ' ' + type + '\n';
}

void check_labels(const std::vector<std::string>& names, const LabelValues& values) {
  if (names.size() != values.size()) throw std::invalid_argument("metrics: wrong label count");
}

}  // namespace

std::string format_metric_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.9g", v);
  }
  return buf;
}

Counter::Counter(std::string name, std::string help, std::vector<std::string> label_names)
    : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)) {}

void Counter::add(const LabelValues& labels, double amount) {
  check_labels(label_names_, labels);
  std::lock_guard<std::mutex> lock(mu_);
  values_[labels] += amount;
}

double Counter::value(const LabelValues& labels) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = values_.find(labels);
  return it == values_.end() ? 0.0 : it->second;
}

void Counter::render(std::string& out) const {
  header(out, name_, help_, "counter");
  std::lock_guard<std::mutex> lock(mu_);
  if (values_.empty() && label_names_.empty()) out += name_ + " 0\n";
  for (const auto& [labels, v] : values_) {
    out += name_ + label_set(label_names_, labels) + ' ' + format_metric_value(v) + '\n';
  }
}

Histogram::Histogram(std::string name, std::string help, std::vector<std::string> label_names,
                     std::vector<double> upper_bounds)
    : name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      bounds_(std::move(upper_bounds)) {
  if (!std::is_sorted(bounds_.begin(), bounds_.end())) {
    throw std::invalid_argument("metrics: histogram bounds must be sorted");
  }
}

void Histogram::observe(const LabelValues& labels, double value) {
  check_labels(label_names_, labels);
  const size_t bucket =
      std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();  // le semantics
  std::lock_guard<std::mutex> lock(mu_);
  Series& s = series_[labels];
  if (s.buckets.empty()) s.buckets.assign(bounds_.size() + 1, 0);
  s.buckets[bucket] += 1;
  s.sum += value;
  s.count += 1;
}

uint64_t Histogram::count(const LabelValues& labels) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = series_.find(labels);
  return it == series_.end() ? 0 : it->second.count;
}

void Histogram::render(std::string& out) const {
  header(out, name_, help_, "histogram");
  std::lock_guard<std::mutex> lock(mu_);
  auto render_series = [&](const LabelValues& labels, const Series* s) {
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= bounds_.size(); ++b) {
      if (s) cumulative += s->buckets[b];
      const std::string le = b < bounds_.size() ? format_metric_value(bounds_[b]) : "+Inf";
      out += name_ + "_bucket" + label_set(label_names_, labels, "le", le) + ' ' +
             std::to_string(cumulative) + '\n';
    }
    out += name_ + "_sum" + label_set(label_names_, labels) + ' ' +
           format_metric_value(s ? s->sum : 0.0) + '\n';
    out += name_ + "_count" + label_set(label_names_, labels) + ' ' +
           std::to_string(s ? s->count : 0) + '\n';
  };
  if (series_.empty() && label_names_.empty()) render_series({}, nullptr);
  for (const auto& [labels, s] : series_) render_series(labels, &s);
}

void MetricsRegistry::claim(const std::string& name) {
  if (std::find(names_.begin(), names_.end(), name) != names_.end()) {
    throw std::invalid_argument("metrics: duplicate metric " + name);
  }
  names_.push_back(name);
}

Counter& MetricsRegistry::counter(const std::string& name, const std::string& help,
                                  std::vector<std::string> label_names) {
  std::lock_guard<std::mutex> lock(mu_);
  claim(name);
  counters_.push_back(std::unique_ptr<Counter>(new Counter(name, help, std::move(label_names))));
  Counter* c = counters_.back().get();
  renderers_.push_back([c](std::string& out) { c->render(out); });
  return *c;
}

Histogram& MetricsRegistry::histogram(const std::string& name, const std::string& help,
                                      std::vector<double> upper_bounds,
                                      std::vector<std::string> label_names) {
  std::lock_guard<std::mutex> lock(mu_);
  claim(name);
  histograms_.push_back(std::unique_ptr<Histogram>(
      new Histogram(name, help, std::move(label_names), std::move(upper_bounds))));
  Histogram* h = histograms_.back().get();
  renderers_.push_back([h](std::string& out) { h->render(out); });
  return *h;
}

void MetricsRegistry::gauge(const std::string& name, const std::string& help,
                            std::function<double()> read) {
  std::lock_guard<std::mutex> lock(mu_);
  claim(name);
  gauges_.push_back(std::make_unique<Gauge>(Gauge{name, help, std::move(read)}));
  Gauge* g = gauges_.back().get();
  renderers_.push_back([g](std::string& out) {
    header(out, g->name, g->help, "gauge");
    out += g->name + ' ' + format_metric_value(g->read()) + '\n';
  });
}

void MetricsRegistry::scraped_family(const std::string& name, const std::string& help,
                                     const char* type, std::vector<std::string> label_names,
                                     std::function<Series()> read) {
  std::lock_guard<std::mutex> lock(mu_);
  claim(name);
  scraped_families_.push_back(std::make_unique<ScrapedFamily>(
      ScrapedFamily{name, help, type, std::move(label_names), std::move(read)}));
  ScrapedFamily* g = scraped_families_.back().get();
  renderers_.push_back([g](std::string& out) {
    header(out, g->name, g->help, g->type.c_str());
    for (const auto& [labels, value] : g->read()) {
      check_labels(g->label_names, labels);
      out += g->name + label_set(g->label_names, labels) + ' ' + format_metric_value(value) + '\n';
    }
  });
}

std::string MetricsRegistry::render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  for (const auto& r : renderers_) r(out);
  return out;
}

std::vector<double> MetricsRegistry::powers_of_two(double max) {
  std::vector<double> b;
  for (double v = 1; v <= max; v *= 2) b.push_back(v);
  return b;
}

std::vector<double> MetricsRegistry::exponential(double start, double factor, int count) {
  std::vector<double> b;
  double v = start;
  for (int i = 0; i < count; ++i, v *= factor) b.push_back(v);
  return b;
}

}  // namespace radix::server
