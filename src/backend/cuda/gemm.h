// bf16 (and e4m3) GEMMs through cuBLASLt: y = x @ w^T with fp32 accumulation, the layout of every
// projection in the model (x row-major [M, K], w row-major [N, K] as checkpoints store it).
//
// The matmul descriptors are made once per shape and cached. The algorithm is cuBLASLt's
// heuristic's first choice for the shape's step of row counts (multiples of 16 up to 128, eighths
// of a power-of-two octave above), asked once per step: a server's batches, whose row counts are
// new nearly every time, would otherwise ask the heuristic for every projection of every batch.
// With autotune on it is the fastest of the heuristic's candidates, timed on the first call of a
// shape whose M falls in a new power-of-two bucket (that call synchronises the stream; later
// calls never do). On the Qwen3 projections the heuristic's best candidate beats its first by up to
// 11 % at M = 10,240 and 30 % at M = 3,072 on an H100, 9 % and 13 % on an H200
// (bench/gemm_bench.cu, bench/RESULTS.md); in whole forwards the gain was within noise.
//
// Few rows (M <= kSkinnyGemmRows) can go to radix's own skinny_gemm (kernels/skinny_gemm.cuh)
// instead, where its preconditions hold (k, ldx, ldw multiples of 8, x and w 16-byte aligned):
// RADIX_CUDA_SKINNY_GEMM=1 (or set_skinny) turns that on. It is off by default because it does not
// beat cuBLASLt where issue 14 needs it: on the H200 at M = 64 (gemm_bench --layers 8, calls
// back to back) it reads Qwen3-8B's weights at 0.70-0.92x cuBLASLt's rate (qkv 2.33 vs 2.97 TB/s,
// o 1.87 vs 2.68, gate_up 3.19 vs 3.78, down 2.92 vs 3.19); it wins only on small weights at
// M <= 16 (Qwen3-0.6B: 1.16-1.88x). The figures: docs/cuda.md, "Small-M GEMMs".
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>

#include "backend/cuda/kernels/bf16.cuh"

namespace radix::cuda {

class Gemm {
 public:
  // Allocates the cuBLASLt workspace (32 MiB, the size NVIDIA recommends for Hopper).
  // The skinny kernel is on when RADIX_CUDA_SKINNY_GEMM=1 (off by default, see above).
  explicit Gemm(bool autotune = false, size_t workspace_bytes = size_t{32} << 20);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // x: [M, K] bf16, row stride ldx; w: [N, K] bf16, row stride ldw; y: [M, N] bf16, row stride
  // ldy. y = x @ w^T, or y += x @ w^T when accumulate. M may be 0.
  // bias: optional [N] of y's type, 16-byte aligned, added to every row in the epilogue
  // (CUBLASLT_EPILOGUE_BIAS; of y's type because that is cuBLASLt's default bias type for a
  // bf16 x bf16 product, so no type combination is left to the library's support matrix).
  void bf16_out(const bf16* x, int64_t ldx, const bf16* w, int64_t ldw, bf16* y, int64_t ldy,
                int64_t m, int64_t n, int64_t k, bool accumulate, cudaStream_t stream,
                const bf16* bias = nullptr);

  // The same with an fp32 output (accumulating into it is the residual add of the o and down
  // projections done in the GEMM epilogue, into an fp32 residual stream).
  void f32_out(const bf16* x, int64_t ldx, const bf16* w, int64_t ldw, float* y, int64_t ldy,
               int64_t m, int64_t n, int64_t k, bool accumulate, cudaStream_t stream,
               const float* bias = nullptr);

  // fp8: y[M, N] bf16 = x[M, K] e4m3 @ w[N, K]^T e4m3 with fp32 accumulation (cuBLASLt's
  // e4m3 GEMMs are TN only, both operands K-major, which is this layout; k, ldx and ldw must be
  // multiples of 16 and x, w 16-byte aligned). With x_scale ([M] f32) and w_scale ([N] f32) the
  // product of row r and column c is multiplied by x_scale[r] * w_scale[c] in cuBLASLt's epilogue
  // (CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F) before the rounding to bf16; returns false,
  // having run nothing, when this cuBLASLt has no kernel for that (then, and from then on, the
  // caller scales itself). With both scales null the product is unscaled (always available) and
  // the call returns true. With accumulate (scaled only) y += the scaled product, summed in fp32
  // and rounded once (the fp8 forward's residual add in the epilogue); false, having run
  // nothing, where this cuBLASLt has no such kernel (a separate switch: the plain scaled form
  // stays on).
  bool fp8_bf16_out(const uint8_t* x, int64_t ldx, const uint8_t* w, int64_t ldw, bf16* y,
                    int64_t ldy, int64_t m, int64_t n, int64_t k, const float* x_scale,
                    const float* w_scale, cudaStream_t stream, bool accumulate = false);
  // The same into fp32 (scaled only): with accumulate, the fp8 forward's residual add into an
  // fp32 residual stream in the epilogue. false, having run nothing, where this cuBLASLt has no
  // such kernel.
  bool fp8_f32_out(const uint8_t* x, int64_t ldx, const uint8_t* w, int64_t ldw, float* y,
                   int64_t ldy, int64_t m, int64_t n, int64_t k, const float* x_scale,
                   const float* w_scale, cudaStream_t stream, bool accumulate = false);
  // Whether fp8_bf16_out with scales may still use cuBLASLt's outer-vector scaling.
  bool fp8_outer_vec() const { return fp8_outer_vec_; }
  void disable_fp8_outer_vec() { fp8_outer_vec_ = false; }
  // e4m3 GEMMs with fast accumulation (CUBLASLT_MATMUL_DESC_FAST_ACCUM, the default): the tensor
  // cores keep the partial sums over the whole of K, skipping cuBLASLt's periodic promotion to
  // fp32 registers. Faster; its rounding is far below the e4m3 operands' own (docs/numerics.md,
  // "fp8"). RADIX_CUDA_FP8_FAST_ACCUM=0 turns it off when the Gemm is made.
  bool fp8_fast_accum() const { return fp8_fast_accum_; }
  void set_fp8_fast_accum(bool on);

  size_t cached_shapes() const { return plans_.size(); }
  size_t tuned_shapes() const { return tuned_.size(); }
  size_t chosen_shapes() const { return chosen_.size(); }

  // Whether calls of few rows may take the skinny kernel (tests switch it to reach both paths).
  bool skinny() const { return skinny_on_; }
  void set_skinny(bool on) { skinny_on_ = on; }
  // The most rows that go to the skinny kernel.
  static constexpr int64_t kSkinnyGemmRows = 64;

 private:
  struct Key {
    int64_t m, n, k, ldx, ldw, ldy;
    int align_x, align_w, align_y;
    bool f32_out, accumulate, bias;
    int fp8 = 0;  // 0: bf16 operands; 1: e4m3 operands, unscaled; 2: e4m3, outer-vector scales
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& key) const;
  };
  struct Plan;

  static void check_shape(const Key& key, const void* bias);
  // A call's key: its shape and the alignment its pointers allow.
  static Key key_of(int64_t m, int64_t n, int64_t k, int64_t ldx, int64_t ldw, int64_t ldy,
                    const void* x, const void* w, const void* y, bool f32_out, bool accumulate,
                    bool bias, int fp8);
  // bf16_out and f32_out: the small-M kernel where it is on and takes the shape, else cuBLASLt.
  template <typename TOut>
  void bf16_operands(const bf16* x, int64_t ldx, const bf16* w, int64_t ldw, TOut* y, int64_t ldy,
                     int64_t m, int64_t n, int64_t k, bool accumulate, cudaStream_t stream,
                     const TOut* bias);
  bool fp8_out(const uint8_t* x, int64_t ldx, const uint8_t* w, int64_t ldw, void* y, bool f32_out,
               int64_t ldy, int64_t m, int64_t n, int64_t k, const float* x_scale,
               const float* w_scale, cudaStream_t stream, bool accumulate);
  void run(const Key& key, const void* x, const void* w, void* y, const void* bias,
           cudaStream_t stream, const float* x_scale = nullptr, const float* w_scale = nullptr);
  Plan& plan_for(const Key& key, const void* x, const void* w, void* y, const void* bias,
                 cudaStream_t stream, const float* x_scale = nullptr,
                 const float* w_scale = nullptr);
  static int64_t bucket_of(int64_t m);
  static void create_layouts(const Key& key, int64_t rows, Plan& plan);
  static int64_t heuristic_rows(int64_t m);
  // cuBLASLt's heuristic for the key's shape on the plan's descriptors (at least one result, else
  // a CudaError naming the shape); returns how many it found.
  int heuristic(const Key& key, const Plan& plan, cublasLtMatmulPreference_t pref, int candidates,
                cublasLtMatmulHeuristicResult_t* results);
  // The heuristic's first choice for the key's row-count step (heuristic_rows), asked once per
  // step: a new M costs an algorithm check, not a heuristic query. (On the H200 the served batch
  // times did not move measurably with this, bench/RESULTS.md call O: what it bounds is the
  // work and the plans a long-running server accumulates.)
  cublasLtMatmulAlgo_t chosen_algo(const Key& key, const Plan& plan,
                                   cublasLtMatmulPreference_t pref);
  // Whether cuBLASLt runs `algo` on the plan's descriptors within the workspace.
  bool accepts(const Plan& plan, const cublasLtMatmulAlgo_t& algo);
  // With autotune: the fastest of the heuristic's candidates at the key's M, timed, kept for its
  // bucket (bucket_of; plan_for reuses it for the bucket's other row counts).
  cublasLtMatmulAlgo_t tuned_algo(const Key& key, const Plan& plan,
                                  const cublasLtMatmulHeuristicResult_t* results, int found,
                                  const void* x, const void* w, cudaStream_t stream);

  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  bool autotune_ = false;
  bool fp8_outer_vec_ = true;
  unsigned fp8_variants_off_ = 0;  // see fp8_out
  bool fp8_fast_accum_ = true;
  bool skinny_on_ = false;
  std::unordered_map<Key, std::unique_ptr<Plan>, KeyHash> plans_;
  // With autotune: the fastest candidate per shape with M rounded up to a power of two.
  std::unordered_map<Key, cublasLtMatmulAlgo_t, KeyHash> tuned_;
  // Without autotune: the heuristic's choice per row-count step (heuristic_rows).
  std::unordered_map<Key, cublasLtMatmulAlgo_t, KeyHash> chosen_;
  // Descriptors kept per exact shape, dropped all at once beyond this many.
  static constexpr size_t kMaxPlans = 4096;
};

}  // namespace radix::cuda
