// The op interface every backend implements (CPU fp32 in backend/cpu, CUDA bf16 in backend/cuda).
//
// The model forward (src/model) is written once over these ops. It never touches tensor memory:
// tensors are handles into the backend's memory, host <-> backend copies are explicit, and every
// op takes its dtypes from the handles, so the same forward runs on fp32 (CPU) and bf16 (CUDA).
// How to implement a backend, the dtype rules and the mask semantics: docs/backend.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

namespace radix {

// kF8E4M3: OCP fp8 e4m3 (1 sign, 4 exponent, 3 mantissa bits, finite max 448), one byte; only
// the CUDA backend stores it (fp8 projection weights and quantised activations, docs/numerics.md).
enum class DType : uint8_t { kF32, kBF16, kF16, kI32, kF8E4M3 };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);

// A 2-D row-major view of backend memory. Element (r, c) is at data + (r * row_stride + c) *
// dtype_size(dtype). A Tensor does not own memory: Backend::alloc returns an owning Buffer and
// views of it are plain copies of this struct. Index arrays are kI32 tensors with cols == 1.
struct Tensor {
  void* data = nullptr;  // backend memory (host memory for the CPU, device memory for CUDA)
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t row_stride = 0;  // in elements; == cols when contiguous

  bool contiguous() const { return row_stride == cols; }
  int64_t numel() const { return rows * cols; }
  // Rows [begin, begin + count). Pointer arithmetic only; valid for device pointers too.
  Tensor row_slice(int64_t begin, int64_t count) const;
  Tensor first_rows(int64_t count) const { return row_slice(0, count); }
  // Columns [begin, begin + count) of every row (a strided view).
  Tensor col_slice(int64_t begin, int64_t count) const;
};

// Owns one allocation made by a backend; frees it on destruction.
class Buffer {
 public:
  Buffer() = default;
  Buffer(Tensor view, std::shared_ptr<void> owner) : view_(view), owner_(std::move(owner)) {}
  const Tensor& tensor() const { return view_; }
  operator const Tensor&() const { return view_; }  // NOLINT: a Buffer is used where a view is
  bool empty() const { return view_.data == nullptr; }

 private:
  Tensor view_;
  std::shared_ptr<void> owner_;
};

// Which keys a query row may attend to. Every kind is expressed over the rows of the qkv tensor
// passed to Backend::attention; row indices are local to that tensor.
struct AttentionMask {
  enum class Kind : uint8_t {
    // Rows are sequences laid out back to back: sequence s holds rows [cu_seqlens[s],
    // cu_seqlens[s+1]); query row q sees key row k iff both are in the same sequence and k <= q.
    kVarlenCausal,
    // Rows are a prefix trie in DFS pre-order: query row q sees key row k iff
    // k <= q < subtree_end[k] (k is q or an ancestor of q).
    kTree,
    // As kVarlenCausal but without the k <= q rule: every row of a sequence sees every row of it
    // (bidirectional encoders such as gte-Qwen2). Never folded: a trie has no bidirectional form.
    kVarlenBidirectional,
  };
  Kind kind = Kind::kVarlenCausal;
  // kVarlenCausal and kVarlenBidirectional: [num_seqs + 1] kI32 in backend memory, plus host-side
  // sizes for launch shapes.
  Tensor cu_seqlens;
  int32_t num_seqs = 0;
  int32_t max_seqlen = 0;
  // kTree: [rows] kI32 in backend memory.
  Tensor subtree_end;
  // kTree, optional: the mean number of keys a row sees (ancestors + itself). A hint for the
  // kernel's key-tile size (long shared prefixes favour wide tiles, short branches narrow ones);
  // 0 = unknown. Never changes results.
  double mean_visible_keys = 0;
  // Sliding window, in token positions (not rows: a trie row's position is its depth). With
  // window > 0 a key row k the kind lets query row q see stays visible iff additionally
  // positions[q] - positions[k] < window (Mistral / Qwen2 `sliding_window`, Gemma2's local
  // layers; transformers' sliding_window_overlay). A row always sees itself. 0 = no window.
  // Causal kinds only (kVarlenCausal, kTree); a bidirectional mask with a window is an error.
  int32_t window = 0;
  // [rows] kI32 in backend memory: each row's position in its sequence; read only when window > 0.
  Tensor positions;
  // Nonzero: names this mask's contents (subtree_end, positions) for as long as calls pass the same
  // id, so that a backend may keep what it derives from them between calls (the CUDA tree
  // attention's per-tile bounds, computed once for all of a forward's layers instead of per layer).
  // A forward takes a fresh id from new_attention_mask_id() for every batch. 0: derive anew on
  // every call.
  uint64_t id = 0;
};

// A process-wide unique, nonzero AttentionMask::id.
uint64_t new_attention_mask_id();

// Shapes of the attention op; q, k and v heads are read in place from the fused qkv projection.
struct AttentionShape {
  int32_t num_q_heads = 0;
  int32_t num_kv_heads = 0;  // divides num_q_heads (GQA: q head h uses kv head h / (Hq / Hkv))
  int32_t head_dim = 0;
  float scale = 0.0f;  // softmax scale, usually 1 / sqrt(head_dim)
  // Logit soft-cap (Gemma2 `attn_logit_softcapping`): with softcap > 0 a score s = scale * q.k
  // becomes softcap * tanh(s / softcap) before masking and softmax. 0 = off.
  float softcap = 0.0f;
};

// Keys and values computed by earlier batches (the prefix cache, docs/prefix_cache.md), for
// Backend::prefix_attention. Its rows form a prefix trie in DFS pre-order of their own, separate
// from the query rows: query row q additionally sees prefix row k iff
// k <= anchor[q] < subtree_end[k] (k is the anchor or one of its ancestors), and, with a window,
// positions[q] - positions[k] < window (the query's position from the mask, the key's from here).
struct PrefixKeys {
  Tensor kv;           // [p, 2 * Hkv * d]: the k heads, then the v heads (activation dtype)
  Tensor subtree_end;  // [p] kI32
  Tensor positions;    // [p] kI32, read only when the mask has a window
  Tensor anchor;       // [n] kI32, one per query row: the deepest prefix row it sees, -1 for none
};

// The gate's activation in the gated MLP: out = act(gate) * up.
enum class Activation : uint8_t {
  kSiLU,      // x * sigmoid(x)                          (SwiGLU: Qwen, Llama, Mistral)
  kGeluTanh,  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))  (GeGLU: Gemma, Gemma2;
              //  transformers' "gelu_pytorch_tanh")
};
const char* activation_name(Activation act);

// How an RMSNorm applies its weight: y * w (most families) or y * (1 + w) (Gemma, Gemma2, whose
// checkpoints store w - 1). With kPlusOne the 1 + w sum and the product are taken in fp32, as
// transformers' GemmaRMSNorm does, and only the result is rounded to the output dtype.
enum class NormWeight : uint8_t { kPlain, kPlusOne };

class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::string name() const = 0;  // "cpu", "cuda:0"
  // Storage dtypes this backend wants; the model allocates with them and ops accept them.
  virtual DType weight_dtype() const = 0;      // CPU kF32, CUDA kBF16
  virtual DType activation_dtype() const = 0;  // CPU kF32, CUDA kBF16
  virtual DType residual_dtype() const = 0;    // CPU kF32, CUDA kF32 or kBF16

  // ---- memory -------------------------------------------------------------------------------
  // Allocates rows x cols of `dtype`, contiguous, uninitialised. Throws on failure.
  virtual Buffer alloc(DType dtype, int64_t rows, int64_t cols) = 0;
  // Copies a host array of rows x cols (contiguous, row-major, of `host_dtype`) into `dst`,
  // converting to dst.dtype (kF32/kBF16/kF16 to kF32/kBF16/kF16; kF8E4M3 only into kF8E4M3,
  // bytes as is; kI32 only to kI32).
  virtual void upload(const Tensor& dst, const void* host, DType host_dtype) = 0;
  // Copies `src` to a contiguous host array of src.rows x src.cols floats (waits for the device).
  virtual void download(const Tensor& src, float* host) = 0;
  // Fills `dst` with std * N(0, 1): element (r, c) of the view gets
  // std * random_normal(seed, first_index + r * cols + c) of backend/random_fill.h. Random models
  // are made this way on the device, never on the host; first_index lets a row slice continue the
  // stream of a larger tensor (the reranker's two LM-head rows).
  virtual void fill_random_normal(const Tensor& dst, uint64_t seed, float std,
                                  uint64_t first_index = 0) = 0;
  virtual void fill_constant(const Tensor& dst, float value) = 0;
  // Waits until all queued work is done (for timing; downloads synchronise by themselves).
  virtual void synchronize() = 0;

  // ---- ops (x, out: activation or residual dtype as stated; weights: weight_dtype) ------------
  // out[r, :] = table[ids[r], :] * scale.  table: [vocab, hidden]; ids: [n] kI32; out: [n, hidden].
  // scale != 1 (Gemma's sqrt(hidden)): the product is taken in fp32 from the stored element and
  // the caller passes scale already rounded to the weight dtype, so a bf16 backend reproduces
  // transformers' bf16 multiply (bf16(e * bf16(scale))) and an fp32 one its fp32 multiply.
  // Throws or errors on an id outside [0, vocab) where the backend can check it.
  virtual void embedding(const Tensor& table, const Tensor& ids, const Tensor& out,
                         float scale = 1.0f) = 0;

  // out = x / sqrt(mean(x^2) + eps) * weight (or * (1 + weight), see NormWeight), per row.
  // x: [n, h]; weight: [1, h]; out: [n, h].
  // fp8 output (backends with supports_fp8()): out may be kF8E4M3, with out_scale a contiguous
  // [n, 1] kF32 vector; the op then writes the normed rows as quantize_fp8_rows would quantise
  // them, with the amax taken over the fp32 values before any rounding to the activation dtype
  // (the input of the fp8 linear, without a separate quantisation pass). out_scale is empty
  // otherwise.
  virtual void rms_norm(const Tensor& x, const Tensor& weight, float eps, const Tensor& out,
                        NormWeight mode = NormWeight::kPlain,
                        const Tensor& out_scale = Tensor{}) = 0;

  // residual += delta; normed = rms_norm(residual) with `weight` and `mode`, per row (the new
  // residual is written back).  residual: [n, h] residual dtype; delta, normed: [n, h] activation
  // dtype, or normed kF8E4M3 with normed_scale as rms_norm's out and out_scale.
  virtual void add_rms_norm(const Tensor& residual, const Tensor& delta, const Tensor& weight,
                            float eps, const Tensor& normed, NormWeight mode = NormWeight::kPlain,
                            const Tensor& normed_scale = Tensor{}) = 0;

  // out = x @ w^T + bias (+ out if accumulate).  x: [n, k]; w: [m, k]; out: [n, m]; bias: [1, m]
  // of the weight dtype, or an empty Tensor (data == nullptr) for none. fp32 accumulation; the
  // bias is added in fp32 to the fp32 product before the single rounding to out's dtype.
  virtual void linear(const Tensor& x, const Tensor& w, const Tensor& out, bool accumulate = false,
                      const Tensor& bias = Tensor{}) = 0;

  // In place on the fused projection qkv: [n, (Hq + 2 Hkv) * d], columns [q heads | k heads |
  // v heads]. Each q head and each k head is RMS-normalised over d with q_norm / k_norm ([1, d]),
  // then rotated by RoPE (rotate-half: pairs (i, i + d/2), inv_freq_i = theta^(-2i/d)) at angle
  // positions[r] * inv_freq_i. v is untouched.  positions: [n] kI32. (Qwen3's fused path.)
  virtual void qk_norm_rope(const Tensor& qkv, const AttentionShape& shape, const Tensor& q_norm,
                            const Tensor& k_norm, const Tensor& positions, float eps,
                            float rope_theta) = 0;

  // In place on qkv (layout as in qk_norm_rope): every q head and every k head is rotated by RoPE
  // (rotate-half: pairs (i, i + d/2)) at angle fp32(positions[r]) * inv_freq[i], the product in
  // fp32 as transformers' fp32 outer product; cos and sin are taken of that fp32 angle. v is
  // untouched.  positions: [n] kI32; inv_freq: [1, d/2] kF32 in backend memory on every backend
  // (computed on the host with the config's rope scaling, see src/model/rope.h). d is even.
  virtual void rope(const Tensor& qkv, const AttentionShape& shape, const Tensor& positions,
                    const Tensor& inv_freq) = 0;

  // out[r, h*d:(h+1)*d] = softmax_k(score(r, k)) @ v_{g(h)} over the keys k that `mask` lets row r
  // see (every row sees at least itself), score = scale * q_h[r] . k_{g(h)}[k], soft-capped when
  // shape.softcap > 0.  qkv as in qk_norm_rope; out: [n, Hq * d]. Softmax in fp32.
  virtual void attention(const Tensor& qkv, const AttentionShape& shape, const AttentionMask& mask,
                         const Tensor& out) = 0;

  // out = act(gate) * up with gate_up = [gate | up], act in fp32.  gate_up: [n, 2i]; out: [n, i].
  // out may be kF8E4M3 with out_scale [n, 1] kF32 (fp8 backends), quantised per row from the
  // fp32 products as in rms_norm.
  virtual void gated_activation(const Tensor& gate_up, Activation act, const Tensor& out,
                                const Tensor& out_scale = Tensor{}) = 0;

  // out[r, :] = src[index[r], :], or zeros where index[r] < 0 (padding rows).  index: [n] kI32;
  // out: [n, c]; src and out have the same dtype. Used for the scatter mode (compact -> flat and
  // back) and to pick the last-token rows before the final norm and the head.
  virtual void gather_rows(const Tensor& src, const Tensor& index, const Tensor& out) = 0;

  // ---- fp8 (optional: backends without fp8 keep these defaults, which throw BackendError) ----
  // Whether quantize_fp8_rows and linear_fp8 work on this backend (CUDA: yes, CPU: no).
  virtual bool supports_fp8() const { return false; }

  // Per-row symmetric e4m3 quantisation: scale[r] = amax_r / 448 (amax_r = max |src[r, :]|), and
  // dst[r, c] = e4m3(src[r, c] * (448 / amax_r)), rounded to nearest even and saturated to
  // +-448; a row of zeros gets scale 0 and zeros. src: [n, k] float (f32/bf16/f16 as the backend
  // stores them); dst: [n, k] kF8E4M3; scale: [n, 1] or [1, n] kF32, contiguous.
  virtual void quantize_fp8_rows(const Tensor& src, const Tensor& dst, const Tensor& scale);

  // out = (x * x_scale) @ (w * w_scale)^T + bias (+ out if accumulate): the fp8 linear. w: [m, k]
  // kF8E4M3 with w_scale [1, m] kF32 (one scale per output channel, from quantize_fp8_rows);
  // x: [n, k] either kF8E4M3 with x_scale [n, 1] kF32 (one per row), or the activation dtype
  // with x_scale empty, in which case the backend quantises x per row itself (dynamic scales, as
  // quantize_fp8_rows). Products of e4m3 values accumulate in fp32; both scales and the bias
  // (weight dtype, [1, m], or empty) are applied in fp32 before the single rounding to out.
  virtual void linear_fp8(const Tensor& x, const Tensor& x_scale, const Tensor& w,
                          const Tensor& w_scale, const Tensor& out, bool accumulate = false,
                          const Tensor& bias = Tensor{});

  // ---- prefix cache (docs/prefix_cache.md); optional: the defaults throw BackendError ----------
  // Whether the two ops below are implemented.
  virtual bool supports_prefix_cache() const { return false; }
  // attention(qkv, shape, mask, out) where every query row also sees the prefix keys `prefix`
  // lets it see (PrefixKeys), in one softmax with its own keys. An anchor of -1 everywhere gives
  // attention() itself.
  virtual void prefix_attention(const Tensor& qkv, const AttentionShape& shape,
                                const AttentionMask& mask, const PrefixKeys& prefix,
                                const Tensor& out);
  // out[index[r], :] = src[r, :] for every r with index[r] >= 0 (the inverse of gather_rows; rows
  // with index < 0 are skipped; indices must be distinct).  src: [n, c]; index: [n] kI32;
  // out: [m, c] of src's dtype; index[r] < m.
  virtual void scatter_rows(const Tensor& src, const Tensor& index, const Tensor& out);

  // ---- recorded work (optional; docs/backend.md, "Recorded work") ----------------------------
  // A backend that queues ops on a device may record a sequence of ops once and replay it later
  // with one call (CUDA graphs), which takes the host's per-op cost off small batches. Between
  // begin_recording and end_recording the ops are recorded, not run; upload, download and
  // synchronize are errors there. A recording reads and writes the very memory its ops named, so
  // the caller replays it only after putting new inputs at the same places, and only while
  // memory_epoch() is unchanged. The defaults: no recording (begin_recording throws).
  class Recording {
   public:
    virtual ~Recording() = default;
  };
  virtual bool supports_recording() const { return false; }
  virtual void begin_recording();
  // Ends the recording begun last. Throws BackendError when an op could not be recorded; the
  // backend is then out of recording mode and runs ops as before.
  virtual std::unique_ptr<Recording> end_recording();
  // Queues the recorded ops, in order, as if they were called again with the same arguments.
  virtual void replay(const Recording& recording);
  // Changes whenever the backend frees memory of its own that ops may have used (scratch that grew
  // for a larger batch): every recording made before is stale and must not be replayed.
  virtual uint64_t memory_epoch() const { return 0; }
};

// What a caller may ask of a backend when creating it.
struct BackendOptions {
  std::string device = "cpu";  // "cpu" or "cuda" / "cuda:N"
  int threads = 0;             // CPU: OpenMP threads (0: the OpenMP default)
  // Projection weights (q/k/v, o, gate/up, down) in fp8 e4m3 with per-channel scales and
  // linear_fp8 for them; everything else stays in weight_dtype(). Loading a model with fp8 on a
  // backend without supports_fp8() is an error (the CPU backend runs fp32 only).
  bool fp8 = false;
  // CUDA: small batches' forwards may be recorded as CUDA graphs and replayed (docs/cuda.md,
  // "Recorded forwards"). false: every forward is queued op by op (the CLI's --enforce-eager, as
  // vLLM's). RADIX_CUDA_GRAPHS=0 turns recording off whatever this says.
  bool cuda_graphs = true;
};

// Creates the backend named by options.device. Throws std::invalid_argument for an unknown device
// and std::runtime_error when the device is known but unavailable (e.g. built without CUDA).
std::unique_ptr<Backend> create_backend(const BackendOptions& options);

// Thrown by backends for invalid shapes/dtypes and device failures, with a message naming the op.
class BackendError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace radix
