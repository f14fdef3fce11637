// The shared forward of every decoder family, written once over the backend ops
// (docs/backend.md) on the fold plan's rows: plan, uploads, masks, scatter, last-layer pruning and
// heads. The family's layer functions (src/model/families/) do the rest.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/flops.h"
#include "model/heads.h"
#include "model/model_impl.h"
#include "model/prefix_hook.h"
#include "model/rope.h"

namespace radix {
namespace {

using std::to_string;

// Grows `buf` to at least rows x cols of `dtype` (never shrinks: a steady state allocates
// nothing).
bool ensure(Backend& backend, Buffer& buf, DType dtype, int64_t rows, int64_t cols) {
  if (!buf.empty() && buf.tensor().rows >= rows && buf.tensor().cols == cols &&
      buf.tensor().dtype == dtype) {
    return false;
  }
  buf = backend.alloc(dtype, std::max<int64_t>(rows, 1), cols);
  return true;
}

// The residual stream's dtype: the backend's (fp32 on both). RADIX_FP8_RESIDUAL=bf16 (read
// once; docs/numerics.md, "fp8") gives an fp8 forward a bf16 stream, as transformers and vLLM
// keep, into which its o and down projections add themselves: 3 % faster on the H200, with
// other e4m3 roundings (bench/RESULTS.md, call A2), so an experiment, not the default.
DType residual_dtype(const Backend& b, bool fp8) {
  static const bool fp8_bf16 = [] {
    const char* env = std::getenv("RADIX_FP8_RESIDUAL");
    const std::string v = env == nullptr ? "" : env;
    if (v != "" && v != "bf16" && v != "f32") {
      throw std::invalid_argument("RADIX_FP8_RESIDUAL must be bf16 or f32, got '" + v + "'");
    }
    return v == "bf16";
  }();
  return fp8 && fp8_bf16 ? b.activation_dtype() : b.residual_dtype();
}

// Uploads `host` into `t`, whose rows past host.size() (a recorded forward's padding) get
// pad(row).
template <typename Pad>
void upload_padded(Backend& be, const Tensor& t, const std::vector<int32_t>& host, Pad pad) {
  if (static_cast<int64_t>(host.size()) == t.rows) {
    be.upload(t, host.data(), DType::kI32);
    return;
  }
  std::vector<int32_t> padded(host);
  padded.resize(static_cast<size_t>(t.rows));
  for (auto r = static_cast<int32_t>(host.size()); r < t.rows; ++r) padded[r] = pad(r);
  be.upload(t, padded.data(), DType::kI32);
}

void validate_batch(const RaggedBatch& batch, const DecoderConfig& c) {
  if (batch.ids.size() != batch.positions.size()) {
    throw std::invalid_argument("batch: " + to_string(batch.ids.size()) + " ids but " +
                                to_string(batch.positions.size()) + " positions");
  }
  for (size_t i = 0; i < batch.ids.size(); ++i) {
    if (batch.ids[i] < 0 || batch.ids[i] >= c.vocab_size) {
      throw std::invalid_argument("batch: token id " + to_string(batch.ids[i]) + " at index " +
                                  to_string(i) + " is outside the vocabulary [0, " +
                                  to_string(c.vocab_size) + ")");
    }
    if (batch.positions[i] < 0 || batch.positions[i] >= c.max_position_embeddings) {
      throw std::invalid_argument("batch: position " + to_string(batch.positions[i]) +
                                  " at index " + to_string(i) + " is outside [0, " +
                                  to_string(c.max_position_embeddings) + ")");
    }
  }
}

// The plan must be the one built for this batch: the forward trusts its indices.
void check_plan(const RaggedBatch& batch, const FoldPlan& plan, AttentionMode mode) {
  const auto tokens = static_cast<int64_t>(batch.ids.size());
  const bool sizes_match =
      plan.num_tokens == tokens && static_cast<int64_t>(plan.scatter.size()) == tokens &&
      plan.num_sequences() == batch.num_sequences() && batch.cu_seqlens.front() == 0 &&
      batch.cu_seqlens.back() == tokens && static_cast<int64_t>(plan.ids.size()) == plan.num_rows &&
      static_cast<int64_t>(plan.positions.size()) == plan.num_rows &&
      static_cast<int64_t>(plan.subtree_end.size()) == plan.num_rows &&
      static_cast<int64_t>(plan.gather.size()) == plan.num_rows;
  if (!sizes_match) {
    throw std::invalid_argument("forward: the fold plan (" + to_string(plan.num_tokens) +
                                " tokens, " + to_string(plan.num_sequences()) +
                                " sequences) was not built for this batch (" + to_string(tokens) +
                                " tokens, " + to_string(batch.num_sequences()) + " sequences)");
  }
  for (int64_t t = 0; t < tokens; ++t) {
    const int32_t row = plan.scatter[t];
    if (row < 0 || row >= plan.num_rows || plan.ids[row] != batch.ids[t] ||
        plan.positions[row] != batch.positions[t]) {
      throw std::invalid_argument("forward: the fold plan does not match the batch at token " +
                                  to_string(t));
    }
  }
  for (int32_t q = 0; q < batch.num_sequences(); ++q) {
    const int32_t end = batch.cu_seqlens[q + 1];
    if (end <= batch.cu_seqlens[q] || end > tokens || plan.last_rows[q] != plan.scatter[end - 1]) {
      throw std::invalid_argument("forward: the fold plan's last row of sequence " + to_string(q) +
                                  " does not match the batch");
    }
  }
  if (mode == AttentionMode::kOff && plan.folded) {
    throw std::invalid_argument(
        "forward: attention mode off needs an unfolded plan (build it with threshold 0)");
  }
}

// The rows the head reads: each distinct last row once, in trie order. Sequences that end on the
// same row share it, and the order depends only on the trie (not on the input order), so a GEMM
// over these rows puts every sequence in the same row whatever the batch order: BLAS kernels that
// round by row position (OpenBLAS on AVX2) then give bit-identical results for a shuffled batch.
struct HeadRows {
  std::vector<int32_t> rows;  // distinct last rows, ascending
  std::vector<int32_t> slot;  // per sequence: its index in `rows`
};

HeadRows head_rows_of(const FoldPlan& plan) {
  HeadRows h;
  h.rows = plan.last_rows;
  std::sort(h.rows.begin(), h.rows.end());
  h.rows.erase(std::unique(h.rows.begin(), h.rows.end()), h.rows.end());
  h.slot.reserve(plan.last_rows.size());
  for (const int32_t r : plan.last_rows) {
    h.slot.push_back(
        static_cast<int32_t>(std::lower_bound(h.rows.begin(), h.rows.end(), r) - h.rows.begin()));
  }
  return h;
}

// Copies per-head-row outputs (`width` floats each) out to one entry per sequence.
void expand_to_sequences(std::vector<float>& values, int64_t width,
                         const std::vector<int32_t>& slot) {
  if (values.empty()) return;
  std::vector<float> out(slot.size() * static_cast<size_t>(width));
  for (size_t s = 0; s < slot.size(); ++s) {
    std::copy_n(values.begin() + slot[s] * width, width, out.begin() + s * width);
  }
  values.swap(out);
}

// Mean over the plan's rows of the keys each sees in tree attention, the kernel's tile-size hint.
// Padding rows see only themselves.
double mean_visible_keys(const FoldPlan& plan) {
  if (plan.num_rows == 0) return 0;
  const int64_t padding = plan.num_rows - plan.num_unique;
  return static_cast<double>(tree_attention_pairs(plan) + padding) /
         static_cast<double>(plan.num_rows);
}

// Gemma's embedding scale, rounded to the weight dtype as transformers' `torch.tensor(sqrt(h),
// dtype=model dtype)` (round to nearest even for bf16).
float embedding_scale(const DecoderConfig& c, DType weight_dtype) {
  if (!c.scale_embeddings) return 1.0f;
  const auto scale = static_cast<float>(std::sqrt(static_cast<double>(c.hidden_size)));
  if (weight_dtype != DType::kBF16) return scale;
  uint32_t bits;
  std::memcpy(&bits, &scale, 4);
  bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000u;
  float rounded;
  std::memcpy(&rounded, &bits, 4);
  return rounded;
}

// Records `enqueue` (the forward's device work, which leaves its result in `out`) under `key`, then
// replays it. A backend that cannot record it (an op it cannot capture) gets it op by op, now and
// for every later batch, and a warning says why. Returns whether it was recorded.
template <typename Enqueue>
bool record_and_replay(Backend& be, RecordedForwards& recorded, const RecordingKey& key,
                       Enqueue& enqueue, Tensor& out) {
  std::unique_ptr<Backend::Recording> recording;
  try {
    be.begin_recording();
    try {
      enqueue();
    } catch (...) {
      be.end_recording();  // leaves recording mode; throws itself when the capture broke
      throw;
    }
    recording = be.end_recording();
  } catch (const std::exception& e) {
    recorded.disable();
    std::fprintf(stderr,
                 "radix: %s cannot record the forward (%s); queueing op by op from now on\n",
                 be.name().c_str(), e.what());
    enqueue();
    return false;
  }
  be.replay(*recording);
  recorded.store(key, RecordedForwards::Entry{std::move(recording), out});
  return true;
}

}  // namespace

void DecoderArena::reserve(Backend& b, const DecoderConfig& c, int64_t need_rows,
                           int64_t need_tokens, int64_t need_seqs, int64_t head_cols, bool fp8) {
  const DType adt = b.activation_dtype(), res = residual_dtype(b, fp8);
  // Every new buffer moves the generation: recordings naming the old ones are stale.
  auto grow = [&](Buffer& buf, DType dtype, int64_t r, int64_t cols) {
    if (ensure(b, buf, dtype, r, cols)) ++generation;
  };
  if (need_rows > rows) {
    rows = need_rows;
    grow(normed, adt, rows, c.hidden_size);
    grow(qkv, adt, rows, c.qkv_dim());
    grow(attn, adt, rows, c.q_dim());
    grow(delta, adt, rows, c.hidden_size);
    if (c.sandwich_norms) grow(tmp, adt, rows, c.hidden_size);
    grow(gate_up, adt, rows, 2 * static_cast<int64_t>(c.intermediate_size));
    grow(act, adt, rows, c.intermediate_size);
    grow(ids, DType::kI32, rows, 1);
    grow(positions, DType::kI32, rows, 1);
    grow(subtree_end, DType::kI32, rows, 1);
    grow(gather, DType::kI32, rows, 1);
  }
  // fp8: the norms and the gated activation write the projections' inputs as e4m3 rows with
  // per-row scales (the bf16 forms stay for the last layer's norm, which feeds the head). Apart
  // from the growth above: an arena reserved at load (no fp8 known then) already has its rows.
  if (fp8) {
    grow(normed_fp8, DType::kF8E4M3, rows, c.hidden_size);
    grow(normed_scale, DType::kF32, rows, 1);
    grow(act_fp8, DType::kF8E4M3, rows, c.intermediate_size);
    grow(act_scale, DType::kF32, rows, 1);
  }
  if (need_tokens > tokens) {
    tokens = need_tokens;
    grow(scatter, DType::kI32, tokens, 1);
    // qkv_flat / attn_flat / positions_flat only for the scatter mode: allocated on first use.
  }
  if (need_seqs > seqs || head_out.empty() || head_out.tensor().cols < head_cols) {
    seqs = std::max(seqs, need_seqs);
    grow(last_attn, adt, seqs, c.q_dim());
    grow(last_normed, adt, seqs, c.hidden_size);
    if (head_out.empty() || head_out.tensor().rows < seqs || head_out.tensor().cols < head_cols) {
      head_out = b.alloc(DType::kF32, seqs, head_cols);  // head logits stay fp32
      ++generation;
    }
    grow(last_rows, DType::kI32, seqs, 1);
    grow(cu_seqlens, DType::kI32, seqs + 1, 1);
  }
  // The residual streams, here rather than in the growth above: an arena reserved at load (no
  // fp8 known then) takes the fp8 residual dtype on its first fp8 forward.
  if (rows > 0) grow(residual, res, rows, c.hidden_size);
  if (seqs > 0) grow(last_residual, res, seqs, c.hidden_size);
}

// Bidirectional models are never folded: a trie has no bidirectional form, so every mode runs
// as off there.
AttentionMode Model::Impl::effective_mode(AttentionMode asked) const {
  return info.config.causal ? asked : AttentionMode::kOff;
}

ForwardResult Model::Impl::forward(const RaggedBatch& batch, const ForwardOptions& options) {
  // off: the identity plan (one row per token); scatter and tree: always folded.
  FoldOptions fold;
  fold.threshold = effective_mode(options.mode) == AttentionMode::kOff ? 0.0 : 1.0;
  if (batch.ids.size() == batch.positions.size()) {  // else forward() below says what is wrong
    build_fold_plan(batch.ids, batch.positions, batch.cu_seqlens, fold, plan);
  }
  return forward(batch, plan, options);
}

ForwardResult Model::Impl::forward(const RaggedBatch& batch, const FoldPlan& plan,
                                   const ForwardOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const DecoderConfig& c = info.config;
  Backend& be = *backend;
  const HeadKind head = options.head.value_or(info.head);
  validate_batch(batch, c);
  check_head_options(head, options, info, weights);

  ForwardResult result;
  result.head = head;
  result.num_sequences = batch.num_sequences();
  result.num_tokens = batch.num_tokens();
  if (result.num_sequences <= 0) {
    result.dim = head_dim_of(head, options, info);
    return result;
  }

  const AttentionMode mode = effective_mode(options.mode);
  check_plan(batch, plan, mode);
  // Rows that hold tokens; padding rows (after them) are computed on but never read.
  const int64_t real_rows = plan.folded ? plan.num_unique : plan.num_tokens;
  const int64_t tokens = batch.num_tokens();
  const int32_t seqs = batch.num_sequences();
  result.num_rows = plan.num_rows;
  const HeadRows head_rows = head_rows_of(plan);
  const int64_t num_head_rows = static_cast<int64_t>(head_rows.rows.size());
  int32_t max_seqlen = 0, max_position = 0;
  for (int32_t s = 0; s < seqs; ++s) {
    max_seqlen = std::max(max_seqlen, batch.cu_seqlens[s + 1] - batch.cu_seqlens[s]);
  }
  for (const int32_t p : batch.positions) max_position = std::max(max_position, p);

  // Without hidden states, a last-token head reads only each sequence's last row, and after the
  // last layer's attention no row depends on another: that layer's o_proj and MLP (most of its
  // matmul work) run on the last rows alone. K and V of every row are still computed, since the
  // last rows attend to them. Mean pooling reads every row, so it runs the full layer.
  const bool mean_pooling = head == HeadKind::kEmbedding && info.pooling == "mean";
  const bool last_rows_only = !options.return_hidden_states && !mean_pooling;
  if (options.prefix != nullptr && !last_rows_only) {
    throw std::invalid_argument(
        "forward: the prefix cache serves last-token heads only (no mean pooling, no hidden "
        "states)");
  }

  // A small batch runs as a recording of its bucket's forward (recorded_forwards.h): its rows
  // padded to the bucket (padding rows see only themselves, as the fold plan's own), its last
  // rows padded with -1 (zero rows, never read), its attention the tree kernels'. An unfolded
  // causal batch (mode off: a single request, or one that does not fold) is a trie too: the
  // identity plan's rows are chains, each row's subtree ending with its sequence, so the tree
  // mask gives exactly the causal one.
  const int64_t max_recorded_rows = RecordedForwards::max_rows(c.layer_matmul_params());
  const bool tree_shaped =
      mode == AttentionMode::kTree || (mode == AttentionMode::kOff && c.causal && !plan.folded);
  const bool recordable =
      options.record && be.supports_recording() && !recorded.disabled() && tree_shaped &&
      (options.prefix == nullptr || options.prefix->recordable()) && last_rows_only &&
      RecordedForwards::row_bucket(plan.num_rows, max_recorded_rows) > 0;
  const AttentionMode run_mode = recordable ? AttentionMode::kTree : mode;
  RecordingKey key;
  if (recordable) {
    key.rows = RecordedForwards::row_bucket(plan.num_rows, max_recorded_rows);
    key.head_rows = RecordedForwards::head_bucket(num_head_rows);
    key.head = static_cast<int32_t>(head);
    key.tile_hint = RecordedForwards::tile_hint(mean_visible_keys(plan));
    key.window = c.sliding_window > 0 && max_position >= c.sliding_window;
  }
  const int64_t n = recordable ? key.rows : plan.num_rows;
  const int64_t head_n = recordable ? key.head_rows : num_head_rows;
  // The prefix cache hook's arrays, for n rows (padding rows see no cached key, store nothing).
  if (options.prefix != nullptr) {
    key.prefix = options.prefix->prepare(n, run_mode == AttentionMode::kScatter);
  }
  // A hook that pads but cannot name its arguments runs on the padded rows op by op.
  const bool record = recordable && (options.prefix == nullptr || !key.prefix.empty());

  const int64_t head_cols = std::max<int64_t>(2, c.num_labels);
  // At least `seqs` rows: identical sequences share their rows, and the last layer's MLP runs on
  // one row per sequence.
  // fp8 projections: the norms and gated activations that feed them write e4m3 directly.
  auto is_fp8 = [](const Buffer& w) { return w.tensor().dtype == DType::kF8E4M3; };
  bool fp8 = false;
  for (const LayerWeights& w : weights.layers) fp8 = fp8 || is_fp8(w.qkv) || is_fp8(w.down);
  arena.reserve(be, c, std::max<int64_t>(n, seqs), tokens, std::max<int64_t>(seqs, head_n),
                head_cols, fp8);
  DecoderArena& a = arena;

  // Per-batch index arrays.
  const Tensor ids = a.ids.tensor().first_rows(n);
  const Tensor positions = a.positions.tensor().first_rows(n);
  const Tensor last_rows = a.last_rows.tensor().first_rows(head_n);
  upload_padded(be, ids, plan.ids, [](int32_t) { return 0; });
  upload_padded(be, positions, plan.positions, [](int32_t) { return 0; });
  upload_padded(be, last_rows, head_rows.rows, [](int32_t) { return -1; });
  AttentionMask varlen;
  varlen.kind =
      c.causal ? AttentionMask::Kind::kVarlenCausal : AttentionMask::Kind::kVarlenBidirectional;
  varlen.num_seqs = seqs;
  varlen.max_seqlen = max_seqlen;
  varlen.positions = positions;  // off: rows are tokens
  AttentionMask tree;
  tree.kind = AttentionMask::Kind::kTree;
  tree.positions = positions;
  tree.id = new_attention_mask_id();  // the same subtree_end and positions for every layer
  Tensor scatter_index, gather_index, qkv_flat, attn_flat;
  if (run_mode != AttentionMode::kTree) {
    varlen.cu_seqlens = a.cu_seqlens.tensor().first_rows(seqs + 1);
    be.upload(varlen.cu_seqlens, batch.cu_seqlens.data(), DType::kI32);
  }
  if (run_mode == AttentionMode::kTree) {
    tree.subtree_end = a.subtree_end.tensor().first_rows(n);
    upload_padded(be, tree.subtree_end, plan.subtree_end, [](int32_t r) { return r + 1; });
    tree.mean_visible_keys = recordable ? key.tile_hint : mean_visible_keys(plan);
  }
  if (run_mode == AttentionMode::kScatter) {
    ensure(be, a.qkv_flat, be.activation_dtype(), a.tokens, c.qkv_dim());
    ensure(be, a.attn_flat, be.activation_dtype(), a.tokens, c.q_dim());
    scatter_index = a.scatter.tensor().first_rows(tokens);
    gather_index = a.gather.tensor().first_rows(real_rows);  // padding rows gather nothing
    be.upload(scatter_index, plan.scatter.data(), DType::kI32);
    be.upload(gather_index, plan.gather.data(), DType::kI32);
    qkv_flat = a.qkv_flat.tensor().first_rows(tokens);
    attn_flat = a.attn_flat.tensor().first_rows(tokens);
    if (c.sliding_window > 0) {  // the window reads token positions on the flat rows
      ensure(be, a.positions_flat, DType::kI32, a.tokens, 1);
      varlen.positions = a.positions_flat.tensor().first_rows(tokens);
      be.upload(varlen.positions, batch.positions.data(), DType::kI32);
    }
  }
  if (c.rope_scaling.type == RopeScaling::Type::kDynamic) {
    const std::vector<float> inv = rope_inv_freq(c, max_position);
    be.upload(weights.inv_freq, inv.data(), DType::kF32);
  }

  const AttentionShape shape{c.num_attention_heads, c.num_key_value_heads, c.head_dim,
                             c.attention_scale(), static_cast<float>(c.attn_logit_softcap)};
  const float eps = static_cast<float>(c.rms_norm_eps);

  // This layer's attention, in the batch's mode, with the layer's window; through the prefix
  // cache's hook when the batch continues cached prefixes.
  int32_t window = 0, layer_index = 0;
  auto attend = [&](const Tensor& qkv_rows, const Tensor& out) {
    const AttentionShape& shape_ref = shape;
    auto run = [&](const Tensor& q, const AttentionMask& m, const Tensor& o, bool flat) {
      if (options.prefix != nullptr) {
        options.prefix->attend(layer_index, qkv_rows, q, shape_ref, m, o, flat);
      } else {
        be.attention(q, shape_ref, m, o);
      }
    };
    switch (run_mode) {
      case AttentionMode::kOff: {  // padding rows (after the tokens) attend to nothing
        AttentionMask m = varlen;
        m.window = window;
        run(qkv_rows.first_rows(real_rows), m, out.first_rows(real_rows), false);
        break;
      }
      case AttentionMode::kScatter: {
        AttentionMask m = varlen;
        m.window = window;
        be.gather_rows(qkv_rows, scatter_index, qkv_flat);  // trie rows -> tokens
        run(qkv_flat, m, attn_flat, true);
        be.gather_rows(attn_flat, gather_index, out.first_rows(real_rows));  // tokens -> rows
        break;
      }
      case AttentionMode::kTree: {
        AttentionMask m = tree;
        m.window = window;
        run(qkv_rows, m, out, false);
        break;
      }
    }
  };

  const Tensor residual = a.residual.tensor().first_rows(n);
  const Tensor normed = a.normed.tensor().first_rows(n);
  const Tensor qkv = a.qkv.tensor().first_rows(n);
  const Tensor attn = a.attn.tensor().first_rows(n);
  // The o and down projections add themselves into the residual in their GEMM's epilogue
  // (project_add_norm), except in the fp8 forward on its default fp32 stream: there the products
  // are rounded to bf16 and added by the norm, the numerics its accuracy tests were set on.
  const bool accumulate = !fp8 || residual.dtype == be.activation_dtype();
  const LayerContext ctx{be, c, shape, eps, positions, weights.inv_freq, attend, accumulate};
  // The projections' input rows: e4m3 with scales where the projection reading them is fp8 (the
  // producing norm or gated activation quantises them), else bf16; a bf16 input to an fp8
  // projection (the last layer's norms, which also feed the head) is quantised by linear_fp8.
  const GemmInput normed_bf16{normed, Tensor{}};
  const GemmInput normed_e4m3 =
      fp8 ? GemmInput{a.normed_fp8.tensor().first_rows(n), a.normed_scale.tensor().first_rows(n)}
          : normed_bf16;
  auto scratch = [&](int64_t r, bool act_fp8) {
    const GemmInput act =
        act_fp8 ? GemmInput{a.act_fp8.tensor().first_rows(r), a.act_scale.tensor().first_rows(r)}
                : GemmInput{a.act.tensor().first_rows(r), Tensor{}};
    return LayerScratch{a.delta.tensor().first_rows(r),
                        a.tmp.empty() ? Tensor{} : a.tmp.tensor().first_rows(r),
                        a.gate_up.tensor().first_rows(r), act};
  };

  const size_t num_layers = weights.layers.size();
  const Tensor last_normed = a.last_normed.tensor().first_rows(head_n);
  const FamilyLayer& layer = *family->layer;
  const NormWeight nw = c.norm_weight;

  // The device work from the embedding to the head (the part a recording holds): no uploads, no
  // downloads, and every host choice in it fixed by the recording's key.
  Tensor head_out;  // what the host reads after
  auto enqueue_forward = [&] {
    be.embedding(weights.embed, ids, residual, embedding_scale(c, be.weight_dtype()));
    GemmInput layer_input = is_fp8(weights.layers[0].qkv) ? normed_e4m3 : normed_bf16;
    be.rms_norm(residual, weights.layers[0].input_norm, eps, layer_input.x, nw, layer_input.scale);
    for (size_t l = 0; l < num_layers; ++l) {
      const LayerWeights& w = weights.layers[l];
      // A window wider than every position difference in the batch hides nothing: drop it, so the
      // kernels take their window-free (faster) path. Exact: pos_q - pos_k <= max_position.
      window = c.layer_is_sliding(static_cast<int32_t>(l)) && max_position >= c.sliding_window
                   ? c.sliding_window
                   : 0;
      layer_index = static_cast<int32_t>(l);
      layer.attention(ctx, w, layer_input, qkv, attn);
      const bool last = l + 1 == num_layers;
      const Tensor& next_norm = last ? weights.final_norm : weights.layers[l + 1].input_norm;
      if (last && last_rows_only) {
        const Tensor last_attn = a.last_attn.tensor().first_rows(head_n);
        const Tensor last_residual = a.last_residual.tensor().first_rows(head_n);
        be.gather_rows(attn, last_rows, last_attn);
        be.gather_rows(residual, last_rows, last_residual);
        layer.finish(ctx, w, last_attn, last_residual, next_norm, GemmInput{last_normed, Tensor{}},
                     scratch(head_n, is_fp8(w.down)));
      } else {
        // finish's norms feed this layer's gate_up and the next layer's qkv.
        const bool e4m3 = !last && is_fp8(w.gate_up) && is_fp8(weights.layers[l + 1].qkv);
        layer_input = e4m3 ? normed_e4m3 : normed_bf16;
        layer.finish(ctx, w, attn, residual, next_norm, layer_input, scratch(n, is_fp8(w.down)));
      }
    }
    if (last_rows_only) head_out = enqueue_head(head, weights, be, last_normed, a.head_out);
  };

  if (!record) {
    enqueue_forward();
  } else {
    switch (recorded.step(key, be.memory_epoch(), a.generation)) {
      case RecordedForwards::Step::kRunOps:  // first sighting: sizes the backend's scratch
        enqueue_forward();
        break;
      case RecordedForwards::Step::kRecord:
        if (record_and_replay(be, recorded, key, enqueue_forward, head_out)) {
          result.queued = ForwardQueue::kRecorded;
        }
        break;
      case RecordedForwards::Step::kReplay: {
        const RecordedForwards::Entry* entry = recorded.find(key);
        be.replay(*entry->recording);
        recorded.count_replay();
        head_out = entry->out;
        result.queued = ForwardQueue::kReplayed;
        break;
      }
    }
  }

  result.enqueue_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::vector<float> rows_host;  // the final norm of every row, when asked or mean-pooled
  if (!last_rows_only) {
    // `normed` holds the final norm of every row.
    be.gather_rows(normed, last_rows, last_normed);
    head_out = enqueue_head(head, weights, be, last_normed, a.head_out);
    rows_host.resize(static_cast<size_t>(n) * c.hidden_size);
    be.download(normed, rows_host.data());
  }
  if (options.return_hidden_states) {
    result.hidden_states.resize(static_cast<size_t>(tokens) * c.hidden_size);
    for (int64_t i = 0; i < tokens; ++i) {
      std::copy_n(rows_host.begin() + plan.scatter[i] * c.hidden_size, c.hidden_size,
                  result.hidden_states.begin() + i * c.hidden_size);
    }
  }

  if (mean_pooling) {
    mean_pool_embeddings(rows_host, plan.scatter, batch.cu_seqlens, options, info, result);
    return result;
  }
  read_head(head, options, info, be, head_out, num_head_rows, result);
  expand_to_sequences(result.values, result.dim, head_rows.slot);
  expand_to_sequences(result.yes_no_logits, 2, head_rows.slot);
  return result;
}

}  // namespace radix
