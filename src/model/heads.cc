#include "model/heads.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace radix {

using std::to_string;

void check_head_options(HeadKind head, const ForwardOptions& options, const Qwen3Config& c,
                        const Qwen3Weights& weights) {
  switch (head) {
    case HeadKind::kEmbedding:
      if (options.dimensions < 0 || options.dimensions > c.hidden_size) {
        throw std::invalid_argument("dimensions must be in [1, " + to_string(c.hidden_size) +
                                    "] (or 0 for all), got " + to_string(options.dimensions));
      }
      break;
    case HeadKind::kReranker:
      if (weights.yes_no.empty()) {
        throw std::invalid_argument("this model has no LM head rows for the reranker");
      }
      break;
    case HeadKind::kClassifier:
      if (weights.score.empty()) {
        throw std::invalid_argument("this model has no classifier head (score.weight)");
      }
      break;
  }
}

int32_t head_dim_of(HeadKind head, const ForwardOptions& options, const Qwen3Config& c) {
  switch (head) {
    case HeadKind::kEmbedding:
      return options.dimensions > 0 ? options.dimensions : c.hidden_size;
    case HeadKind::kReranker:
      return 1;
    case HeadKind::kClassifier:
      return c.num_labels;
  }
  return 0;
}

void l2_normalize_rows(float* data, int64_t rows, int64_t dim) {
  for (int64_t r = 0; r < rows; ++r) {
    float* x = data + r * dim;
    double sum = 0;
    for (int64_t i = 0; i < dim; ++i) sum += static_cast<double>(x[i]) * x[i];
    const double norm = std::max(std::sqrt(sum), 1e-12);
    for (int64_t i = 0; i < dim; ++i) x[i] = static_cast<float>(x[i] / norm);
  }
}

void apply_head(HeadKind head, const ForwardOptions& options, const Qwen3Config& c,
                const Qwen3Weights& weights, Backend& backend, const Tensor& last_normed,
                const Buffer& scratch, ForwardResult& result) {
  const int64_t seqs = last_normed.rows;
  const int32_t dim = head_dim_of(head, options, c);
  result.dim = dim;
  switch (head) {
    case HeadKind::kEmbedding: {
      std::vector<float> hidden(static_cast<size_t>(seqs) * c.hidden_size);
      backend.download(last_normed, hidden.data());
      result.values.resize(static_cast<size_t>(seqs) * dim);
      for (int64_t s = 0; s < seqs; ++s) {
        std::copy_n(hidden.begin() + s * c.hidden_size, dim, result.values.begin() + s * dim);
      }
      if (options.normalize) l2_normalize_rows(result.values.data(), seqs, dim);
      return;
    }
    case HeadKind::kReranker: {
      const Tensor logits = scratch.tensor().first_rows(seqs).col_slice(0, 2);
      backend.linear(last_normed, weights.yes_no, logits);
      result.yes_no_logits.resize(static_cast<size_t>(seqs) * 2);
      backend.download(logits, result.yes_no_logits.data());
      result.values.resize(seqs);
      for (int64_t s = 0; s < seqs; ++s) {
        // softmax([no, yes])[1] == sigmoid(yes - no)
        const double diff = static_cast<double>(result.yes_no_logits[2 * s]) -
                            static_cast<double>(result.yes_no_logits[2 * s + 1]);
        result.values[s] = static_cast<float>(1.0 / (1.0 + std::exp(-diff)));
      }
      return;
    }
    case HeadKind::kClassifier: {
      const Tensor logits = scratch.tensor().first_rows(seqs).col_slice(0, c.num_labels);
      backend.linear(last_normed, weights.score, logits);
      result.values.resize(static_cast<size_t>(seqs) * c.num_labels);
      backend.download(logits, result.values.data());
      return;
    }
  }
}

}  // namespace radix
