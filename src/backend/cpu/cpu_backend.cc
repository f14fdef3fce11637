#include "backend/cpu/cpu_backend.h"

#include <omp.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/openblas_threads.h"
#include "backend/op_checks.h"
#include "backend/random_fill.h"

namespace radix {
namespace {

using std::to_string;

constexpr OpChecks kCheck{"cpu"};

// The CPU backend has no fp8: an op asked for e4m3 output (a scale vector given) is an error.
void no_fp8_output(const char* op, const Tensor& scale) {
  RADIX_OP_REQUIRE(kCheck, scale.data == nullptr, op,
                   "fp8 outputs need an fp8 backend (--device cuda)");
}

const float* f32(const Tensor& t) { return static_cast<const float*>(t.data); }
float* f32_mut(const Tensor& t) { return static_cast<float*>(t.data); }
const int32_t* i32(const Tensor& t) { return static_cast<const int32_t*>(t.data); }

class CpuBackend final : public Backend {
 public:
  // One thread pool: OpenMP splits each GEMM and OpenBLAS runs single-threaded inside it (two
  // pools spinning against each other on few cores cost more than the GEMMs themselves). The ops
  // that call BLAS say so for their duration only (openblas_threads.h: no process-wide setting).
  explicit CpuBackend(int threads) : threads_(threads > 0 ? threads : omp_get_max_threads()) {}

  std::string name() const override { return "cpu"; }
  DType weight_dtype() const override { return DType::kF32; }
  DType activation_dtype() const override { return DType::kF32; }
  DType residual_dtype() const override { return DType::kF32; }

  Buffer alloc(DType dtype, int64_t rows, int64_t cols) override {
    RADIX_OP_REQUIRE(kCheck, dtype == DType::kF32 || dtype == DType::kI32, "alloc",
                     std::string("stores f32 and i32 only, asked for ") + dtype_name(dtype));
    RADIX_OP_REQUIRE(kCheck, rows >= 0 && cols >= 0, "alloc",
                     "negative shape [" + to_string(rows) + ", " + to_string(cols) + "]");
    const size_t bytes = static_cast<size_t>(rows) * static_cast<size_t>(cols) * 4;
    // 64-byte aligned rows start for SIMD and BLAS; at least one line so data is never null.
    const size_t padded = (bytes + 63) / 64 * 64 + 64;
    void* data = std::aligned_alloc(64, padded);
    if (data == nullptr) {
      throw BackendError("cpu alloc: out of memory allocating " + to_string(bytes) + " bytes");
    }
    Tensor t{data, dtype, rows, cols, cols};
    return Buffer(t, std::shared_ptr<void>(data, std::free));
  }

  void upload(const Tensor& dst, const void* host, DType host_dtype) override {
    if (dst.dtype == DType::kI32 || host_dtype == DType::kI32) {
      RADIX_OP_REQUIRE(
          kCheck, dst.dtype == host_dtype, "upload",
          std::string("cannot copy ") + dtype_name(host_dtype) + " into " + shape_str(dst));
    }
    const size_t elem = dtype_size(host_dtype);
    const auto* src = static_cast<const unsigned char*>(host);
    for (int64_t r = 0; r < dst.rows; ++r) {
      void* out = static_cast<char*>(dst.data) + r * dst.row_stride * 4;
      const void* in = src + static_cast<size_t>(r) * dst.cols * elem;
      if (dst.dtype == DType::kI32) {
        std::memcpy(out, in, static_cast<size_t>(dst.cols) * 4);
      } else {
        cpu::convert_to_f32(in, host_dtype, static_cast<float*>(out), dst.cols);
      }
    }
  }

  void download(const Tensor& src, float* host) override {
    kCheck.dtype("download", "src", src, DType::kF32);
    for (int64_t r = 0; r < src.rows; ++r) {
      std::memcpy(host + r * src.cols, f32(src) + r * src.row_stride,
                  static_cast<size_t>(src.cols) * 4);
    }
  }

  void fill_random_normal(const Tensor& dst, uint64_t seed, float std,
                          uint64_t first_index) override {
    kCheck.dtype("fill_random_normal", "dst", dst, DType::kF32);
    const int64_t cols = dst.cols;
#pragma omp parallel for num_threads(threads_) if (dst.numel() > 65536)
    for (int64_t r = 0; r < dst.rows; ++r) {
      float* row = f32_mut(dst) + r * dst.row_stride;
      const uint64_t base = first_index + static_cast<uint64_t>(r * cols);
      for (int64_t c = 0; c < cols; ++c) row[c] = std * random_normal(seed, base + c);
    }
  }

  void fill_constant(const Tensor& dst, float value) override {
    kCheck.dtype("fill_constant", "dst", dst, DType::kF32);
    for (int64_t r = 0; r < dst.rows; ++r) {
      float* row = f32_mut(dst) + r * dst.row_stride;
      std::fill(row, row + dst.cols, value);
    }
  }

  void synchronize() override {}

  void embedding(const Tensor& table, const Tensor& ids, const Tensor& out, float scale) override {
    kCheck.dtype("embedding", "table", table, DType::kF32);
    kCheck.dtype("embedding", "out", out, DType::kF32);
    kCheck.index("embedding", "ids", ids, out.rows);
    kCheck.shape("embedding", "out", out, out.rows, table.cols);
    for (int64_t r = 0; r < out.rows; ++r) {
      const int32_t id = i32(ids)[r];
      RADIX_OP_REQUIRE(kCheck, id >= 0 && id < table.rows, "embedding",
                       "token id " + to_string(id) + " outside the vocabulary [0, " +
                           to_string(table.rows) + ")");
    }
    cpu::gather_rows(table.data, table.row_stride, table.rows, i32(ids), out.data, out.row_stride,
                     out.rows, out.cols, threads_);
    if (scale != 1.0f)
      cpu::scale_rows(f32_mut(out), out.row_stride, out.rows, out.cols, scale, threads_);
  }

  void rms_norm(const Tensor& x, const Tensor& weight, float eps, const Tensor& out,
                NormWeight mode, const Tensor& out_scale) override {
    no_fp8_output("rms_norm", out_scale);
    kCheck.dtype("rms_norm", "x", x, DType::kF32);
    kCheck.dtype("rms_norm", "weight", weight, DType::kF32);
    kCheck.dtype("rms_norm", "out", out, DType::kF32);
    kCheck.shape("rms_norm", "weight", weight, 1, x.cols);
    kCheck.shape("rms_norm", "out", out, x.rows, x.cols);
    cpu::rms_norm(f32(x), x.row_stride, f32(weight), f32_mut(out), out.row_stride, x.rows, x.cols,
                  eps, mode == NormWeight::kPlusOne, threads_);
  }

  void add_rms_norm(const Tensor& residual, const Tensor& delta, const Tensor& weight, float eps,
                    const Tensor& normed, NormWeight mode, const Tensor& normed_scale) override {
    no_fp8_output("add_rms_norm", normed_scale);
    kCheck.dtype("add_rms_norm", "residual", residual, DType::kF32);
    kCheck.dtype("add_rms_norm", "delta", delta, DType::kF32);
    kCheck.dtype("add_rms_norm", "weight", weight, DType::kF32);
    kCheck.dtype("add_rms_norm", "normed", normed, DType::kF32);
    kCheck.shape("add_rms_norm", "delta", delta, residual.rows, residual.cols);
    kCheck.shape("add_rms_norm", "weight", weight, 1, residual.cols);
    kCheck.shape("add_rms_norm", "normed", normed, residual.rows, residual.cols);
    cpu::add_rms_norm(f32_mut(residual), residual.row_stride, f32(delta), delta.row_stride,
                      f32(weight), f32_mut(normed), normed.row_stride, residual.rows, residual.cols,
                      eps, mode == NormWeight::kPlusOne, threads_);
  }

  void linear(const Tensor& x, const Tensor& w, const Tensor& out, bool accumulate,
              const Tensor& bias) override {
    kCheck.dtype("linear", "x", x, DType::kF32);
    kCheck.dtype("linear", "w", w, DType::kF32);
    kCheck.dtype("linear", "out", out, DType::kF32);
    RADIX_OP_REQUIRE(
        kCheck, w.cols == x.cols, "linear",
        "x is " + shape_str(x) + " but w is " + shape_str(w) + " (inner sizes differ)");
    kCheck.shape("linear", "out", out, x.rows, w.rows);
    kCheck.bias("linear", bias, w.rows, DType::kF32);
    if (x.rows == 0 || w.rows == 0) return;
    if (bias.data != nullptr) {
      // out (+)= bias first, then the GEMM accumulates onto it: bias + x @ w^T as torch's addmm.
      cpu::broadcast_bias(f32(bias), f32_mut(out), out.row_stride, out.rows, out.cols, accumulate,
                          threads_);
      accumulate = true;
    }
    if (x.cols == 0) {
      if (!accumulate) fill_constant(out, 0.0f);
      return;
    }
    const cpu::OpenblasSingleThreaded single_threaded_blas;
    cpu::linear(f32(x), x.row_stride, f32(w), w.row_stride, f32_mut(out), out.row_stride, x.rows,
                w.rows, x.cols, accumulate, threads_);
  }

  void qk_norm_rope(const Tensor& qkv, const AttentionShape& shape, const Tensor& q_norm,
                    const Tensor& k_norm, const Tensor& positions, float eps,
                    float rope_theta) override {
    check_attention_shape("qk_norm_rope", qkv, shape);
    kCheck.dtype("qk_norm_rope", "q_norm", q_norm, DType::kF32);
    kCheck.dtype("qk_norm_rope", "k_norm", k_norm, DType::kF32);
    kCheck.shape("qk_norm_rope", "q_norm", q_norm, 1, shape.head_dim);
    kCheck.shape("qk_norm_rope", "k_norm", k_norm, 1, shape.head_dim);
    kCheck.index("qk_norm_rope", "positions", positions, qkv.rows);
    RADIX_OP_REQUIRE(kCheck, shape.head_dim % 2 == 0, "qk_norm_rope",
                     "head_dim must be even, got " + to_string(shape.head_dim));
    cpu::qk_norm_rope(f32_mut(qkv), qkv.row_stride, qkv.rows, shape.num_q_heads, shape.num_kv_heads,
                      shape.head_dim, f32(q_norm), f32(k_norm), i32(positions), eps, rope_theta,
                      threads_);
  }

  void rope(const Tensor& qkv, const AttentionShape& shape, const Tensor& positions,
            const Tensor& inv_freq) override {
    check_attention_shape("rope", qkv, shape);
    kCheck.rope_table("rope", inv_freq, shape.head_dim);
    kCheck.index("rope", "positions", positions, qkv.rows);
    cpu::rope(f32_mut(qkv), qkv.row_stride, qkv.rows, shape.num_q_heads, shape.num_kv_heads,
              shape.head_dim, i32(positions), f32(inv_freq), threads_);
  }

  void attention(const Tensor& qkv, const AttentionShape& shape, const AttentionMask& mask,
                 const Tensor& out) override {
    attend(qkv, shape, mask, out, nullptr);
  }

  bool supports_prefix_cache() const override { return true; }

  void prefix_attention(const Tensor& qkv, const AttentionShape& shape, const AttentionMask& mask,
                        const PrefixKeys& prefix, const Tensor& out) override {
    const int64_t kv_cols = 2 * static_cast<int64_t>(shape.num_kv_heads) * shape.head_dim;
    kCheck.dtype("prefix_attention", "prefix.kv", prefix.kv, DType::kF32);
    RADIX_OP_REQUIRE(kCheck, prefix.kv.cols == kv_cols, "prefix_attention",
                     "prefix.kv " + shape_str(prefix.kv) +
                         " must have 2 * Hkv * d = " + to_string(kv_cols) + " columns");
    RADIX_OP_REQUIRE(kCheck, mask.kind != AttentionMask::Kind::kVarlenBidirectional,
                     "prefix_attention",
                     "a bidirectional mask has no prefix (cached keys are causal ancestors)");
    const int64_t p = prefix.kv.rows;
    kCheck.index("prefix_attention", "prefix.anchor", prefix.anchor, qkv.rows);
    kCheck.index("prefix_attention", "prefix.subtree_end", prefix.subtree_end, p);
    const int32_t* anchor = i32(prefix.anchor);
    const int32_t* end = i32(prefix.subtree_end);
    for (int64_t r = 0; r < qkv.rows; ++r) {
      RADIX_OP_REQUIRE(kCheck, anchor[r] >= -1 && anchor[r] < p, "prefix_attention",
                       "anchor[" + to_string(r) + "] = " + to_string(anchor[r]) +
                           " is not in [-1, " + to_string(p) + ")");
    }
    for (int64_t k = 0; k < p; ++k) {
      RADIX_OP_REQUIRE(kCheck, end[k] > k && end[k] <= p, "prefix_attention",
                       "prefix.subtree_end[" + to_string(k) + "] = " + to_string(end[k]) +
                           " is not in (" + to_string(k) + ", " + to_string(p) + "]");
    }
    cpu::PrefixKeysCpu keys;
    keys.kv = f32(prefix.kv);
    keys.stride = prefix.kv.row_stride;
    keys.rows = p;
    keys.subtree_end = end;
    keys.anchor = anchor;
    if (mask.window > 0) {
      kCheck.index("prefix_attention", "prefix.positions", prefix.positions, p);
      keys.positions = i32(prefix.positions);
    }
    attend(qkv, shape, mask, out, &keys);
  }

  void scatter_rows(const Tensor& src, const Tensor& index, const Tensor& out) override {
    RADIX_OP_REQUIRE(
        kCheck, src.dtype == out.dtype && dtype_size(src.dtype) == 4, "scatter_rows",
        "src " + shape_str(src) + " and out " + shape_str(out) + " must share a 4-byte dtype");
    RADIX_OP_REQUIRE(kCheck, src.cols == out.cols, "scatter_rows",
                     "src " + shape_str(src) + " and out " + shape_str(out) + " differ in columns");
    kCheck.index("scatter_rows", "index", index, src.rows);
    cpu::scatter_rows(src.data, src.row_stride, i32(index), src.rows, out.data, out.row_stride,
                      out.rows, out.cols, threads_);
  }

 private:
  void attend(const Tensor& qkv, const AttentionShape& shape, const AttentionMask& mask,
              const Tensor& out, const cpu::PrefixKeysCpu* prefix) {
    check_attention_shape("attention", qkv, shape);
    kCheck.dtype("attention", "out", out, DType::kF32);
    kCheck.shape("attention", "out", out, qkv.rows,
                 static_cast<int64_t>(shape.num_q_heads) * shape.head_dim);
    const int64_t n = qkv.rows;
    kCheck.attention_window("attention", mask, n);
    cpu::IntervalMask interval;
    if (mask.window > 0) {
      interval.window = mask.window;
      interval.positions = i32(mask.positions);
    }
    const int32_t* visible_end = nullptr;
    if (mask.kind == AttentionMask::Kind::kTree) {
      kCheck.index("attention", "subtree_end", mask.subtree_end, n);
      visible_end = i32(mask.subtree_end);
      for (int64_t k = 0; k < n; ++k) {
        RADIX_OP_REQUIRE(kCheck, visible_end[k] > k && visible_end[k] <= n, "attention",
                         "subtree_end[" + to_string(k) + "] = " + to_string(visible_end[k]) +
                             " is not in (" + to_string(k) + ", " + to_string(n) + "]");
      }
    } else {
      // A varlen batch is the interval mask with visible_end = the end of k's sequence (and, when
      // bidirectional, visible_begin = its start).
      kCheck.index("attention", "cu_seqlens", mask.cu_seqlens, mask.num_seqs + 1);
      const int32_t* cu = i32(mask.cu_seqlens);
      RADIX_OP_REQUIRE(kCheck, mask.num_seqs >= 0 && cu[0] == 0 && cu[mask.num_seqs] == n,
                       "attention", "cu_seqlens must run from 0 to " + to_string(n) + " rows");
      seq_end_.resize(n);
      seq_begin_.resize(n);
      for (int32_t s = 0; s < mask.num_seqs; ++s) {
        RADIX_OP_REQUIRE(kCheck, cu[s] <= cu[s + 1], "attention",
                         "cu_seqlens decreases at " + to_string(s + 1));
        for (int32_t r = cu[s]; r < cu[s + 1]; ++r) {
          seq_begin_[r] = cu[s];
          seq_end_[r] = cu[s + 1];
        }
      }
      visible_end = seq_end_.data();
      if (mask.kind == AttentionMask::Kind::kVarlenBidirectional) {
        interval.visible_begin = seq_begin_.data();
      }
    }
    const cpu::OpenblasSingleThreaded single_threaded_blas;
    interval.visible_end = visible_end;
    cpu::attention_interval(f32(qkv), qkv.row_stride, n, shape.num_q_heads, shape.num_kv_heads,
                            shape.head_dim, shape.scale, shape.softcap, interval, f32_mut(out),
                            out.row_stride, threads_, prefix);
  }

 public:
  void gated_activation(const Tensor& gate_up, Activation act, const Tensor& out,
                        const Tensor& out_scale) override {
    no_fp8_output("gated_activation", out_scale);
    kCheck.dtype("gated_activation", "gate_up", gate_up, DType::kF32);
    kCheck.dtype("gated_activation", "out", out, DType::kF32);
    kCheck.shape("gated_activation", "gate_up", gate_up, out.rows, 2 * out.cols);
    cpu::gated_activation(f32(gate_up), gate_up.row_stride, act, f32_mut(out), out.row_stride,
                          out.rows, out.cols, threads_);
  }

  void gather_rows(const Tensor& src, const Tensor& index, const Tensor& out) override {
    RADIX_OP_REQUIRE(
        kCheck, src.dtype == out.dtype && dtype_size(src.dtype) == 4, "gather_rows",
        "src " + shape_str(src) + " and out " + shape_str(out) + " must share a 4-byte dtype");
    RADIX_OP_REQUIRE(kCheck, src.cols == out.cols, "gather_rows",
                     "src " + shape_str(src) + " and out " + shape_str(out) + " differ in columns");
    kCheck.index("gather_rows", "index", index, out.rows);
    cpu::gather_rows(src.data, src.row_stride, src.rows, i32(index), out.data, out.row_stride,
                     out.rows, out.cols, threads_);
  }

 private:
  void check_attention_shape(const char* op, const Tensor& qkv, const AttentionShape& shape) {
    kCheck.attention_qkv(op, qkv, shape, DType::kF32);
  }

  int threads_;
  std::vector<int32_t> seq_end_, seq_begin_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads) {
  return std::make_unique<CpuBackend>(threads);
}

}  // namespace radix
