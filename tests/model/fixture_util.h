// Reading the reference fixtures of tools/make_fixtures.py and building the tiny model.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "formula_weights.h"
#include "model/decoder_config.h"
#include "model/model.h"

namespace radix::testing {

inline std::string fixture_path(const std::string& name) {
  return std::string(RADIX_SOURCE_DIR) + "/tests/fixtures/" + name;
}

inline nlohmann::json read_fixture(const std::string& name) {
  std::ifstream in(fixture_path(name));
  if (!in) throw std::runtime_error("cannot open fixture " + fixture_path(name));
  std::stringstream text;
  text << in.rdbuf();
  return nlohmann::json::parse(text.str());
}

// The tiny Qwen3 of qwen3_tiny.json with formula weights, on the CPU backend.
inline std::unique_ptr<Model> make_tiny_model(const nlohmann::json& fixture, int num_labels = 0,
                                              HeadKind head = HeadKind::kEmbedding) {
  ModelInfo info;
  info.spec = "formula:qwen3_tiny";
  info.config = parse_decoder_config(fixture.at("config"));
  info.config.num_labels = num_labels;
  info.head = head;
  const FormulaWeights weights(info.config);
  LoadOptions options;
  options.backend.threads = 2;
  return Model::create(info, weights, options);
}

// max |a - b| / max |b| (the relative error of a vector against a reference).
inline double rel_err(const float* a, const float* b, size_t n) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < n; ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
  }
  return scale == 0 ? diff : diff / scale;
}

}  // namespace radix::testing
