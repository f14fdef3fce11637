#include "model/decoder_weights.h"

#include <cstdlib>
#include <sstream>
#include <stdexcept>

#include "model/rope.h"

namespace radix {
namespace {

using std::to_string;

std::string shape_str(const std::array<int64_t, 2>& s) {
  return "[" + to_string(s[0]) + ", " + to_string(s[1]) + "]";
}

// RADIX_FP8_KEEP_BF16 (docs/numerics.md, "fp8"): projections an fp8 model keeps in bf16, as a
// comma list of qkv, o, gate_up, down (in every layer), first:N and last:N (every projection of
// the first / last N layers). For accuracy experiments; unset: every projection is fp8.
struct KeepBf16 {
  bool kinds[4] = {false, false, false, false};  // qkv, o, gate_up, down
  int first = 0, last = 0;
  bool operator()(int layer, int layers, int kind) const {
    return kinds[kind] || layer < first || layer >= layers - last;
  }
};

KeepBf16 keep_bf16_from_env() {
  KeepBf16 k;
  const char* env = std::getenv("RADIX_FP8_KEEP_BF16");
  if (env == nullptr) return k;
  std::stringstream list(env);
  std::string item;
  static const char* const kKinds[] = {"qkv", "o", "gate_up", "down"};
  while (std::getline(list, item, ',')) {
    bool known = false;
    for (int i = 0; i < 4; ++i) {
      if (item == kKinds[i]) k.kinds[i] = known = true;
    }
    if (item.rfind("first:", 0) == 0) k.first = std::atoi(item.c_str() + 6), known = true;
    if (item.rfind("last:", 0) == 0) k.last = std::atoi(item.c_str() + 5), known = true;
    if (!known && !item.empty()) {
      throw std::invalid_argument("RADIX_FP8_KEEP_BF16: unknown item '" + item +
                                  "' (qkv, o, gate_up, down, first:N, last:N)");
    }
  }
  return k;
}

class Loader {
 public:
  Loader(const WeightSource& source, Backend& backend, bool fp8)
      : source_(source), backend_(backend), fp8_(fp8) {}

  using Parts = std::vector<std::pair<std::string, int64_t>>;  // (name, rows), stacked by rows

  // A projection weight, its parts stacked by rows (q/k/v, gate/up, or one). Without fp8 in
  // weight_dtype(). With fp8, e4m3 with one f32 scale per row (= output channel) in `scale`: a
  // part the checkpoint stores as e4m3 with a per-tensor or per-channel scale is copied as
  // stored; any other part is quantised per row on the backend from a temporary copy, in the
  // weight dtype, or in f32 for block-wise fp8 (its dequantised values, rounded only once more).
  // keep_bf16 (RADIX_FP8_KEEP_BF16, an accuracy experiment) leaves it in the weight dtype.
  Buffer projection(const Parts& parts, int64_t cols, Buffer& scale, bool keep_bf16 = false) {
    if (!fp8_ || keep_bf16) return fuse(parts, cols);
    int64_t rows = 0;
    for (const auto& [name, r] : parts) rows += r;
    Buffer q = backend_.alloc(DType::kF8E4M3, rows, cols);
    scale = backend_.alloc(DType::kF32, 1, rows);
    int64_t at = 0;
    for (const auto& [name, r] : parts) {
      check(name, r, cols);
      const Tensor q_part = q.tensor().row_slice(at, r);
      // One row of r scales: contiguous as the fp8 ops require (a col_slice keeps the stride).
      const Tensor s_part{static_cast<float*>(scale.tensor().data) + at, DType::kF32, 1, r, r};
      if (!source_.write_fp8(name, backend_, q_part, s_part)) {
        const DType from = source_.stored_fp8(name) ? DType::kF32 : backend_.weight_dtype();
        Buffer tmp = backend_.alloc(from, r, cols);
        source_.write(name, backend_, tmp);
        backend_.quantize_fp8_rows(tmp, q_part, s_part);
      }
      at += r;
    }
    return q;
  }

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

  // Stacks tensors along rows into one weight (1-D tensors of a bias: along columns of one row).
  Buffer fuse(const Parts& parts, int64_t cols) {
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

  Buffer fuse_vectors(const std::vector<std::pair<std::string, int64_t>>& parts) {
    int64_t cols = 0;
    for (const auto& [name, n] : parts) cols += n;
    Buffer b = backend_.alloc(backend_.weight_dtype(), 1, cols);
    int64_t at = 0;
    for (const auto& [name, n] : parts) {
      check(name, 1, n);
      source_.write(name, backend_, b.tensor().col_slice(at, n));
      at += n;
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
  bool fp8_ = false;
};

}  // namespace

void project(Backend& backend, const Tensor& x, const Tensor& w, const Tensor& w_scale,
             const Tensor& out, const Tensor& bias, bool accumulate) {
  if (w.dtype == DType::kF8E4M3) {
    backend.linear_fp8(x, Tensor{}, w, w_scale, out, accumulate, bias);
  } else {
    backend.linear(x, w, out, accumulate, bias);
  }
}

std::vector<ExpectedTensor> expected_decoder_tensors(const DecoderConfig& c) {
  const int64_t h = c.hidden_size, d = c.head_dim, inter = c.intermediate_size;
  std::vector<ExpectedTensor> out;
  out.push_back({"embed_tokens.weight", {c.vocab_size, h}});
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "layers." + to_string(l) + ".";
    const std::string a = p + "self_attn.";
    out.push_back({p + "input_layernorm.weight", {1, h}});
    out.push_back({a + "q_proj.weight", {c.q_dim(), h}});
    out.push_back({a + "k_proj.weight", {c.kv_dim(), h}});
    out.push_back({a + "v_proj.weight", {c.kv_dim(), h}});
    out.push_back({a + "o_proj.weight", {h, c.q_dim()}});
    if (c.qkv_bias) {
      out.push_back({a + "q_proj.bias", {1, c.q_dim()}});
      out.push_back({a + "k_proj.bias", {1, c.kv_dim()}});
      out.push_back({a + "v_proj.bias", {1, c.kv_dim()}});
    }
    if (c.o_bias) out.push_back({a + "o_proj.bias", {1, h}});
    if (c.qk_norm) {
      out.push_back({a + "q_norm.weight", {1, d}});
      out.push_back({a + "k_norm.weight", {1, d}});
    }
    out.push_back({p + "post_attention_layernorm.weight", {1, h}});
    if (c.sandwich_norms) {
      out.push_back({p + "pre_feedforward_layernorm.weight", {1, h}});
      out.push_back({p + "post_feedforward_layernorm.weight", {1, h}});
    }
    out.push_back({p + "mlp.gate_proj.weight", {inter, h}});
    out.push_back({p + "mlp.up_proj.weight", {inter, h}});
    out.push_back({p + "mlp.down_proj.weight", {h, inter}});
    if (c.mlp_bias) {
      out.push_back({p + "mlp.gate_proj.bias", {1, inter}});
      out.push_back({p + "mlp.up_proj.bias", {1, inter}});
      out.push_back({p + "mlp.down_proj.bias", {1, h}});
    }
  }
  out.push_back({"norm.weight", {1, h}});
  out.push_back({"lm_head.weight", {c.vocab_size, h}, false});
  if (c.num_labels > 0) out.push_back({"score.weight", {c.num_labels, h}, false});
  return out;
}

DecoderWeights load_decoder_weights(const DecoderConfig& c, const WeightSource& source,
                                    Backend& backend, const WeightNeeds& needs) {
  Loader loader(source, backend, needs.fp8_projections);
  const KeepBf16 keep = keep_bf16_from_env();
  const int64_t h = c.hidden_size, d = c.head_dim, inter = c.intermediate_size;
  DecoderWeights w;
  w.embed = loader.load("embed_tokens.weight", c.vocab_size, h);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "layers." + to_string(l) + ".";
    const std::string a = p + "self_attn.";
    LayerWeights lw;
    lw.input_norm = loader.load(p + "input_layernorm.weight", 1, h);
    lw.qkv = loader.projection({{a + "q_proj.weight", c.q_dim()},
                                {a + "k_proj.weight", c.kv_dim()},
                                {a + "v_proj.weight", c.kv_dim()}},
                               h, lw.qkv_scale, keep(l, c.num_hidden_layers, 0));
    if (c.qkv_bias) {
      lw.qkv_bias = loader.fuse_vectors({{a + "q_proj.bias", c.q_dim()},
                                         {a + "k_proj.bias", c.kv_dim()},
                                         {a + "v_proj.bias", c.kv_dim()}});
    }
    if (c.qk_norm) {
      lw.q_norm = loader.load(a + "q_norm.weight", 1, d);
      lw.k_norm = loader.load(a + "k_norm.weight", 1, d);
    }
    lw.o = loader.projection({{a + "o_proj.weight", h}}, c.q_dim(), lw.o_scale,
                             keep(l, c.num_hidden_layers, 1));
    if (c.o_bias) lw.o_bias = loader.load(a + "o_proj.bias", 1, h);
    lw.post_attention_norm = loader.load(p + "post_attention_layernorm.weight", 1, h);
    if (c.sandwich_norms) {
      lw.pre_mlp_norm = loader.load(p + "pre_feedforward_layernorm.weight", 1, h);
      lw.post_mlp_norm = loader.load(p + "post_feedforward_layernorm.weight", 1, h);
    }
    lw.gate_up =
        loader.projection({{p + "mlp.gate_proj.weight", inter}, {p + "mlp.up_proj.weight", inter}},
                          h, lw.gate_up_scale, keep(l, c.num_hidden_layers, 2));
    lw.down = loader.projection({{p + "mlp.down_proj.weight", h}}, inter, lw.down_scale,
                                keep(l, c.num_hidden_layers, 3));
    if (c.mlp_bias) {
      lw.gate_up_bias =
          loader.fuse_vectors({{p + "mlp.gate_proj.bias", inter}, {p + "mlp.up_proj.bias", inter}});
      lw.down_bias = loader.load(p + "mlp.down_proj.bias", 1, h);
    }
    w.layers.push_back(std::move(lw));
  }
  w.final_norm = loader.load("norm.weight", 1, h);
  if (!needs.head_rows.empty()) {
    std::vector<int64_t> rows;
    for (const int32_t id : needs.head_rows) {
      if (id < 0 || id >= c.vocab_size) {
        throw std::runtime_error("the reranker head reads token id " + to_string(id) +
                                 " but vocab_size is " + to_string(c.vocab_size));
      }
      rows.push_back(id);
    }
    const std::string head = c.tie_word_embeddings ? "embed_tokens.weight" : "lm_head.weight";
    if (!source.contains(head)) {
      throw std::runtime_error("the reranker head needs '" + head +
                               "' (tie_word_embeddings is false) but the checkpoint has none");
    }
    w.head_rows = loader.rows_of(head, c.vocab_size, h, rows);
  }
  if (needs.classifier) {
    if (c.num_labels <= 0 || !source.contains("score.weight")) {
      throw std::runtime_error("the classifier head needs 'score.weight' and num_labels > 0");
    }
    w.score = loader.load("score.weight", c.num_labels, h);
  }
  // The rope table is fp32 on every backend (Backend::rope).
  const std::vector<float> inv = rope_inv_freq(c);
  w.inv_freq = backend.alloc(DType::kF32, 1, static_cast<int64_t>(inv.size()));
  backend.upload(w.inv_freq, inv.data(), DType::kF32);
  return w;
}

}  // namespace radix
