// The outputs the family fixtures record (tests/fixtures/families/<name>/reference.json: hidden
// states of every token, last-token and mean embeddings, reranker logits), gathered from a radix
// model or from the fixture in the same shape, and the error metrics the family tests hold them
// to. Shared by the CPU test of bf16-rounded weights and the CUDA family test, so that both
// measure the same quantities.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bf16_weights.h"
#include "common/cosine.h"
#include "fixture_util.h"
#include "model/model.h"
#include "model/model_folder.h"

namespace radix::testing {

struct SequenceOutputs {
  int32_t index = 0;               // the sequence's index in the fixture
  std::vector<float> hidden;       // [len, hidden], final-normed
  std::vector<float> last, mean;   // embeddings (normalised)
  std::array<double, 2> logits{};  // reranker (yes, no) or (logit, 0)
};
using FamilyOutputs = std::vector<std::vector<SequenceOutputs>>;  // per batch, per member

// Worst errors of `got` against `want`, each as the family tests state it: hidden states as
// max |diff| / max |want| per token, embeddings as cosine, logits as |diff| / the batch's
// largest |want logit|.
struct FamilyErrors {
  double hidden = 0;
  double last_cosine = 1;
  double mean_cosine = 1;
  double logit = 0;
};

inline std::vector<int32_t> fixture_sequence(const nlohmann::json& ref, size_t i) {
  return ref.at("sequences")[i].get<std::vector<int32_t>>();
}

inline std::vector<std::vector<int32_t>> fixture_batches(const nlohmann::json& ref) {
  return ref.at("batches").get<std::vector<std::vector<int32_t>>>();
}

// A family fixture folder loaded as Model::load does, with every weight rounded to bf16 first
// when `bf16_weights` (on the CPU backend the only way to run the CUDA backend's weights).
inline std::unique_ptr<Model> load_family_model(const std::string& name, const nlohmann::json& ref,
                                                const std::string& device, bool bf16_weights,
                                                const std::string& pooling = "") {
  LoadOptions options;
  options.backend.device = device;
  if (device == "cpu") options.backend.threads = 2;
  options.pooling = pooling;
  options.reranker_tokens = ref.at("head_tokens").get<std::vector<int32_t>>();
  const std::string folder = fixture_path("families/" + name);
  if (!bf16_weights) return Model::load(folder, options);
  ModelInfo info = read_model_folder(folder, true);
  info.spec = folder;
  const SafetensorsWeights weights(folder, info.config);
  return Model::create(std::move(info), Bf16RoundedWeights(weights), options);
}

// The fixture's batches through `model` (last-token pooling, with hidden states and the
// reranker head) and `mean_model` (mean pooling).
inline FamilyOutputs run_family(Model& model, Model& mean_model, const nlohmann::json& ref,
                                AttentionMode mode) {
  FamilyOutputs out;
  const int64_t hidden = model.info().hidden_size();
  for (const auto& members : fixture_batches(ref)) {
    RaggedBatch batch;
    for (const int32_t i : members) batch.add_sequence(fixture_sequence(ref, i));
    ForwardOptions options;
    options.mode = mode;
    options.head = HeadKind::kEmbedding;
    options.return_hidden_states = true;
    const ForwardResult last = model.forward(batch, options);
    options.return_hidden_states = false;
    const ForwardResult mean = mean_model.forward(batch, options);
    options.head = HeadKind::kReranker;
    const ForwardResult logits = model.forward(batch, options);
    std::vector<SequenceOutputs> rows;
    int64_t begin = 0;
    for (size_t k = 0; k < members.size(); ++k) {
      SequenceOutputs s;
      s.index = members[k];
      const int64_t len = static_cast<int64_t>(fixture_sequence(ref, members[k]).size());
      s.hidden.assign(last.hidden_states.begin() + begin * hidden,
                      last.hidden_states.begin() + (begin + len) * hidden);
      begin += len;
      s.last.assign(last.values.begin() + k * last.dim, last.values.begin() + (k + 1) * last.dim);
      s.mean.assign(mean.values.begin() + k * mean.dim, mean.values.begin() + (k + 1) * mean.dim);
      s.logits = {logits.yes_no_logits[2 * k], logits.yes_no_logits[2 * k + 1]};
      rows.push_back(std::move(s));
    }
    out.push_back(std::move(rows));
  }
  return out;
}

// transformers' fp32 outputs of the fixture, in run_family's shape.
inline FamilyOutputs fixture_outputs(const nlohmann::json& ref) {
  FamilyOutputs out;
  for (const auto& members : fixture_batches(ref)) {
    std::vector<SequenceOutputs> rows;
    for (const int32_t i : members) {
      SequenceOutputs s;
      s.index = i;
      s.hidden = ref.at("hidden_states")[i].get<std::vector<float>>();
      s.last = ref.at("last_embeddings")[i].get<std::vector<float>>();
      s.mean = ref.at("mean_embeddings")[i].get<std::vector<float>>();
      const auto l = ref.at("head_logits")[i].get<std::vector<double>>();
      s.logits = {l.at(0), l.at(1)};
      rows.push_back(std::move(s));
    }
    out.push_back(std::move(rows));
  }
  return out;
}

// std::max/min drop a NaN in their second argument; an error metric must keep it.
inline double worse_max(double a, double b) {
  return std::isnan(a) || std::isnan(b) ? NAN : std::max(a, b);
}
inline double worse_min(double a, double b) {
  return std::isnan(a) || std::isnan(b) ? NAN : std::min(a, b);
}

inline FamilyErrors family_errors(const FamilyOutputs& got, const FamilyOutputs& want,
                                  int64_t hidden) {
  FamilyErrors e;
  EXPECT_EQ(got.size(), want.size());
  for (size_t b = 0; b < std::min(got.size(), want.size()); ++b) {
    EXPECT_EQ(got[b].size(), want[b].size());
    double scale = 0;
    for (const auto& w : want[b])
      scale = std::max({scale, std::fabs(w.logits[0]), std::fabs(w.logits[1])});
    for (size_t k = 0; k < std::min(got[b].size(), want[b].size()); ++k) {
      const SequenceOutputs& g = got[b][k];
      const SequenceOutputs& w = want[b][k];
      EXPECT_EQ(g.index, w.index);
      EXPECT_EQ(g.hidden.size(), w.hidden.size());
      if (g.hidden.size() != w.hidden.size() || g.last.size() != w.last.size() ||
          g.mean.size() != w.mean.size()) {
        e.hidden = e.logit = INFINITY, e.last_cosine = e.mean_cosine = -1;
        continue;
      }
      for (size_t t = 0; t * hidden < w.hidden.size(); ++t) {
        e.hidden = worse_max(
            e.hidden, rel_err(g.hidden.data() + t * hidden, w.hidden.data() + t * hidden, hidden));
      }
      e.last_cosine = worse_min(e.last_cosine, cosine(g.last.data(), w.last.data(), w.last.size()));
      e.mean_cosine = worse_min(e.mean_cosine, cosine(g.mean.data(), w.mean.data(), w.mean.size()));
      for (int j = 0; j < 2; ++j) {
        e.logit = worse_max(e.logit, std::fabs(g.logits[j] - w.logits[j]) / scale);
      }
    }
  }
  return e;
}

}  // namespace radix::testing
