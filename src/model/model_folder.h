// A Hugging Face model folder: config.json, safetensors weights, and the sentence-transformers
// extras (1_Pooling/config.json, config_sentence_transformers.json), plus tokenizer.json.
#pragma once

#include <string>

#include "model/model.h"
#include "model/safetensors.h"
#include "model/weight_source.h"

namespace radix {

// Reads config.json and the extras (radix_rerank_template.json: model/rerank_template.h). The default head: classifier for *ForSequenceClassification,
// embedding when sentence-transformers files are present, otherwise (a causal LM) reranker when
// its reranker tokens are known (Qwen3's default pair, or `reranker_tokens_given`), else
// embedding. Throws std::runtime_error naming the file for anything unsupported (e.g. a pooling
// mode other than last token or mean).
ModelInfo read_model_folder(const std::string& folder, bool reranker_tokens_given = false);

// The folder's safetensors as a WeightSource under canonical names (the "model." prefix of
// *ForCausalLM / *ForSequenceClassification exports removed). The constructor rejects
// unexpected tensors, missing required ones, wrong shapes and unsupported dtypes.
class SafetensorsWeights final : public WeightSource {
 public:
  SafetensorsWeights(const std::string& folder, const DecoderConfig& config);
  bool contains(const std::string& name) const override;
  std::array<int64_t, 2> shape(const std::string& name) const override;
  void write(const std::string& name, Backend& backend, const Tensor& dst) const override;
  void write_rows(const std::string& name, std::span<const int64_t> rows, Backend& backend,
                  const Tensor& dst) const override;

 private:
  const SafetensorsTensor& get(const std::string& name) const;
  void check_finite(const SafetensorsTensor& t, const void* data, size_t count,
                    int64_t first) const;
  std::string folder_;
  SafetensorsSet set_;
  std::map<std::string, const SafetensorsTensor*> by_name_;
};

}  // namespace radix
