// A Hugging Face model folder: config.json, safetensors weights, and the sentence-transformers
// extras (1_Pooling/config.json, config_sentence_transformers.json), plus tokenizer.json.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "model/fp8_checkpoint.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "model/weight_source.h"

namespace radix {

// Reads config.json and the extras (radix_rerank_template.json: model/rerank_template.h). The
// default head: classifier for *ForSequenceClassification, embedding when sentence-transformers
// files are present, otherwise (a causal LM) reranker when its reranker tokens are known (Qwen3's
// default pair, or `reranker_tokens_given`), else embedding. Throws std::runtime_error naming the
// file for anything unsupported (e.g. a pooling mode other than last token or mean).
ModelInfo read_model_folder(const std::string& folder, bool reranker_tokens_given = false);

// The folder's safetensors as a WeightSource under canonical names (the "model." prefix of
// *ForCausalLM / *ForSequenceClassification exports removed). The constructor rejects
// unexpected tensors, missing required ones, wrong shapes and unsupported dtypes. With
// config.json's quantization_config quant_method "fp8", projection weights may be F8_E4M3 with a
// weight_scale (or weight_scale_inv) beside them; the scales are validated here, in full.
class SafetensorsWeights final : public WeightSource {
 public:
  SafetensorsWeights(const std::string& folder, const DecoderConfig& config);
  bool contains(const std::string& name) const override;
  std::array<int64_t, 2> shape(const std::string& name) const override;
  void write(const std::string& name, Backend& backend, const Tensor& dst) const override;
  void write_rows(const std::string& name, std::span<const int64_t> rows, Backend& backend,
                  const Tensor& dst) const override;
  bool stored_fp8(const std::string& name) const override;
  bool write_fp8(const std::string& name, Backend& backend, const Tensor& dst,
                 const Tensor& scale) const override;

 private:
  // An F8_E4M3 projection's scale: its kind and values (1, rows, or the block grid), read at load.
  struct Fp8Scales {
    Fp8ScaleKind kind = Fp8ScaleKind::kPerTensor;
    std::vector<float> values;
  };
  void read_fp8_scales(const std::map<std::string, const SafetensorsTensor*>& scales,
                       const std::map<std::string, const SafetensorsTensor*>& input_scales);
  const SafetensorsTensor& get(const std::string& name) const;
  void check_finite(const SafetensorsTensor& t, const void* data, size_t count,
                    int64_t first) const;
  std::string folder_;
  SafetensorsSet set_;
  std::map<std::string, const SafetensorsTensor*> by_name_;
  std::optional<Fp8Scheme> fp8_scheme_;
  std::map<std::string, Fp8Scales> fp8_;  // by weight name
};

}  // namespace radix
