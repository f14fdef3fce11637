#include "backend/cuda/cuda_backend.h"

#include <cuda_fp16.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/dtype_dispatch.h"
#include "backend/cuda/fp8_ops.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/kernels/convert.cuh"
#include "backend/cuda/kernels/fill.cuh"
#include "backend/cuda/kernels/fp8.cuh"
#include "backend/cuda/kernels/gated_activation.cuh"
#include "backend/cuda/kernels/gather_rows.cuh"
#include "backend/cuda/kernels/prefix_attention.cuh"
#include "backend/cuda/kernels/qk_norm_rope.cuh"
#include "backend/cuda/kernels/reference_attention.cuh"
#include "backend/cuda/kernels/rmsnorm.cuh"
#include "backend/cuda/kernels/rope.cuh"
#include "backend/cuda/kernels/scatter_rows.cuh"
#include "backend/cuda/kernels/small_linear.cuh"
#include "backend/cuda/pinned_staging.h"
#include "backend/op_checks.h"
#if defined(RADIX_CUDA_FAST_ATTENTION)
#include "backend/cuda/attention.cuh"
#endif

namespace radix {
namespace {

using cuda::bf16;
using std::to_string;

// Weights with at most this many rows go through the warp-per-output kernel instead of cuBLASLt
// (the reranker's two LM-head rows, small classifiers).
constexpr int64_t kSmallLinearRows = 8;

constexpr OpChecks kCheck{"cuda"};

void require_float(const char* op, const char* arg, const Tensor& t) {
  RADIX_OP_REQUIRE(kCheck, t.dtype == DType::kF32 || t.dtype == DType::kBF16, op,
                   std::string(arg) + " must be f32 or bf16, got " + shape_str(t));
  RADIX_OP_REQUIRE(kCheck, t.data != nullptr || t.numel() == 0, op,
                   std::string(arg) + " has no data");
  RADIX_OP_REQUIRE(kCheck, t.row_stride >= t.cols, op,
                   std::string(arg) + " has a row stride below its width");
}

// A contiguous [n, 1] (or [1, n]) f32 vector of per-row scales, with data.
void require_row_scales(const char* op, const char* arg, const Tensor& t, int64_t n) {
  RADIX_OP_REQUIRE(kCheck,
                   t.dtype == DType::kF32 && t.contiguous() && t.numel() == n &&
                       (t.rows == 1 || t.cols == 1) && (t.data != nullptr || n == 0),
                   op,
                   std::string(arg) + " must be a contiguous f32 vector of " + to_string(n) +
                       " scales, got " + shape_str(t));
}

// A norm's output: f32 / bf16 without scales, or f8e4m3 with one f32 scale per row.
void require_norm_out(const char* op, const char* arg, const Tensor& out, const Tensor& scale,
                      int64_t rows) {
  if (out.dtype == DType::kF8E4M3) {
    RADIX_OP_REQUIRE(kCheck, out.data != nullptr || out.numel() == 0, op,
                     std::string(arg) + " has no data");
    RADIX_OP_REQUIRE(kCheck, out.row_stride >= out.cols, op,
                     std::string(arg) + " has a row stride below its width");
    require_row_scales(op, (std::string(arg) + "_scale").c_str(), scale, rows);
    return;
  }
  require_float(op, arg, out);
  RADIX_OP_REQUIRE(kCheck, scale.data == nullptr, op,
                   std::string(arg) + "_scale is given only with an f8e4m3 " + arg);
}

// A kernel's status as a BackendError naming the op.
void check_launch(const char* op, cudaError_t status) {
  if (status != cudaSuccess) {
    throw BackendError(std::string("cuda ") + op + ": " + cudaGetErrorString(status));
  }
}

template <typename T>
T* ptr(const Tensor& t) {
  return static_cast<T*>(t.data);
}

using cuda::with_dtype;
using cuda::with_float_ptr;

cuda::GateActivation to_cuda(Activation act) {
  switch (act) {
    case Activation::kSiLU:
      return cuda::GateActivation::kSilu;
    case Activation::kGeluTanh:
      return cuda::GateActivation::kGeluTanh;
  }
  throw BackendError("cuda gated_activation: unknown activation " +
                     to_string(static_cast<int>(act)));
}

// Says once per process and head_dim that attention of that shape runs on the reference kernel
// (quadratic, one warp per row and head) because no fast kernel exists for it in this build: a
// slow path is never taken silently.
void note_reference_attention(int head_dim, const char* why) {
  static std::mutex mutex;
  static std::set<int> told;
  std::lock_guard<std::mutex> lock(mutex);
  if (!told.insert(head_dim).second) return;
  std::fprintf(stderr,
               "radix: cuda attention with head_dim %d runs on the reference kernel (%s); "
               "expect it to be much slower\n",
               head_dim, why);
}

float to_float(const void* p, DType dtype, size_t i) {
  switch (dtype) {
    case DType::kF32:
      return static_cast<const float*>(p)[i];
    case DType::kBF16:
      return __bfloat162float(static_cast<const bf16*>(p)[i]);
    case DType::kF16:
      return __half2float(static_cast<const __half*>(p)[i]);
    case DType::kI32:
      return static_cast<float>(static_cast<const int32_t*>(p)[i]);
    case DType::kF8E4M3:
      return cuda::e4m3_to_float(static_cast<const uint8_t*>(p)[i]);
  }
  return 0.0f;
}

// value as the element type of p (the dispatch's typed pointer): the conversions to stored dtypes.
float to_stored(const float*, float value) { return value; }
bf16 to_stored(const bf16*, float value) { return __float2bfloat16(value); }
int32_t to_stored(const int32_t*, float value) { return static_cast<int32_t>(value); }

// Grow-only device scratch (reallocated only when a larger batch arrives). Each reallocation
// moves `epoch` (the backend's memory_epoch): recordings that named the old memory are stale.
class Scratch {
 public:
  explicit Scratch(uint64_t& epoch) : epoch_(&epoch) {}
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() {
    if (p_) cudaFree(p_);
  }
  void* get(size_t bytes, int64_t& allocated) {
    if (bytes > bytes_) {
      if (p_) {
        RADIX_CUDA_CHECK(cudaFree(p_));
        allocated -= static_cast<int64_t>(bytes_);
      }
      p_ = nullptr;
      bytes_ = 0;
      ++*epoch_;
      RADIX_CUDA_CHECK(cudaMalloc(&p_, bytes));
      bytes_ = bytes;
      allocated += static_cast<int64_t>(bytes);
    }
    return p_;
  }

 private:
  uint64_t* epoch_;
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

// A captured forward, instantiated once and launched by replay.
class GraphRecording final : public Backend::Recording {
 public:
  explicit GraphRecording(cudaGraphExec_t exec) : exec(exec) {}
  GraphRecording(const GraphRecording&) = delete;
  GraphRecording& operator=(const GraphRecording&) = delete;
  ~GraphRecording() override { cudaGraphExecDestroy(exec); }
  cudaGraphExec_t exec;
};

enum class OpKind : uint8_t { kGemm, kAttention, kNorm, kRope, kSwiglu, kGather, kQuantize };

class CudaBackend final : public Backend {
 public:
  CudaBackend(int device, bool graphs) : device_(device) {
    RADIX_CUDA_CHECK(cudaSetDevice(device_));
    RADIX_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    RADIX_CUDA_CHECK(cudaMalloc(&bad_id_, sizeof(int32_t)));
    RADIX_CUDA_CHECK(cudaMemsetAsync(bad_id_, 0, sizeof(int32_t), stream_));
    const char* autotune = std::getenv("RADIX_CUDA_GEMM_AUTOTUNE");
    gemm_ = std::make_unique<cuda::Gemm>(autotune && std::strcmp(autotune, "1") == 0);
    const char* profile = std::getenv("RADIX_CUDA_PROFILE");
    profiling_ = profile && std::strcmp(profile, "1") == 0;
    const char* poison = std::getenv("RADIX_CUDA_POISON");
    poison_ = poison && std::strcmp(poison, "1") == 0;
    const char* reference = std::getenv("RADIX_CUDA_REFERENCE_ATTENTION");
    reference_attention_ = reference && std::strcmp(reference, "1") == 0;
    // RADIX_CUDA_FP8_EPILOGUE=own: the fp8 linear scales in its own epilogue even where cuBLASLt
    // could (tests cover both paths; docs/cuda.md).
    const char* fp8_epilogue = std::getenv("RADIX_CUDA_FP8_EPILOGUE");
    if (fp8_epilogue && std::strcmp(fp8_epilogue, "own") == 0) gemm_->disable_fp8_outer_vec();
#if !defined(RADIX_CUDA_FAST_ATTENTION)
    reference_attention_ = true;
#endif
    const char* graphs_env = std::getenv("RADIX_CUDA_GRAPHS");
    graphs_allowed_ = graphs && !(graphs_env && std::strcmp(graphs_env, "0") == 0);
    allocated_ = peak_ = static_cast<int64_t>(size_t{32} << 20);  // the cuBLASLt workspace
  }

  ~CudaBackend() override {
    cudaSetDevice(device_);
    cudaStreamSynchronize(stream_);
    for (auto& e : pending_) {
      cudaEventDestroy(e.start);
      cudaEventDestroy(e.stop);
    }
    for (cudaEvent_t e : free_events_) cudaEventDestroy(e);
    gemm_.reset();
    if (bad_id_) cudaFree(bad_id_);
    cudaStreamDestroy(stream_);
  }

  std::string name() const override { return "cuda:" + to_string(device_); }
  DType weight_dtype() const override { return DType::kBF16; }
  DType activation_dtype() const override { return DType::kBF16; }
  // fp32: 28-36 layers of bf16 residual adds would each round the stream to 8 bits of mantissa;
  // fp32 keeps the sum exact to the CPU reference's precision for 4 bytes instead of 2 per
  // element in the two norm kernels of a layer, a few percent of the layer's memory traffic.
  DType residual_dtype() const override { return DType::kF32; }

  // ---- memory --------------------------------------------------------------------------------
  Buffer alloc(DType dtype, int64_t rows, int64_t cols) override {
    not_recording("alloc");
    RADIX_OP_REQUIRE(kCheck, rows >= 0 && cols >= 0, "alloc",
                     "negative shape [" + to_string(rows) + ", " + to_string(cols) + "]");
    RADIX_CUDA_CHECK(cudaSetDevice(device_));
    // At least 256 bytes so that data is never null; cudaMalloc aligns to 256 bytes, which the
    // 16-byte vector paths and cuBLASLt's fastest kernels want.
    const size_t bytes = std::max<size_t>(
        256, static_cast<size_t>(rows) * static_cast<size_t>(cols) * dtype_size(dtype));
    void* data = nullptr;
    const cudaError_t err = cudaMalloc(&data, bytes);
    if (err != cudaSuccess) {
      cudaGetLastError();  // clear the error so later calls do not see it
      size_t free_bytes = 0, total_bytes = 0;
      cudaMemGetInfo(&free_bytes, &total_bytes);
      throw BackendError("cuda alloc: cannot allocate " + to_string(bytes) + " bytes for " +
                         shape_str(Tensor{nullptr, dtype, rows, cols, cols}) + " (" +
                         to_string(free_bytes >> 20) + " MiB free of " +
                         to_string(total_bytes >> 20) + " MiB): " + cudaGetErrorString(err));
    }
    track_alloc(static_cast<int64_t>(bytes));
    // Tests: all-ones bytes are NaN in bf16 and fp32 (and -1 in int32), so a read of memory that
    // no op wrote shows up in the results.
    if (poison_) RADIX_CUDA_CHECK(cudaMemsetAsync(data, 0xFF, bytes, stream_));
    const int device = device_;
    auto release = [alive = std::weak_ptr<int>(alive_), this, bytes, device](void* p) {
      cudaSetDevice(device);
      cudaFree(p);
      if (alive.lock()) track_alloc(-static_cast<int64_t>(bytes));
    };
    return Buffer(Tensor{data, dtype, rows, cols, cols}, std::shared_ptr<void>(data, release));
  }

  void upload(const Tensor& dst, const void* host, DType host_dtype) override {
    RADIX_OP_REQUIRE(kCheck, dst.data != nullptr || dst.numel() == 0, "upload", "dst has no data");
    const bool ints = dst.dtype == DType::kI32 || host_dtype == DType::kI32;
    RADIX_OP_REQUIRE(
        kCheck, !ints || dst.dtype == host_dtype, "upload",
        std::string("cannot copy ") + dtype_name(host_dtype) + " into " + shape_str(dst));
    RADIX_OP_REQUIRE(kCheck, dst.dtype != DType::kF16, "upload",
                     "the CUDA backend stores no f16 tensors");
    // e4m3 bytes are copied as stored (a pre-quantised checkpoint); any other e4m3 tensor is
    // made on the device by quantize_fp8_rows, whose scales a plain conversion could not give.
    RADIX_OP_REQUIRE(kCheck, dst.dtype != DType::kF8E4M3 || host_dtype == DType::kF8E4M3, "upload",
                     "f8e4m3 tensors take e4m3 bytes as stored or come from quantize_fp8_rows");
    not_recording("upload");
    if (dst.numel() == 0) return;
    RADIX_CUDA_CHECK(cudaSetDevice(device_));
    const size_t elem = dtype_size(dst.dtype);
    const size_t n = static_cast<size_t>(dst.numel());
    // The source as dst stores it, in page-locked memory where it fits (pinned_staging.h) and the
    // caller's array or a converted copy otherwise.
    void* pinned = pinned_.take(n * elem);
    const void* src = host;
    std::vector<unsigned char> staging;
    if (host_dtype != dst.dtype) {
      if (pinned == nullptr) staging.resize(n * elem);
      void* converted = pinned != nullptr ? pinned : staging.data();
      with_dtype<DType::kF32, DType::kBF16>(dst.dtype, converted, "upload", "dst", [&](auto* out) {
        for (size_t i = 0; i < n; ++i) out[i] = to_stored(out, to_float(host, host_dtype, i));
      });
      src = converted;
    } else if (pinned != nullptr) {
      std::memcpy(pinned, host, n * elem);
      src = pinned;
    }
    // From page-locked memory the copy is asynchronous: the region stays untouched until the next
    // synchronisation. From pageable memory it returns once the source is in the driver's staging
    // buffer, so `staging` and the caller's array may be reused right after, without a stream sync.
    RADIX_CUDA_CHECK(cudaMemcpy2DAsync(dst.data, dst.row_stride * elem, src, dst.cols * elem,
                                       dst.cols * elem, dst.rows, cudaMemcpyHostToDevice, stream_));
  }

  void download(const Tensor& src, float* host) override {
    RADIX_OP_REQUIRE(kCheck, src.data != nullptr || src.numel() == 0, "download",
                     "src has no data");
    not_recording("download");
    if (src.numel() == 0) return;
    RADIX_CUDA_CHECK(cudaSetDevice(device_));
    const size_t elem = dtype_size(src.dtype);
    std::vector<unsigned char> staging(static_cast<size_t>(src.numel()) * elem);
    RADIX_CUDA_CHECK(cudaMemcpy2DAsync(staging.data(), src.cols * elem, src.data,
                                       src.row_stride * elem, src.cols * elem, src.rows,
                                       cudaMemcpyDeviceToHost, stream_));
    synchronize();
    for (size_t i = 0; i < static_cast<size_t>(src.numel()); ++i) {
      host[i] = to_float(staging.data(), src.dtype, i);
    }
  }

  void fill_random_normal(const Tensor& dst, uint64_t seed, float std,
                          uint64_t first_index) override {
    require_float("fill_random_normal", "dst", dst);
    RADIX_CUDA_CHECK(cudaSetDevice(device_));
    check_launch("fill_random_normal", with_float_ptr(dst, [&](auto* p) {
                   return cuda::fill_random_normal(p, dst.rows, dst.cols, dst.row_stride, seed, std,
                                                   first_index, stream_);
                 }));
  }

  void fill_constant(const Tensor& dst, float value) override {
    RADIX_OP_REQUIRE(kCheck, dst.data != nullptr || dst.numel() == 0, "fill_constant",
                     "dst has no data");
    RADIX_CUDA_CHECK(cudaSetDevice(device_));
    RADIX_OP_REQUIRE(kCheck, dst.dtype != DType::kF16, "fill_constant",
                     "the CUDA backend stores no f16 tensors");
    RADIX_OP_REQUIRE(kCheck, dst.dtype != DType::kF8E4M3, "fill_constant",
                     "f8e4m3 tensors come from quantize_fp8_rows");
    const cudaError_t status = with_dtype<DType::kF32, DType::kBF16, DType::kI32>(
        dst, "fill_constant", "dst", [&](auto* p) {
          return cuda::fill_constant(p, dst.rows, dst.cols, dst.row_stride, to_stored(p, value),
                                     stream_);
        });
    check_launch("fill_constant", status);
  }

  void synchronize() override {
    not_recording("synchronize");
    RADIX_CUDA_CHECK(cudaSetDevice(device_));
    const size_t mark = pinned_.before_synchronize();
    RADIX_CUDA_CHECK(cudaStreamSynchronize(stream_));
    pinned_.after_synchronize(mark);
    int32_t bad = 0;
    RADIX_CUDA_CHECK(cudaMemcpy(&bad, bad_id_, sizeof(bad), cudaMemcpyDeviceToHost));
    if (bad) {
      RADIX_CUDA_CHECK(cudaMemset(bad_id_, 0, sizeof(int32_t)));
      throw BackendError(
          "cuda embedding: a token id was outside the vocabulary (its row was set to zero)");
    }
  }

  // ---- ops -----------------------------------------------------------------------------------
  void embedding(const Tensor& table, const Tensor& ids, const Tensor& out, float scale) override {
    const char* op = "embedding";
    kCheck.dtype(op, "table", table, DType::kBF16);
    require_float(op, "out", out);
    kCheck.index(op, "ids", ids, out.rows);
    kCheck.shape(op, "out", out, out.rows, table.cols);
    RADIX_OP_REQUIRE(kCheck, std::isfinite(scale), op, "the scale must be finite");
    Timed timed(this, OpKind::kGather);
    check_launch(op, with_float_ptr(out, [&](auto* o) {
                   return cuda::embedding_gather(
                       ptr<bf16>(table), table.row_stride, table.rows, ptr<int32_t>(ids), out.rows,
                       static_cast<int>(out.cols), o, out.row_stride, bad_id_, stream_, scale);
                 }));
  }

  void rms_norm(const Tensor& x, const Tensor& weight, float eps, const Tensor& out,
                NormWeight mode, const Tensor& out_scale) override {
    const char* op = "rms_norm";
    require_float(op, "x", x);
    require_norm_out(op, "out", out, out_scale, x.rows);
    kCheck.dtype(op, "weight", weight, DType::kBF16);
    kCheck.shape(op, "weight", weight, 1, x.cols);
    kCheck.shape(op, "out", out, x.rows, x.cols);
    Timed timed(this, OpKind::kNorm);
    check_launch(op, norm(x, nullptr, weight, eps, out, out_scale, mode));
  }

  void add_rms_norm(const Tensor& residual, const Tensor& delta, const Tensor& weight, float eps,
                    const Tensor& normed, NormWeight mode, const Tensor& normed_scale) override {
    const char* op = "add_rms_norm";
    require_float(op, "residual", residual);
    kCheck.dtype(op, "delta", delta, DType::kBF16);
    require_norm_out(op, "normed", normed, normed_scale, residual.rows);
    kCheck.dtype(op, "weight", weight, DType::kBF16);
    kCheck.shape(op, "delta", delta, residual.rows, residual.cols);
    kCheck.shape(op, "weight", weight, 1, residual.cols);
    kCheck.shape(op, "normed", normed, residual.rows, residual.cols);
    Timed timed(this, OpKind::kNorm);
    check_launch(op, norm(residual, &delta, weight, eps, normed, normed_scale, mode));
  }

  void linear(const Tensor& x, const Tensor& w, const Tensor& out, bool accumulate,
              const Tensor& bias) override {
    const char* op = "linear";
    kCheck.bias(op, bias, w.rows, DType::kBF16);
    require_float(op, "x", x);
    kCheck.dtype(op, "w", w, DType::kBF16);
    require_float(op, "out", out);
    RADIX_OP_REQUIRE(
        kCheck, w.cols == x.cols, op,
        "x is " + shape_str(x) + " but w is " + shape_str(w) + " (inner sizes differ)");
    kCheck.shape(op, "out", out, x.rows, w.rows);
    const bf16* b = ptr<bf16>(bias);  // null: no bias
    if (x.rows == 0 || w.rows == 0) return;
    if (x.cols == 0) {
      // An empty product: out = bias (+ out), through the small kernel's epilogue.
      if (!accumulate) fill_constant(out, 0.0f);
      if (b == nullptr) return;
      accumulate = true;
    }
    RADIX_OP_REQUIRE(kCheck, x.cols <= INT32_MAX, op, "inner size too large");
    Timed timed(this, OpKind::kGemm);
    if (w.rows <= kSmallLinearRows || x.dtype == DType::kF32 || x.cols == 0) {
      const int k = static_cast<int>(x.cols);
      check_launch(op, with_float_ptr(x, [&](auto* xp) {
                     return with_float_ptr(out, [&](auto* yp) {
                       return cuda::small_linear(xp, x.row_stride, ptr<bf16>(w), w.row_stride, yp,
                                                 out.row_stride, x.rows, w.rows, k, accumulate,
                                                 stream_, b);
                     });
                   }));
      return;
    }
    if (out.dtype == DType::kF32) {
      // cuBLASLt's epilogue takes the bias in the output's type: an fp32 copy of the bf16 row.
      float* b32 = nullptr;
      if (b != nullptr) {
        b32 = static_cast<float*>(bias_f32_.get(sizeof(float) * w.rows, allocated_));
        note_peak();
        check_launch(op, cuda::bf16_to_f32(b, b32, w.rows, stream_));
      }
      gemm_->f32_out(ptr<bf16>(x), x.row_stride, ptr<bf16>(w), w.row_stride, ptr<float>(out),
                     out.row_stride, x.rows, w.rows, x.cols, accumulate, stream_, b32);
    } else {
      gemm_->bf16_out(ptr<bf16>(x), x.row_stride, ptr<bf16>(w), w.row_stride, ptr<bf16>(out),
                      out.row_stride, x.rows, w.rows, x.cols, accumulate, stream_, b);
    }
  }

  void qk_norm_rope(const Tensor& qkv, const AttentionShape& shape, const Tensor& q_norm,
                    const Tensor& k_norm, const Tensor& positions, float eps,
                    float rope_theta) override {
    const char* op = "qk_norm_rope";
    check_attention_shape(op, qkv, shape, /*fused_norm=*/true);
    kCheck.dtype(op, "q_norm", q_norm, DType::kBF16);
    kCheck.dtype(op, "k_norm", k_norm, DType::kBF16);
    kCheck.shape(op, "q_norm", q_norm, 1, shape.head_dim);
    kCheck.shape(op, "k_norm", k_norm, 1, shape.head_dim);
    kCheck.index(op, "positions", positions, qkv.rows);
    Timed timed(this, OpKind::kRope);
    check_launch(
        op, cuda::qk_norm_rope(ptr<bf16>(qkv), qkv.row_stride, ptr<int32_t>(positions),
                               ptr<bf16>(q_norm), ptr<bf16>(k_norm), qkv.rows, shape.num_q_heads,
                               shape.num_kv_heads, shape.head_dim, rope_theta, eps, stream_));
  }

  void rope(const Tensor& qkv, const AttentionShape& shape, const Tensor& positions,
            const Tensor& inv_freq) override {
    const char* op = "rope";
    check_attention_shape(op, qkv, shape);
    kCheck.rope_table(op, inv_freq, shape.head_dim);
    kCheck.index(op, "positions", positions, qkv.rows);
    Timed timed(this, OpKind::kRope);
    check_launch(op, cuda::rope(ptr<bf16>(qkv), qkv.row_stride, ptr<int32_t>(positions),
                                ptr<float>(inv_freq), qkv.rows, shape.num_q_heads,
                                shape.num_kv_heads, shape.head_dim, stream_));
  }

  void attention(const Tensor& qkv, const AttentionShape& shape, const AttentionMask& mask,
                 const Tensor& out) override {
    const char* op = "attention";
    check_attention_shape(op, qkv, shape);
    kCheck.attention_window(op, mask, qkv.rows);
    kCheck.dtype(op, "out", out, DType::kBF16);
    const int64_t d = shape.head_dim;
    kCheck.shape(op, "out", out, qkv.rows, shape.num_q_heads * d);
    RADIX_OP_REQUIRE(kCheck, qkv.rows <= INT32_MAX, op, "too many rows");
    const int n = static_cast<int>(qkv.rows);
    if (n == 0) return;
    const bf16* q = ptr<bf16>(qkv);
    const bf16* k = q + shape.num_q_heads * d;
    const bf16* v = k + shape.num_kv_heads * d;
    const bool tree = mask.kind == AttentionMask::Kind::kTree;
    const bool bidirectional = mask.kind == AttentionMask::Kind::kVarlenBidirectional;
    if (tree) {
      kCheck.index(op, "subtree_end", mask.subtree_end, n);
    } else {
      RADIX_OP_REQUIRE(kCheck, mask.num_seqs >= 0 && mask.max_seqlen >= 0, op,
                       "negative num_seqs or max_seqlen");
      kCheck.index(op, "cu_seqlens", mask.cu_seqlens, int64_t{mask.num_seqs} + 1);
    }
    const int32_t* positions = mask.window > 0 ? ptr<int32_t>(mask.positions) : nullptr;
    Timed timed(this, OpKind::kAttention);
#if defined(RADIX_CUDA_FAST_ATTENTION)
    const bool fast = cuda::attention_has_fast_kernels(shape.head_dim);
    if (!reference_attention_ && fast) {
      cuda::AttentionOptions options;
      options.head_dim = shape.head_dim;
      options.softcap = shape.softcap;
      // A varlen window no sequence outgrows cuts nothing (positions within a sequence differ by
      // less than max_seqlen): dropping it runs the kernels without options, exactly.
      options.window = !tree && mask.window >= mask.max_seqlen ? 0 : mask.window;
      options.positions_dev = positions;
      options.bidirectional = bidirectional;
      if (tree) {
        const int counters = mask.id != 0 ? kTreeCounters : 1;
        const size_t bytes = cuda::attention_tree_workspace_bytes(n, counters);
        void* workspace = tree_workspace_.get(bytes, allocated_);
        note_peak();
        if (mask.id != 0) {
          options.tree_counter = shared_tree_counter(op, mask, n, workspace, bytes);
        } else {
          tree_bounds_ = TreeBounds{};  // this call writes its own bounds over the shared ones
        }
        check_launch(
            op, cuda::attention_tree(q, k, v, ptr<bf16>(out), qkv.row_stride, qkv.row_stride,
                                     out.row_stride, ptr<int32_t>(mask.subtree_end), n,
                                     shape.num_q_heads, shape.num_kv_heads, shape.scale, workspace,
                                     bytes, stream_, mask.mean_visible_keys, options));
      } else {
        // Varlen rows of a sequence are its consecutive positions: the kernel measures the
        // window in rows (docs/attention.md), which the positions of a flat batch equal.
        check_launch(op,
                     cuda::attention_varlen_causal(
                         q, k, v, ptr<bf16>(out), qkv.row_stride, qkv.row_stride, out.row_stride,
                         ptr<int32_t>(mask.cu_seqlens), mask.num_seqs, mask.max_seqlen, n,
                         shape.num_q_heads, shape.num_kv_heads, shape.scale, stream_, options));
      }
      return;
    }
    if (!reference_attention_) {
      note_reference_attention(shape.head_dim, "no fast kernel for this head_dim in this build");
    }
#else
    note_reference_attention(shape.head_dim, "built without the fast attention kernels");
#endif
    // The reference kernel: every mask as the interval rule over subtree_end (for a flat batch,
    // each row's sequence end), with the same options.
    const int32_t* visible_end = visible_ends(op, mask, n);
    cuda::ReferenceAttentionOptions options;
    options.softcap = shape.softcap;
    options.window = mask.window;
    options.positions = positions;
    options.bidirectional = bidirectional;
    check_launch(op, cuda::reference_attention(q, k, v, ptr<bf16>(out), qkv.row_stride,
                                               qkv.row_stride, out.row_stride, visible_end, n,
                                               shape.num_q_heads, shape.num_kv_heads,
                                               shape.head_dim, shape.scale, stream_, options));
  }

  void gated_activation(const Tensor& gate_up, Activation act, const Tensor& out,
                        const Tensor& out_scale) override {
    const char* op = "gated_activation";
    const cuda::GateActivation kind = to_cuda(act);
    kCheck.dtype(op, "gate_up", gate_up, DType::kBF16);
    const bool fp8 = out.dtype == DType::kF8E4M3;
    if (fp8) {
      require_row_scales(op, "out_scale", out_scale, out.rows);
    } else {
      kCheck.dtype(op, "out", out, DType::kBF16);
      RADIX_OP_REQUIRE(kCheck, out_scale.data == nullptr, op,
                       "out_scale is given only with an f8e4m3 out");
    }
    kCheck.shape(op, "gate_up", gate_up, out.rows, 2 * out.cols);
    if (out.numel() == 0) return;
    Timed timed(this, OpKind::kSwiglu);
    const int inter = static_cast<int>(out.cols);
    if (fp8) {
      check_launch(op, cuda::gated_activation_e4m3(
                           kind, ptr<bf16>(gate_up), gate_up.row_stride, ptr<uint8_t>(out),
                           out.row_stride, ptr<float>(out_scale), out.rows, inter, stream_));
      return;
    }
    check_launch(
        op, cuda::gated_activation(kind, ptr<bf16>(gate_up), gate_up.row_stride, ptr<bf16>(out),
                                   out.row_stride, out.rows, inter, stream_));
  }

  void gather_rows(const Tensor& src, const Tensor& index, const Tensor& out) override {
    const char* op = "gather_rows";
    RADIX_OP_REQUIRE(kCheck, src.dtype == out.dtype, op,
                     "src " + shape_str(src) + " and out " + shape_str(out) + " differ in dtype");
    RADIX_OP_REQUIRE(kCheck, src.cols == out.cols, op,
                     "src " + shape_str(src) + " and out " + shape_str(out) + " differ in columns");
    RADIX_OP_REQUIRE(kCheck, dtype_size(src.dtype) != 1, op, "f8e4m3 rows are not gathered");
    RADIX_OP_REQUIRE(kCheck, src.data != nullptr || src.numel() == 0, op, "src has no data");
    kCheck.index(op, "index", index, out.rows);
    RADIX_OP_REQUIRE(kCheck, out.cols <= INT32_MAX, op, "too many columns");
    if (out.numel() == 0) return;
    Timed timed(this, OpKind::kGather);
    const int cols = static_cast<int>(out.cols);
    const cudaError_t status =
        with_dtype<DType::kF32, DType::kBF16, DType::kI32>(src, op, "src", [&](auto* p) {
          using T = std::remove_const_t<std::remove_pointer_t<decltype(p)>>;
          if constexpr (sizeof(T) == 2) {
            return cuda::gather_rows(p, src.row_stride, ptr<int32_t>(index), out.rows, cols,
                                     ptr<T>(out), out.row_stride, stream_);
          } else {
            // f32 and i32 rows are both 4-byte copies.
            return cuda::gather_rows_f32(reinterpret_cast<const float*>(p), src.row_stride,
                                         ptr<int32_t>(index), out.rows, cols, ptr<float>(out),
                                         out.row_stride, stream_);
          }
        });
    check_launch(op, status);
  }

  // ---- fp8 (fp8_ops.cc) ----------------------------------------------------------------------
  bool supports_fp8() const override { return true; }

  void quantize_fp8_rows(const Tensor& src, const Tensor& dst, const Tensor& scale) override {
    Timed timed(this, OpKind::kQuantize);
    cuda::quantize_fp8_rows(src, dst, scale, stream_);
  }

  void linear_fp8(const Tensor& x, const Tensor& x_scale, const Tensor& w, const Tensor& w_scale,
                  const Tensor& out, bool accumulate, const Tensor& bias) override {
    RADIX_CUDA_CHECK(cudaSetDevice(device_));
    auto scratch = [this](cuda::Fp8Slot slot, size_t bytes) {
      Scratch& s = slot == cuda::Fp8Slot::kActivation        ? fp8_x_
                   : slot == cuda::Fp8Slot::kActivationScale ? fp8_x_scale_
                                                             : fp8_product_;
      void* p = s.get(bytes, allocated_);
      note_peak();
      return p;
    };
    // The activation quantisation is timed on its own, the GEMM and its epilogue as kGemm.
    auto timed = [this](bool quantize, const std::function<void()>& launch) {
      Timed t(this, quantize ? OpKind::kQuantize : OpKind::kGemm);
      launch();
    };
    cuda::linear_fp8(*gemm_, scratch, timed, x, x_scale, w, w_scale, out, accumulate, bias,
                     stream_);
  }

  // ---- recorded work: CUDA graphs ------------------------------------------------------------
  bool supports_recording() const override { return graphs_allowed_ && !profiling_; }

  void begin_recording() override {
    RADIX_OP_REQUIRE(kCheck, supports_recording(), "begin_recording",
                     "recording is off (--enforce-eager, RADIX_CUDA_GRAPHS=0 or "
                     "RADIX_CUDA_PROFILE=1)");
    RADIX_OP_REQUIRE(kCheck, !recording_, "begin_recording", "already recording");
    RADIX_CUDA_CHECK(cudaSetDevice(device_));
    // Thread-local: other threads (another device's worker) may allocate meanwhile.
    RADIX_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
    recording_ = true;
    // The recording computes its own tree bounds rather than trusting ones computed before it.
    tree_bounds_ = TreeBounds{};
  }

  std::unique_ptr<Recording> end_recording() override {
    RADIX_OP_REQUIRE(kCheck, recording_, "end_recording", "not recording");
    recording_ = false;
    tree_bounds_ = TreeBounds{};
    RADIX_CUDA_CHECK(cudaSetDevice(device_));
    cudaGraph_t graph = nullptr;
    const cudaError_t end = cudaStreamEndCapture(stream_, &graph);
    if (end != cudaSuccess || graph == nullptr) {
      cudaGetLastError();  // a broken capture's error is not sticky: clear it
      if (graph != nullptr) cudaGraphDestroy(graph);
      throw BackendError(name() + " end_recording: the capture failed: " + cudaGetErrorString(end));
    }
    cudaGraphExec_t exec = nullptr;
    const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    if (made != cudaSuccess) {
      cudaGetLastError();
      throw BackendError(
          name() + " end_recording: cannot instantiate the graph: " + cudaGetErrorString(made));
    }
    return std::make_unique<GraphRecording>(exec);
  }

  void replay(const Recording& recording) override {
    const auto* graph = dynamic_cast<const GraphRecording*>(&recording);
    RADIX_OP_REQUIRE(kCheck, graph != nullptr, "replay", "not a recording of this backend");
    not_recording("replay");
    RADIX_CUDA_CHECK(cudaSetDevice(device_));
    RADIX_CUDA_CHECK(cudaGraphLaunch(graph->exec, stream_));
    tree_bounds_ = TreeBounds{};  // the replay wrote its own bounds over the shared workspace
  }

  uint64_t memory_epoch() const override { return scratch_epoch_; }

  // ---- profiling -----------------------------------------------------------------------------
  CudaProfile take_profile() {
    synchronize();
    fold_pending();
    CudaProfile p = profile_;
    p.timed = profiling_;
    std::lock_guard<std::mutex> lock(*memory_mutex_);
    p.peak_bytes = peak_;
    peak_ = allocated_;
    profile_ = {};
    return p;
  }

  int64_t free_memory_bytes() {
    RADIX_CUDA_CHECK(cudaSetDevice(device_));
    size_t free_bytes = 0, total_bytes = 0;
    RADIX_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    return static_cast<int64_t>(free_bytes);
  }

  // ---- prefix cache (kernels/prefix_attention.cu, kernels/scatter_rows.cu) ------------------
  bool supports_prefix_cache() const override { return true; }

  // Anchors and the prefix trie's ends live in device memory and are not range-checked here (that
  // would cost a synchronisation); the kernel only compares them, so a bad value changes which
  // keys are seen but never reads out of bounds.
  void prefix_attention(const Tensor& qkv, const AttentionShape& shape, const AttentionMask& mask,
                        const PrefixKeys& prefix, const Tensor& out) override {
    const char* op = "prefix_attention";
    check_attention_shape(op, qkv, shape);
    kCheck.attention_window(op, mask, qkv.rows);
    kCheck.dtype(op, "out", out, DType::kBF16);
    const int64_t d = shape.head_dim;
    kCheck.shape(op, "out", out, qkv.rows, shape.num_q_heads * d);
    RADIX_OP_REQUIRE(kCheck, mask.kind != AttentionMask::Kind::kVarlenBidirectional, op,
                     "a bidirectional mask has no prefix (cached keys are causal ancestors)");
    const int64_t kv_cols = 2 * static_cast<int64_t>(shape.num_kv_heads) * d;
    kCheck.dtype(op, "prefix.kv", prefix.kv, DType::kBF16);
    RADIX_OP_REQUIRE(kCheck, prefix.kv.cols == kv_cols, op,
                     "prefix.kv " + shape_str(prefix.kv) +
                         " must have 2 * Hkv * d = " + to_string(kv_cols) + " columns");
    RADIX_OP_REQUIRE(kCheck, qkv.rows <= INT32_MAX && prefix.kv.rows <= INT32_MAX, op,
                     "too many rows");
    const int n = static_cast<int>(qkv.rows);
    const int p = static_cast<int>(prefix.kv.rows);
    kCheck.index(op, "prefix.anchor", prefix.anchor, n);
    kCheck.index(op, "prefix.subtree_end", prefix.subtree_end, p);
    if (mask.window > 0) kCheck.index(op, "prefix.positions", prefix.positions, p);
    const bool tree = mask.kind == AttentionMask::Kind::kTree;
    if (tree) {
      kCheck.index(op, "subtree_end", mask.subtree_end, n);
    } else {
      RADIX_OP_REQUIRE(kCheck, mask.num_seqs >= 0, op, "negative num_seqs");
      kCheck.index(op, "cu_seqlens", mask.cu_seqlens, int64_t{mask.num_seqs} + 1);
    }
    if (n == 0) return;
    Timed timed(this, OpKind::kAttention);
    const int32_t* visible_end = visible_ends(op, mask, n);
    cuda::PrefixAttentionArgs a;
    a.q = ptr<bf16>(qkv);
    a.k = a.q + shape.num_q_heads * d;
    a.v = a.k + shape.num_kv_heads * d;
    a.qkv_stride = qkv.row_stride;
    a.out = ptr<bf16>(out);
    a.out_stride = out.row_stride;
    a.visible_end = visible_end;
    a.positions = mask.window > 0 ? ptr<int32_t>(mask.positions) : nullptr;
    a.rows = n;
    a.prefix_k = ptr<bf16>(prefix.kv);
    a.prefix_v = a.prefix_k + shape.num_kv_heads * d;
    a.prefix_stride = prefix.kv.row_stride;
    a.prefix_end = ptr<int32_t>(prefix.subtree_end);
    a.prefix_positions = mask.window > 0 ? ptr<int32_t>(prefix.positions) : nullptr;
    a.anchor = ptr<int32_t>(prefix.anchor);
    a.prefix_rows = p;
    a.num_q_heads = shape.num_q_heads;
    a.num_kv_heads = shape.num_kv_heads;
    a.head_dim = shape.head_dim;
    a.scale = shape.scale;
    a.softcap = shape.softcap;
    a.window = mask.window;
    if (sm_count_ == 0) {
      RADIX_CUDA_CHECK(cudaDeviceGetAttribute(&sm_count_, cudaDevAttrMultiProcessorCount, device_));
    }
    const int splits =
        cuda::prefix_attention_splits(n, p, shape.num_q_heads, shape.num_kv_heads, sm_count_);
    const size_t bytes =
        cuda::prefix_attention_workspace_bytes(n, shape.num_q_heads, shape.head_dim, splits);
    void* workspace = bytes > 0 ? prefix_workspace_.get(bytes, allocated_) : nullptr;
    note_peak();
    check_launch(op, cuda::prefix_attention(a, splits, workspace, bytes, stream_));
  }

  void scatter_rows(const Tensor& src, const Tensor& index, const Tensor& out) override {
    const char* op = "scatter_rows";
    RADIX_OP_REQUIRE(kCheck, src.dtype == out.dtype, op,
                     "src " + shape_str(src) + " and out " + shape_str(out) + " differ in dtype");
    RADIX_OP_REQUIRE(kCheck, src.cols == out.cols, op,
                     "src " + shape_str(src) + " and out " + shape_str(out) + " differ in columns");
    const size_t elem = dtype_size(src.dtype);
    RADIX_OP_REQUIRE(kCheck, elem == 2 || elem == 4, op, "only 2- and 4-byte rows are scattered");
    RADIX_OP_REQUIRE(kCheck, src.data != nullptr || src.numel() == 0, op, "src has no data");
    RADIX_OP_REQUIRE(kCheck, out.data != nullptr || out.numel() == 0, op, "out has no data");
    kCheck.index(op, "index", index, src.rows);
    RADIX_OP_REQUIRE(kCheck, src.cols <= INT32_MAX, op, "too many columns");
    if (src.numel() == 0) return;
    Timed timed(this, OpKind::kGather);
    check_launch(op, cuda::scatter_rows(src.data, src.row_stride, ptr<int32_t>(index), src.rows,
                                        static_cast<int>(src.cols), static_cast<int>(elem),
                                        out.data, out.row_stride, out.rows, stream_));
  }

 private:
  // Records events around an op when profiling is on; sets the device in any case, so a worker
  // thread other than the creating one runs on the right GPU.
  class Timed {
   public:
    Timed(CudaBackend* b, OpKind kind) : b_(b), kind_(kind) {
      if (b_->profiling_) host_start_ = std::chrono::steady_clock::now();
      RADIX_CUDA_CHECK(cudaSetDevice(b_->device_));
      if (b_->profiling_) {
        start_ = b_->event();
        RADIX_CUDA_CHECK(cudaEventRecord(start_, b_->stream_));
      }
    }
    ~Timed() {
      if (!b_->profiling_) return;
      // The host's part ends before the stop event, which is the profiler's, not the op's.
      const double host_ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - host_start_)
              .count();
      (kind_ == OpKind::kGemm        ? b_->profile_.host_gemm_ms
       : kind_ == OpKind::kAttention ? b_->profile_.host_attention_ms
                                     : b_->profile_.host_other_ms) += host_ms;
      cudaEvent_t stop = b_->event();
      cudaEventRecord(stop, b_->stream_);
      b_->pending_.push_back({kind_, start_, stop});
      // Bound the events in flight when nobody takes the profile for a long time.
      if (b_->pending_.size() >= 8192 && cudaStreamSynchronize(b_->stream_) == cudaSuccess) {
        b_->fold_pending();
      }
    }
    Timed(const Timed&) = delete;
    Timed& operator=(const Timed&) = delete;

   private:
    CudaBackend* b_;
    OpKind kind_;
    cudaEvent_t start_ = nullptr;
    std::chrono::steady_clock::time_point host_start_;
  };

  // The work counter of this call's tree attention, with the per-tile bounds of `mask` computed
  // into `workspace` once for all calls that pass its id (a forward's layers) rather than by each.
  // Recomputed for a new id, other tensors or workspace, and when the counters run out.
  int shared_tree_counter(const char* op, const AttentionMask& mask, int n, void* workspace,
                          size_t bytes) {
    // The positions' bounds too when there are positions for every row, so that a layer with a
    // window and one without can share them.
    const int32_t* positions = mask.positions.rows >= n ? ptr<int32_t>(mask.positions) : nullptr;
    TreeBounds& t = tree_bounds_;
    const bool fresh = t.mask_id == mask.id && t.subtree_end == mask.subtree_end.data &&
                       t.positions == positions && t.rows == n && t.workspace == workspace &&
                       t.next_counter < kTreeCounters;
    if (!fresh) {
      check_launch(op, cuda::attention_tree_bounds(ptr<int32_t>(mask.subtree_end), positions, n,
                                                   kTreeCounters, workspace, bytes, stream_));
      t = TreeBounds{mask.id, mask.subtree_end.data, positions, n, workspace, 0};
    }
    return t.next_counter++;
  }

  // The interval rule's row ends for `mask` (key k visible to row r iff k <= r < end[k]): a tree
  // batch's subtree_end, or for a flat batch each row's sequence end, which makes the rule causal
  // (computed into seq_end_, on the stream, for the kernel that follows).
  const int32_t* visible_ends(const char* op, const AttentionMask& mask, int n) {
    if (mask.kind == AttentionMask::Kind::kTree) return ptr<int32_t>(mask.subtree_end);
    auto* ends = static_cast<int32_t*>(seq_end_.get(sizeof(int32_t) * n, allocated_));
    note_peak();
    check_launch(op, cuda::causal_subtree_end(ptr<int32_t>(mask.cu_seqlens), mask.num_seqs, ends, n,
                                              stream_));
    return ends;
  }

  // Adds the finished ops' times into profile_ and recycles their events (stream synchronised).
  void fold_pending() {
    for (auto& e : pending_) {
      float ms = 0;
      if (cudaEventElapsedTime(&ms, e.start, e.stop) != cudaSuccess) ms = 0;  // never throws
      switch (e.kind) {
        case OpKind::kGemm:
          profile_.gemm_ms += ms;
          break;
        case OpKind::kAttention:
          profile_.attention_ms += ms;
          break;
        case OpKind::kNorm:
          profile_.norm_ms += ms;
          break;
        case OpKind::kRope:
          profile_.rope_ms += ms;
          break;
        case OpKind::kSwiglu:
          profile_.swiglu_ms += ms;
          break;
        case OpKind::kGather:
          profile_.gather_ms += ms;
          break;
        case OpKind::kQuantize:
          profile_.quantize_ms += ms;
          break;
      }
      if (e.kind != OpKind::kGemm && e.kind != OpKind::kAttention) profile_.other_ms += ms;
      ++profile_.ops;
      free_events_.push_back(e.start);
      free_events_.push_back(e.stop);
    }
    pending_.clear();
  }

  cudaEvent_t event() {
    if (!free_events_.empty()) {
      cudaEvent_t e = free_events_.back();
      free_events_.pop_back();
      return e;
    }
    cudaEvent_t e;
    RADIX_CUDA_CHECK(cudaEventCreate(&e));
    return e;
  }

  // The fused norm into out: bf16/f32, or e4m3 with out_scale (checked by the callers).
  cudaError_t norm(const Tensor& x, const Tensor* delta, const Tensor& weight, float eps,
                   const Tensor& out, const Tensor& out_scale, NormWeight mode) {
    const bf16* d = delta ? ptr<bf16>(*delta) : nullptr;
    const int64_t ds = delta ? delta->row_stride : 0;
    const int h = static_cast<int>(x.cols);
    const bf16* w = ptr<bf16>(weight);
    const bool plus_one = mode == NormWeight::kPlusOne;
    return with_float_ptr(x, [&](auto* xp) {
      if (out.dtype == DType::kF8E4M3) {
        return cuda::add_rmsnorm_e4m3(xp, x.row_stride, d, ds, w, ptr<uint8_t>(out), out.row_stride,
                                      ptr<float>(out_scale), x.rows, h, eps, stream_, plus_one);
      }
      return with_float_ptr(out, [&](auto* op) {
        return cuda::add_rmsnorm(xp, x.row_stride, d, ds, w, op, out.row_stride, x.rows, h, eps,
                                 stream_, plus_one);
      });
    });
  }

  // RoPE and attention take any even head_dim up to 256 (attention has fast kernels for 64, 128
  // and 256 and runs others on the reference kernel, saying so once); Qwen3's fused q/k-norm +
  // RoPE only 64, 128 and 256.
  void check_attention_shape(const char* op, const Tensor& qkv, const AttentionShape& shape,
                             bool fused_norm = false) {
    kCheck.attention_qkv(op, qkv, shape, DType::kBF16);
    if (fused_norm) {
      RADIX_OP_REQUIRE(kCheck,
                       shape.head_dim == 64 || shape.head_dim == 128 || shape.head_dim == 256, op,
                       "head_dim must be 64, 128 or 256 on CUDA, got " + to_string(shape.head_dim));
    } else {
      RADIX_OP_REQUIRE(
          kCheck, shape.head_dim % 2 == 0 && shape.head_dim <= 256, op,
          "head_dim must be even and at most 256 on CUDA, got " + to_string(shape.head_dim));
    }
  }

  // Host transfers cannot be part of a recording: it would replay them from the same host memory.
  void not_recording(const char* op) const {
    RADIX_OP_REQUIRE(kCheck, !recording_, op, "not allowed while recording");
  }

  void track_alloc(int64_t bytes) {
    std::lock_guard<std::mutex> lock(*memory_mutex_);
    allocated_ += bytes;
    if (allocated_ > peak_) peak_ = allocated_;
  }
  void note_peak() { track_alloc(0); }

  struct PendingOp {
    OpKind kind;
    cudaEvent_t start, stop;
  };

  int device_;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<cuda::Gemm> gemm_;
  int32_t* bad_id_ = nullptr;
  bool profiling_ = false;
  bool poison_ = false;
  bool reference_attention_ = false;
  cuda::PinnedStaging pinned_;  // small uploads' sources (upload)
  uint64_t scratch_epoch_ = 0;  // memory_epoch(): moved by every Scratch reallocation
  Scratch tree_workspace_{scratch_epoch_}, seq_end_{scratch_epoch_}, bias_f32_{scratch_epoch_};
  // What tree_workspace_ holds (shared_tree_counter): the bounds of which mask, and the next
  // unused work counter. A forward has one attention call per layer; kTreeCounters covers the
  // deepest models with room, and more calls recompute the bounds with fresh counters.
  struct TreeBounds {
    uint64_t mask_id = 0;
    const void* subtree_end = nullptr;
    const int32_t* positions = nullptr;
    int rows = 0;
    const void* workspace = nullptr;
    int next_counter = 0;
  };
  static constexpr int kTreeCounters = 256;
  TreeBounds tree_bounds_;
  Scratch fp8_x_{scratch_epoch_}, fp8_x_scale_{scratch_epoch_}, fp8_product_{scratch_epoch_};
  // Buffers may outlive the backend; their deleters update the counters only while it lives.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  std::shared_ptr<std::mutex> memory_mutex_ = std::make_shared<std::mutex>();
  int64_t allocated_ = 0, peak_ = 0;
  CudaProfile profile_;
  std::vector<PendingOp> pending_;
  std::vector<cudaEvent_t> free_events_;
  Scratch prefix_workspace_{scratch_epoch_};  // prefix_attention's splits
  // Recorded work (CUDA graphs): RADIX_CUDA_GRAPHS=0 turns it off; so does profiling, whose
  // per-op events a graph cannot carry.
  bool graphs_allowed_ = true;
  bool recording_ = false;
  int sm_count_ = 0;
};

int parse_device_index(const std::string& device) {
  if (device == "cuda") return 0;
  const std::string digits = device.substr(5);
  if (digits.empty() || digits.size() > 3 ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    throw std::invalid_argument("bad CUDA device '" + device + "' (expected cuda or cuda:N)");
  }
  return std::stoi(digits);
}

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(const BackendOptions& options) {
  const int index = parse_device_index(options.device);
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw std::runtime_error("device '" + options.device +
                             "': no usable CUDA driver or GPU: " + cudaGetErrorString(err));
  }
  if (index >= count) {
    throw std::runtime_error("device '" + options.device + "': only " + to_string(count) +
                             " CUDA device(s) present");
  }
  return std::make_unique<CudaBackend>(index, options.cuda_graphs);
}

std::optional<CudaProfile> take_cuda_profile(Backend& backend) {
  auto* cuda = dynamic_cast<CudaBackend*>(&backend);
  if (cuda == nullptr) return std::nullopt;
  return cuda->take_profile();
}

std::optional<int64_t> cuda_free_memory_bytes(Backend& backend) {
  auto* cuda = dynamic_cast<CudaBackend*>(&backend);
  if (cuda == nullptr) return std::nullopt;
  return cuda->free_memory_bytes();
}

}  // namespace radix
