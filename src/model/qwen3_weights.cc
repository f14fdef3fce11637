#include "model/qwen3_weights.h"

#include <stdexcept>

#include "model/model.h"

namespace radix {
namespace {

using std::to_string;

std::string shape_str(const std::array<int64_t, 2>& s) {
  return "[" + to_string(s[0]) + ", " + to_string(s[1]) + "]";
}

class Loader {
 public:
  Loader(const WeightSource& source, Backend& backend) : source_(source), backend_(backend) {}

  void check(const std::string& name, int64_t rows, int64_t cols) {
    if (!source_.contains(name)) throw std::runtime_error("missing tensor '" + name + "'");
    const auto shape = source_.shape(name);
    if (shape[0] != rows || shape[1] != cols) {
      throw std::runtime_error("tensor '" + name + "' has shape " + shape_str(shape) +
                               ", the config needs " + shape_str({rows, cols}));
    }
  }

  Buffer load(const std::string& name, int64_t rows, int64_t cols) {
    check(name, rows, cols);
    Buffer b = backend_.alloc(backend_.weight_dtype(), rows, cols);
    source_.write(name, backend_, b);
    return b;
  }

  // Stacks tensors of equal width along rows into one weight.
  Buffer fuse(const std::vector<std::pair<std::string, int64_t>>& parts, int64_t cols) {
    int64_t rows = 0;
    for (const auto& [name, r] : parts) rows += r;
    Buffer b = backend_.alloc(backend_.weight_dtype(), rows, cols);
    int64_t at = 0;
    for (const auto& [name, r] : parts) {
      check(name, r, cols);
      source_.write(name, backend_, b.tensor().row_slice(at, r));
      at += r;
    }
    return b;
  }

  Buffer rows_of(const std::string& name, int64_t rows, int64_t cols,
                 std::span<const int64_t> which) {
    check(name, rows, cols);
    Buffer b = backend_.alloc(backend_.weight_dtype(), static_cast<int64_t>(which.size()), cols);
    source_.write_rows(name, which, backend_, b);
    return b;
  }

 private:
  const WeightSource& source_;
  Backend& backend_;
};

}  // namespace

std::vector<ExpectedTensor> expected_qwen3_tensors(const Qwen3Config& c) {
  const int64_t h = c.hidden_size, d = c.head_dim, inter = c.intermediate_size;
  std::vector<ExpectedTensor> out;
  out.push_back({"embed_tokens.weight", {c.vocab_size, h}});
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "layers." + to_string(l) + ".";
    out.push_back({p + "input_layernorm.weight", {1, h}});
    out.push_back({p + "self_attn.q_proj.weight", {c.q_dim(), h}});
    out.push_back({p + "self_attn.k_proj.weight", {c.kv_dim(), h}});
    out.push_back({p + "self_attn.v_proj.weight", {c.kv_dim(), h}});
    out.push_back({p + "self_attn.o_proj.weight", {h, c.q_dim()}});
    out.push_back({p + "self_attn.q_norm.weight", {1, d}});
    out.push_back({p + "self_attn.k_norm.weight", {1, d}});
    out.push_back({p + "post_attention_layernorm.weight", {1, h}});
    out.push_back({p + "mlp.gate_proj.weight", {inter, h}});
    out.push_back({p + "mlp.up_proj.weight", {inter, h}});
    out.push_back({p + "mlp.down_proj.weight", {h, inter}});
  }
  out.push_back({"norm.weight", {1, h}});
  out.push_back({"lm_head.weight", {c.vocab_size, h}, false});
  if (c.num_labels > 0) out.push_back({"score.weight", {c.num_labels, h}, false});
  return out;
}

Qwen3Weights load_qwen3_weights(const Qwen3Config& c, const WeightSource& source, Backend& backend,
                                const WeightNeeds& needs) {
  Loader loader(source, backend);
  const int64_t h = c.hidden_size, d = c.head_dim, inter = c.intermediate_size;
  Qwen3Weights w;
  w.embed = loader.load("embed_tokens.weight", c.vocab_size, h);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "layers." + to_string(l) + ".";
    Qwen3LayerWeights lw;
    lw.input_norm = loader.load(p + "input_layernorm.weight", 1, h);
    lw.qkv = loader.fuse({{p + "self_attn.q_proj.weight", c.q_dim()},
                          {p + "self_attn.k_proj.weight", c.kv_dim()},
                          {p + "self_attn.v_proj.weight", c.kv_dim()}},
                         h);
    lw.q_norm = loader.load(p + "self_attn.q_norm.weight", 1, d);
    lw.k_norm = loader.load(p + "self_attn.k_norm.weight", 1, d);
    lw.o = loader.load(p + "self_attn.o_proj.weight", h, c.q_dim());
    lw.post_norm = loader.load(p + "post_attention_layernorm.weight", 1, h);
    lw.gate_up =
        loader.fuse({{p + "mlp.gate_proj.weight", inter}, {p + "mlp.up_proj.weight", inter}}, h);
    lw.down = loader.load(p + "mlp.down_proj.weight", h, inter);
    w.layers.push_back(std::move(lw));
  }
  w.final_norm = loader.load("norm.weight", 1, h);
  if (needs.reranker) {
    if (kRerankYesId >= c.vocab_size || kRerankNoId >= c.vocab_size) {
      throw std::runtime_error("the reranker head needs token ids " + to_string(kRerankYesId) +
                               " and " + to_string(kRerankNoId) + " but vocab_size is " +
                               to_string(c.vocab_size));
    }
    const int64_t rows[2] = {kRerankYesId, kRerankNoId};
    const std::string head = c.tie_word_embeddings ? "embed_tokens.weight" : "lm_head.weight";
    if (!source.contains(head)) {
      throw std::runtime_error("the reranker head needs '" + head +
                               "' (tie_word_embeddings is false) but the checkpoint has none");
    }
    w.yes_no = loader.rows_of(head, c.vocab_size, h, rows);
  }
  if (needs.classifier) {
    if (c.num_labels <= 0 || !source.contains("score.weight")) {
      throw std::runtime_error("the classifier head needs 'score.weight' and num_labels > 0");
    }
    w.score = loader.load("score.weight", c.num_labels, h);
  }
  return w;
}

}  // namespace radix
