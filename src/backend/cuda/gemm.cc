#include "backend/cuda/gemm.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels/skinny_gemm.cuh"

namespace radix::cuda {
namespace {

// Whether few-row GEMMs take skinny_gemm when RADIX_CUDA_SKINNY_GEMM is unset: no, it does not
// beat cuBLASLt at M = 64 (gemm.h, docs/cuda.md "Small-M GEMMs").
constexpr bool kSkinnyByDefault = false;

// Whether e4m3 GEMMs accumulate in the tensor cores throughout (CUBLASLT_MATMUL_DESC_FAST_ACCUM)
// when RADIX_CUDA_FP8_FAST_ACCUM is unset, instead of cuBLASLt's default of promoting partial sums
// to fp32 registers every few k-blocks: yes. On the H200 it makes the Qwen3 projections 7-18 %
// faster (the 8B fp8 forward 158.9 -> 147.2 ms) and leaves the error unchanged, which the e4m3
// operands' rounding dominates (gemm.h, docs/numerics.md "fp8", bench/RESULTS.md call M).
constexpr bool kFp8FastAccumByDefault = true;

// The largest power of two (up to 256) dividing the address: cuBLASLt's heuristic must not pick
// kernels that assume more alignment than the buffers have.
int alignment_of(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  int align = 256;
  while (align > 1 && a % align != 0) align /= 2;
  return align;
}

}  // namespace

struct Gemm::Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  float beta = 0.0f;
  ~Plan() {
    if (desc) cublasLtMatmulDescDestroy(desc);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (c) cublasLtMatrixLayoutDestroy(c);
  }
};

// cuBLASLt's column-major view of a call with `rows` rows of x and y: A is w [k, n], B is x
// [k, rows], C = D is y [n, rows].
void Gemm::create_layouts(const Key& key, int64_t rows, Plan& plan) {
  const cudaDataType_t in_type = key.fp8 != 0 ? CUDA_R_8F_E4M3 : CUDA_R_16BF;
  const cudaDataType_t out_type = key.f32_out ? CUDA_R_32F : CUDA_R_16BF;
  RADIX_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.a, in_type, key.k, key.n, key.ldw));
  RADIX_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.b, in_type, key.k, rows, key.ldx));
  RADIX_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.c, out_type, key.n, rows, key.ldy));
}

size_t Gemm::KeyHash::operator()(const Key& key) const {
  size_t h = 1469598103934665603ull;
  for (int64_t v : {key.m, key.n, key.k, key.ldx, key.ldw, key.ldy, int64_t{key.align_x},
                    int64_t{key.align_w}, int64_t{key.align_y}, int64_t{key.f32_out},
                    int64_t{key.accumulate}, int64_t{key.bias}, int64_t{key.fp8}}) {
    h = (h ^ static_cast<size_t>(v)) * 1099511628211ull;
  }
  return h;
}

Gemm::Key Gemm::key_of(int64_t m, int64_t n, int64_t k, int64_t ldx, int64_t ldw, int64_t ldy,
                       const void* x, const void* w, const void* y, bool f32_out, bool accumulate,
                       bool bias, int fp8) {
  return Key{
      m,       n,          k,    ldx, ldw, ldy, alignment_of(x), alignment_of(w), alignment_of(y),
      f32_out, accumulate, bias, fp8};
}

Gemm::Gemm(bool autotune, size_t workspace_bytes)
    : workspace_bytes_(workspace_bytes), autotune_(autotune) {
  RADIX_CUBLAS_CHECK(cublasLtCreate(&handle_));
  if (workspace_bytes_ > 0) RADIX_CUDA_CHECK(cudaMalloc(&workspace_, workspace_bytes_));
  const char* skinny = std::getenv("RADIX_CUDA_SKINNY_GEMM");
  skinny_on_ = skinny == nullptr ? kSkinnyByDefault : std::strcmp(skinny, "0") != 0;
  const char* fast = std::getenv("RADIX_CUDA_FP8_FAST_ACCUM");
  fp8_fast_accum_ = fast == nullptr ? kFp8FastAccumByDefault : std::strcmp(fast, "0") != 0;
}

void Gemm::set_fp8_fast_accum(bool on) {
  if (on == fp8_fast_accum_) return;
  fp8_fast_accum_ = on;
  // The mode is part of an fp8 plan's descriptor: drop those so the next call builds them anew.
  for (auto it = plans_.begin(); it != plans_.end();) {
    it = it->first.fp8 != 0 ? plans_.erase(it) : std::next(it);
  }
  for (auto* choices : {&tuned_, &chosen_}) {
    for (auto it = choices->begin(); it != choices->end();) {
      it = it->first.fp8 != 0 ? choices->erase(it) : std::next(it);
    }
  }
}

Gemm::~Gemm() {
  plans_.clear();
  if (workspace_) cudaFree(workspace_);
  if (handle_) cublasLtDestroy(handle_);
}

template <typename TOut>
void Gemm::bf16_operands(const bf16* x, int64_t ldx, const bf16* w, int64_t ldw, TOut* y,
                         int64_t ldy, int64_t m, int64_t n, int64_t k, bool accumulate,
                         cudaStream_t stream, const TOut* bias) {
  if (m == 0) return;
  const Key key = key_of(m, n, k, ldx, ldw, ldy, x, w, y, std::is_same_v<TOut, float>, accumulate,
                         bias != nullptr, 0);
  if (m <= kSkinnyGemmRows && skinny() && skinny_gemm_supported(x, ldx, w, ldw, m, n, k)) {
    check_shape(key, bias);
    RADIX_CUDA_CHECK(skinny_gemm(x, ldx, w, ldw, y, ldy, m, n, k, accumulate, bias, stream));
    return;
  }
  run(key, x, w, y, bias, stream);
}

void Gemm::bf16_out(const bf16* x, int64_t ldx, const bf16* w, int64_t ldw, bf16* y, int64_t ldy,
                    int64_t m, int64_t n, int64_t k, bool accumulate, cudaStream_t stream,
                    const bf16* bias) {
  bf16_operands(x, ldx, w, ldw, y, ldy, m, n, k, accumulate, stream, bias);
}

void Gemm::f32_out(const bf16* x, int64_t ldx, const bf16* w, int64_t ldw, float* y, int64_t ldy,
                   int64_t m, int64_t n, int64_t k, bool accumulate, cudaStream_t stream,
                   const float* bias) {
  bf16_operands(x, ldx, w, ldw, y, ldy, m, n, k, accumulate, stream, bias);
}

bool Gemm::fp8_bf16_out(const uint8_t* x, int64_t ldx, const uint8_t* w, int64_t ldw, bf16* y,
                        int64_t ldy, int64_t m, int64_t n, int64_t k, const float* x_scale,
                        const float* w_scale, cudaStream_t stream, bool accumulate) {
  return fp8_out(x, ldx, w, ldw, y, false, ldy, m, n, k, x_scale, w_scale, stream, accumulate);
}

bool Gemm::fp8_f32_out(const uint8_t* x, int64_t ldx, const uint8_t* w, int64_t ldw, float* y,
                       int64_t ldy, int64_t m, int64_t n, int64_t k, const float* x_scale,
                       const float* w_scale, cudaStream_t stream, bool accumulate) {
  if (x_scale == nullptr) throw CudaError("Gemm fp8: an fp32 output needs the scale vectors");
  return fp8_out(x, ldx, w, ldw, y, true, ldy, m, n, k, x_scale, w_scale, stream, accumulate);
}

bool Gemm::fp8_out(const uint8_t* x, int64_t ldx, const uint8_t* w, int64_t ldw, void* y,
                   bool f32_out, int64_t ldy, int64_t m, int64_t n, int64_t k, const float* x_scale,
                   const float* w_scale, cudaStream_t stream, bool accumulate) {
  if ((x_scale == nullptr) != (w_scale == nullptr)) {
    throw CudaError("Gemm fp8: give both scale vectors or neither");
  }
  if (accumulate && x_scale == nullptr) {
    throw CudaError("Gemm fp8: accumulating needs the scale vectors");
  }
  // cuBLASLt's fp8 requirements (TN is the layout; the rest is checked here so that a violation
  // is an error naming it, not a failed heuristic).
  if (k % 16 != 0 || ldx % 16 != 0 || ldw % 16 != 0 || alignment_of(x) < 16 ||
      alignment_of(w) < 16) {
    throw CudaError(
        "Gemm fp8: k and the row strides of x and w must be multiples of 16 and x, w "
        "16-byte aligned (k=" +
        std::to_string(k) + ", ldx=" + std::to_string(ldx) + ", ldw=" + std::to_string(ldw) + ")");
  }
  if (m == 0) return true;
  const bool scaled = x_scale != nullptr;
  // The scaled forms cuBLASLt turned down (bit f32_out * 2 + accumulate; bit 0 is fp8_outer_vec_).
  const unsigned variant = 1u << (2 * f32_out + accumulate);
  if (scaled && (!fp8_outer_vec_ || (fp8_variants_off_ & variant) != 0)) return false;
  const Key key =
      key_of(m, n, k, ldx, ldw, ldy, x, w, y, f32_out, accumulate, false, scaled ? 2 : 1);
  if (!scaled) {
    run(key, x, w, y, nullptr, stream);
    return true;
  }
  try {
    run(key, x, w, y, nullptr, stream, x_scale, w_scale);
    return true;
  } catch (const CudaError& e) {
    // Outer-vector scaling on this GPU needs a cuBLASLt that has it: without, the unscaled
    // product plus the caller's epilogue gives the same result (one more bf16 rounding). The
    // fp32 and accumulating forms may be missing where the plain one is not: each is switched
    // off alone.
    if (!f32_out && !accumulate) {
      fp8_outer_vec_ = false;
    } else {
      fp8_variants_off_ |= variant;
    }
    std::fprintf(stderr,
                 "radix: cuBLASLt has no e4m3 GEMM with outer-vector scales into %s%s here (%s); "
                 "the fp8 linear applies its scales in its own epilogue\n",
                 f32_out ? "fp32" : "bf16", accumulate ? ", accumulating" : "", e.what());
    return false;
  }
}

// The same argument errors whichever kernel runs.
void Gemm::check_shape(const Key& key, const void* bias) {
  if (key.m < 0 || key.n <= 0 || key.k <= 0 || key.ldx < key.k || key.ldw < key.k ||
      key.ldy < key.n) {
    throw CudaError("Gemm: bad shape m=" + std::to_string(key.m) + " n=" + std::to_string(key.n) +
                    " k=" + std::to_string(key.k));
  }
  if (bias != nullptr && alignment_of(bias) < 16) {
    throw CudaError("Gemm: the bias vector must be 16-byte aligned");
  }
}

void Gemm::run(const Key& key, const void* x, const void* w, void* y, const void* bias,
               cudaStream_t stream, const float* x_scale, const float* w_scale) {
  check_shape(key, bias);
  Plan& plan = plan_for(key, x, w, y, bias, stream, x_scale, w_scale);
  if (key.fp8 == 2) {
    // Column-major A is w (its M = radix's N output channels), B is x (its N = radix's M rows).
    RADIX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
        plan.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &w_scale, sizeof(w_scale)));
    RADIX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
        plan.desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &x_scale, sizeof(x_scale)));
  }
  if (key.bias) {
    // The descriptor is cached per shape; only the pointer changes between calls.
    RADIX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                      &bias, sizeof(bias)));
  }
  const float alpha = 1.0f;
  // Row-major y[M,N] = x[M,K] w[N,K]^T is column-major y^T[N,M] = w^T^T[N,K] x^T[K,M]: A is w
  // (transposed), B is x, C = D = y.
  RADIX_CUBLAS_CHECK(cublasLtMatmul(handle_, plan.desc, &alpha, w, plan.a, x, plan.b, &plan.beta, y,
                                    plan.c, y, plan.c, &plan.algo, workspace_, workspace_bytes_,
                                    stream));
}

Gemm::Plan& Gemm::plan_for(const Key& key, const void* x, const void* w, void* y, const void* bias,
                           cudaStream_t stream, const float* x_scale, const float* w_scale) {
  auto it = plans_.find(key);
  if (it != plans_.end()) return *it->second;

  auto plan = std::make_unique<Plan>();
  plan->beta = key.accumulate ? 1.0f : 0.0f;
  RADIX_CUBLAS_CHECK(cublasLtMatmulDescCreate(&plan->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;
  RADIX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSA,
                                                    &trans_a, sizeof(trans_a)));
  RADIX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSB,
                                                    &trans_b, sizeof(trans_b)));
  if (key.bias) {
    // Column-major D is [N, M]: the bias runs along its rows, one value per output feature. Its
    // type is left at the default (D's type). The pointer is this call's (autotune runs with
    // it); run() sets it again before every call.
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    RADIX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_EPILOGUE,
                                                      &epilogue, sizeof(epilogue)));
    RADIX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                      &bias, sizeof(bias)));
  }
  if (key.fp8 == 2) {
    // One fp32 scale per row of op(A) (w's output channels) and per column of op(B) (x's rows).
    const int32_t mode = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
    RADIX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE,
                                                      &mode, sizeof(mode)));
    RADIX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE,
                                                      &mode, sizeof(mode)));
    RADIX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
        plan->desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &w_scale, sizeof(w_scale)));
    RADIX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
        plan->desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &x_scale, sizeof(x_scale)));
  }
  if (key.fp8 != 0 && fp8_fast_accum_) {
    const int8_t fast = 1;
    RADIX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_FAST_ACCUM,
                                                      &fast, sizeof(fast)));
  }
  create_layouts(key, key.m, *plan);

  cublasLtMatmulPreference_t pref = nullptr;
  RADIX_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  struct PrefGuard {
    cublasLtMatmulPreference_t p;
    ~PrefGuard() { cublasLtMatmulPreferenceDestroy(p); }
  } guard{pref};
  RADIX_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes_, sizeof(workspace_bytes_)));
  const uint32_t align_a = key.align_w, align_b = key.align_x, align_c = key.align_y;
  RADIX_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align_a, sizeof(align_a)));
  RADIX_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align_b, sizeof(align_b)));
  RADIX_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align_c, sizeof(align_c)));
  RADIX_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align_c, sizeof(align_c)));

  if (autotune_) {
    // Chosen at another M of the bucket: no heuristic query and no timing for a new M (a
    // server's batches bring one nearly every time).
    Key bucket_key = key;
    bucket_key.m = bucket_of(key.m);
    const auto tuned = tuned_.find(bucket_key);
    if (tuned != tuned_.end() && accepts(*plan, tuned->second)) {
      plan->algo = tuned->second;
    } else {
      constexpr int kCandidates = 8;
      cublasLtMatmulHeuristicResult_t results[kCandidates] = {};
      const int found = heuristic(key, *plan, pref, kCandidates, results);
      plan->algo = results[0].algo;
      if (found > 1) plan->algo = tuned_algo(key, *plan, results, found, x, w, stream);
    }
  } else {
    plan->algo = chosen_algo(key, *plan, pref);
  }
  // A long-running server meets thousands of row counts; their descriptors are cheap to make
  // again, the algorithm choices (chosen_ / tuned_) are what is kept.
  if (plans_.size() >= kMaxPlans) plans_.clear();
  (void)y;
  return *plans_.emplace(key, std::move(plan)).first->second;
}

int Gemm::heuristic(const Key& key, const Plan& plan, cublasLtMatmulPreference_t pref,
                    int candidates, cublasLtMatmulHeuristicResult_t* results) {
  int found = 0;
  RADIX_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(handle_, plan.desc, plan.a, plan.b, plan.c,
                                                    plan.c, pref, candidates, results, &found));
  if (found == 0) {
    throw CudaError("cuBLASLt has no algorithm for m=" + std::to_string(key.m) +
                    " n=" + std::to_string(key.n) + " k=" + std::to_string(key.k));
  }
  return found;
}

// The row count the heuristic is asked about: M itself up to 16, then M rounded up to a multiple of
// 16 up to 128 and to an eighth of its power-of-two octave above (4,000 -> 4,096, 4,200 -> 4,608).
// The choice depends little on M within such a step, and a server's batches then ask the
// heuristic about some 100 row counts per projection over its life instead of one per batch.
int64_t Gemm::heuristic_rows(int64_t m) {
  if (m <= 16) return m;
  if (m <= 128) return (m + 15) / 16 * 16;
  int64_t octave = 128;
  while (octave * 2 < m) octave *= 2;
  const int64_t step = octave / 8;
  return (m + step - 1) / step * step;
}

cublasLtMatmulAlgo_t Gemm::chosen_algo(const Key& key, const Plan& plan,
                                       cublasLtMatmulPreference_t pref) {
  Key step_key = key;
  step_key.m = heuristic_rows(key.m);
  auto it = chosen_.find(step_key);
  if (it == chosen_.end()) {
    // Asked with the step's row count (the same answer whichever M of the step comes first), on
    // layouts of that many rows.
    cublasLtMatmulHeuristicResult_t result{};
    if (step_key.m == key.m) {
      heuristic(key, plan, pref, 1, &result);
    } else {
      Plan rows;  // only its layouts are used (and destroyed with it)
      create_layouts(key, step_key.m, rows);
      int found = 0;
      if (cublasLtMatmulAlgoGetHeuristic(handle_, plan.desc, plan.a, rows.b, rows.c, rows.c, pref,
                                         1, &result, &found) != CUBLAS_STATUS_SUCCESS ||
          found == 0) {
        heuristic(key, plan, pref, 1, &result);  // this M's own answer (or its error)
      }
    }
    it = chosen_.emplace(step_key, result.algo).first;
  }
  // Chosen for the step: used where cuBLASLt accepts it for this M, else this M asks itself.
  if (accepts(plan, it->second)) return it->second;
  cublasLtMatmulHeuristicResult_t own{};
  heuristic(key, plan, pref, 1, &own);
  return own.algo;
}

// The bucket a row count falls in for the tuned choice: the next power of two, so a server's
// ever-changing batch sizes tune a few dozen shapes once, not every new M.
int64_t Gemm::bucket_of(int64_t m) {
  int64_t b = 1;
  while (b < m) b *= 2;
  return b;
}

bool Gemm::accepts(const Plan& plan, const cublasLtMatmulAlgo_t& algo) {
  cublasLtMatmulHeuristicResult_t check{};
  return cublasLtMatmulAlgoCheck(handle_, plan.desc, plan.a, plan.b, plan.c, plan.c, &algo,
                                 &check) == CUBLAS_STATUS_SUCCESS &&
         check.workspaceSize <= workspace_bytes_;
}

cublasLtMatmulAlgo_t Gemm::tuned_algo(const Key& key, const Plan& plan,
                                      const cublasLtMatmulHeuristicResult_t* results, int found,
                                      const void* x, const void* w, cudaStream_t stream) {
  // Time every candidate on a scratch output (an accumulating GEMM must not add into the
  // caller's y more than once): two warm-ups, then the median of individually timed runs, so
  // that one slow run (a clock change, another process) does not decide.
  const size_t out_bytes =
      static_cast<size_t>(key.ldy) * static_cast<size_t>(key.m) * (key.f32_out ? 4 : 2);
  void* scratch = nullptr;
  RADIX_CUDA_CHECK(cudaMallocAsync(&scratch, out_bytes, stream));
  RADIX_CUDA_CHECK(cudaMemsetAsync(scratch, 0, out_bytes, stream));
  constexpr int kReps = 7;
  cudaEvent_t marks[kReps + 1];
  for (cudaEvent_t& e : marks) RADIX_CUDA_CHECK(cudaEventCreate(&e));
  const float alpha = 1.0f;
  float best_ms = std::numeric_limits<float>::infinity();
  cublasLtMatmulAlgo_t best = results[0].algo;
  for (int i = 0; i < found; ++i) {
    if (results[i].state != CUBLAS_STATUS_SUCCESS) continue;
    auto launch = [&] {
      return cublasLtMatmul(handle_, plan.desc, &alpha, w, plan.a, x, plan.b, &plan.beta, scratch,
                            plan.c, scratch, plan.c, &results[i].algo, workspace_, workspace_bytes_,
                            stream);
    };
    if (launch() != CUBLAS_STATUS_SUCCESS) continue;  // a failing candidate is skipped
    RADIX_CUBLAS_CHECK(launch());
    RADIX_CUDA_CHECK(cudaEventRecord(marks[0], stream));
    for (int r = 0; r < kReps; ++r) {
      RADIX_CUBLAS_CHECK(launch());
      RADIX_CUDA_CHECK(cudaEventRecord(marks[r + 1], stream));
    }
    RADIX_CUDA_CHECK(cudaEventSynchronize(marks[kReps]));
    float ms[kReps];
    for (int r = 0; r < kReps; ++r) {
      RADIX_CUDA_CHECK(cudaEventElapsedTime(&ms[r], marks[r], marks[r + 1]));
    }
    std::nth_element(ms, ms + kReps / 2, ms + kReps);
    if (ms[kReps / 2] < best_ms) {
      best_ms = ms[kReps / 2];
      best = results[i].algo;
    }
  }
  for (cudaEvent_t e : marks) cudaEventDestroy(e);
  RADIX_CUDA_CHECK(cudaFreeAsync(scratch, stream));
  Key bucket_key = key;
  bucket_key.m = bucket_of(key.m);
  tuned_[bucket_key] = best;
  return best;
}

}  // namespace radix::cuda
