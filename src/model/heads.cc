#include "model/heads.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace radix {

using std::to_string;

void check_head_options(HeadKind head, const ForwardOptions& options, const ModelInfo& info,
                        const DecoderWeights& weights) {
  const DecoderConfig& c = info.config;
  switch (head) {
    case HeadKind::kEmbedding:
      if (options.dimensions < 0 || options.dimensions > c.hidden_size) {
        throw std::invalid_argument("dimensions must be in [1, " + to_string(c.hidden_size) +
                                    "] (or 0 for all), got " + to_string(options.dimensions));
      }
      break;
    case HeadKind::kReranker:
      if (weights.head_rows.empty()) {
        throw std::invalid_argument(
            "this model has no LM head rows for the reranker (name its tokens: "
            "--reranker-tokens yes,no or one token)");
      }
      break;
    case HeadKind::kClassifier:
      if (weights.score.empty()) {
        throw std::invalid_argument("this model has no classifier head (score.weight)");
      }
      break;
  }
}

int32_t head_dim_of(HeadKind head, const ForwardOptions& options, const ModelInfo& info) {
  switch (head) {
    case HeadKind::kEmbedding:
      return options.dimensions > 0 ? options.dimensions : info.config.hidden_size;
    case HeadKind::kReranker:
      return 1;
    case HeadKind::kClassifier:
      return info.config.num_labels;
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

Tensor enqueue_head(HeadKind head, const DecoderWeights& weights, Backend& backend,
                    const Tensor& last_normed, const Buffer& scratch) {
  const int64_t rows = last_normed.rows;
  switch (head) {
    case HeadKind::kEmbedding:
      return last_normed;
    case HeadKind::kReranker: {
      const int64_t k = weights.head_rows.tensor().rows;  // 1 or 2 tokens
      const Tensor logits = scratch.tensor().first_rows(rows).col_slice(0, k);
      backend.linear(last_normed, weights.head_rows, logits);
      return logits;
    }
    case HeadKind::kClassifier: {
      const Tensor logits =
          scratch.tensor().first_rows(rows).col_slice(0, weights.score.tensor().rows);
      backend.linear(last_normed, weights.score, logits);
      return logits;
    }
  }
  return Tensor{};
}

void read_head(HeadKind head, const ForwardOptions& options, const ModelInfo& info,
               Backend& backend, const Tensor& head_out, int64_t rows, ForwardResult& result) {
  const DecoderConfig& c = info.config;
  const int32_t dim = head_dim_of(head, options, info);
  result.dim = dim;
  std::vector<float> raw(static_cast<size_t>(rows * head_out.cols));
  backend.download(head_out.first_rows(rows), raw.data());
  switch (head) {
    case HeadKind::kEmbedding: {
      result.values.resize(static_cast<size_t>(rows) * dim);
      for (int64_t s = 0; s < rows; ++s) {
        std::copy_n(raw.begin() + s * c.hidden_size, dim, result.values.begin() + s * dim);
      }
      if (options.normalize) l2_normalize_rows(result.values.data(), rows, dim);
      return;
    }
    case HeadKind::kReranker: {
      const int64_t k = head_out.cols;  // 1 or 2 tokens
      result.yes_no_logits.assign(static_cast<size_t>(rows) * 2, 0.0f);
      result.values.resize(rows);
      const double cap = c.final_logit_softcap;
      for (int64_t s = 0; s < rows; ++s) {
        for (int64_t j = 0; j < k; ++j) {
          double v = raw[s * k + j];
          if (cap > 0) v = cap * std::tanh(v / cap);  // Gemma2's final soft-cap
          result.yes_no_logits[2 * s + j] = static_cast<float>(v);
        }
        // softmax([no, yes])[1] == sigmoid(yes - no); one token: sigmoid(logit - 0).
        const double diff = static_cast<double>(result.yes_no_logits[2 * s]) -
                            static_cast<double>(result.yes_no_logits[2 * s + 1]);
        result.values[s] = static_cast<float>(1.0 / (1.0 + std::exp(-diff)));
      }
      return;
    }
    case HeadKind::kClassifier:
      result.values = std::move(raw);
      return;
  }
}

void mean_pool_embeddings(const std::vector<float>& rows_host, const std::vector<int32_t>& scatter,
                          const std::vector<int32_t>& cu_seqlens, const ForwardOptions& options,
                          const ModelInfo& info, ForwardResult& result) {
  const int64_t h = info.config.hidden_size;
  const int32_t dim = head_dim_of(HeadKind::kEmbedding, options, info);
  const int64_t seqs = static_cast<int64_t>(cu_seqlens.size()) - 1;
  result.dim = dim;
  result.values.assign(static_cast<size_t>(seqs) * dim, 0.0f);
  std::vector<double> sum(h);
  for (int64_t s = 0; s < seqs; ++s) {
    std::fill(sum.begin(), sum.end(), 0.0);
    const int32_t begin = cu_seqlens[s], end = cu_seqlens[s + 1];
    for (int32_t t = begin; t < end; ++t) {
      const float* row = rows_host.data() + static_cast<int64_t>(scatter[t]) * h;
      for (int64_t i = 0; i < h; ++i) sum[i] += row[i];
    }
    const double count = std::max(end - begin, 1);
    for (int32_t i = 0; i < dim; ++i)
      result.values[s * dim + i] = static_cast<float>(sum[i] / count);
  }
  if (options.normalize) l2_normalize_rows(result.values.data(), seqs, dim);
}

}  // namespace radix
