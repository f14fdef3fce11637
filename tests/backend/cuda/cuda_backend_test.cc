// Every op of the CUDA backend against the CPU backend (the fp32 reference) through the Backend
// interface, on the same bf16-representable random inputs, at awkward sizes. The storage dtype of
// the outputs bounds the agreement: tolerances are relative to each output's scale (docs/cuda.md).
// The ops with an fp8 form (linear with e4m3 weights, norms and gated activation writing e4m3)
// run once per dtype (CudaBackendDtypeTest, backend_pair.h) with the tolerance of each dtype
// derived below (docs/numerics.md, "fp8"); embedding, RoPE, attention and gather have only a bf16
// form, also in the fp8 forward, and run in bf16 alone.
#include "backend/cuda/cuda_backend.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <numbers>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "backend_pair.h"
#include "core/fold_plan.h"
#include "core/ragged_batch.h"
#include "gpu_test_util.h"

namespace radix::cuda::testing {
namespace {

TEST_F(CudaBackendTest, ReportsItsDtypes) {
  EXPECT_EQ(gpu_->weight_dtype(), DType::kBF16);
  EXPECT_EQ(gpu_->activation_dtype(), DType::kBF16);
  EXPECT_EQ(gpu_->residual_dtype(), DType::kF32);
  EXPECT_TRUE(gpu_->supports_fp8());  // the CudaBackendDtypeTest cases below run e4m3 too
  EXPECT_EQ(gpu_->name(), "cuda:0");
}

TEST_F(CudaBackendTest, UploadDownloadStridedSlices) {
  std::mt19937 rng(1);
  const auto host = bf16_values(129 * 40, rng);
  for (DType dt : {DType::kF32, DType::kBF16}) {
    Buffer big = gpu_->alloc(dt, 200, 64);
    gpu_->fill_constant(big, 7.0f);
    const Tensor view = big.tensor().row_slice(3, 129).col_slice(5, 40);
    gpu_->upload(view, host.data(), DType::kF32);
    EXPECT_EQ(get(*gpu_, view), host);
    const auto all = get(*gpu_, big);
    EXPECT_EQ(all[0], 7.0f);
    EXPECT_EQ(all[3 * 64 + 4], 7.0f);
    EXPECT_EQ(all[3 * 64 + 45], 7.0f);
  }
  std::vector<int32_t> ints = {0, -1, 1 << 30, 7};
  Buffer bi = gpu_->alloc(DType::kI32, 4, 1);
  gpu_->upload(bi, ints.data(), DType::kI32);
  EXPECT_EQ(get(*gpu_, bi), (std::vector<float>{0.0f, -1.0f, float(1 << 30), 7.0f}));
  EXPECT_THROW(gpu_->upload(bi, host.data(), DType::kF32), BackendError);
  Buffer empty = gpu_->alloc(DType::kBF16, 0, 16);
  EXPECT_NE(empty.tensor().data, nullptr);
  gpu_->upload(empty, host.data(), DType::kF32);  // nothing to copy
}

// Small uploads go through page-locked staging that empties only at a synchronisation
// (pinned_staging.h). Many uploads between two synchronisations, more bytes than the staging
// holds (so the later ones take the pageable path), each of its own values into its own buffer,
// must all arrive, also after the staging was emptied and refilled; converted uploads too.
TEST_F(CudaBackendTest, ManyUploadsBetweenSynchronisationsAllArrive) {
  constexpr int kArrays = 1200, kInts = 1024;  // 4.7 MiB: past the 4 MiB staging
  for (int round = 0; round < 2; ++round) {
    std::vector<Buffer> buffers;
    std::vector<std::vector<int32_t>> values(kArrays, std::vector<int32_t>(kInts));
    for (int a = 0; a < kArrays; ++a) {
      for (int i = 0; i < kInts; ++i) values[a][i] = (round * kArrays + a) * kInts + i;
      buffers.push_back(gpu_->alloc(DType::kI32, kInts, 1));
      gpu_->upload(buffers.back(), values[a].data(), DType::kI32);
    }
    std::vector<float> floats(kInts);
    for (int i = 0; i < kInts; ++i) floats[i] = 0.5f * i - round;
    Buffer bf = gpu_->alloc(DType::kBF16, 1, kInts);
    gpu_->upload(bf, floats.data(), DType::kF32);  // converted into the staging
    for (int a = 0; a < kArrays; a += 37) {
      std::vector<float> got(kInts);
      gpu_->download(buffers[a], got.data());
      for (int i = 0; i < kInts; ++i) {
        ASSERT_EQ(got[i], static_cast<float>(values[a][i])) << "array " << a << ", round " << round;
      }
    }
    std::vector<float> got(kInts);
    gpu_->download(bf, got.data());
    for (int i = 0; i < kInts; ++i) ASSERT_EQ(got[i], round_bf16(floats[i])) << i;
  }
}

TEST_F(CudaBackendTest, RandomFillMatchesCpuStream) {
  for (DType dt : {DType::kF32, DType::kBF16}) {
    Pair p = make_out(129, 77, dt);
    cpu_->fill_random_normal(p.cpu, 99, 0.02f, 5);
    gpu_->fill_random_normal(p.gpu, 99, 0.02f, 5);
    EXPECT_LT(err(p), dt == DType::kF32 ? 1e-5 : 8e-3) << dtype_name(dt);
    // A row slice continues the stream of the whole tensor (first_index).
    Pair q = make_out(10, 77, dt);
    gpu_->fill_random_normal(q.gpu, 99, 0.02f, 5 + 100 * 77);
    const auto whole = get(*cpu_, p.cpu), part = get(*gpu_, q.gpu);
    const std::vector<float> want(whole.begin() + 100 * 77, whole.begin() + 110 * 77);
    EXPECT_LT(rel_err(part, want), dt == DType::kF32 ? 1e-5 : 8e-3);
  }
}

TEST_F(CudaBackendTest, EmbeddingAndBadIds) {
  std::mt19937 rng(2);
  const int vocab = 1000, hidden = 256;
  Pair table = make(bf16_values(vocab * hidden, rng), vocab, hidden, DType::kBF16);
  for (int rows : {1, 127, 129}) {
    std::vector<int32_t> ids(rows);
    for (auto& id : ids) id = static_cast<int32_t>(rng() % vocab);
    Pair idx = make_index(ids);
    Pair out = make_out(rows, hidden, DType::kF32);
    cpu_->embedding(table.cpu, idx.cpu, out.cpu);
    gpu_->embedding(table.gpu, idx.gpu, out.gpu);
    EXPECT_EQ(err(out), 0.0) << rows;
  }
  Pair idx = make_index({3, vocab + 5});
  Pair out = make_out(2, hidden, DType::kF32);
  gpu_->embedding(table.gpu, idx.gpu, out.gpu);
  EXPECT_THROW(gpu_->synchronize(), BackendError);
  gpu_->synchronize();  // the error is reported once
}

// ---- per-dtype tolerances (docs/numerics.md, "fp8") ------------------------------------------
// bf16 outputs (norms, gated activation, linear): one rounding of the fp32 result, at most 2^-8
// relative; the tests allow 8e-3 (~2^-7) of the output's largest value, twice that where the
// accumulate adds a second rounding of the earlier output.
constexpr double kBf16Tol = 8e-3;
// e4m3 outputs (norms, gated activation): each row is scaled so that its largest value becomes
// 448, in e4m3's top binade [256, 448], whose half step is 16; every other value rounds with at
// most half a step of its own (smaller) binade, or 2^-10 in the subnormal range. So per row
// max |error| <= 16 / 448 = 1/28 of the row's largest value (the 2^-4 relative of 3 mantissa bits,
// times 256 / 448 since no value exceeds 448), plus the two backends' fp32 differences (< 1e-5 of
// the largest: the fp32-output cases assert it), for which 1e-4 is allowed. Measured per row (each
// row has its own scale): a wrong row scale, a truncating rounding (up to 1/14) or a bf16 rounding
// before the e4m3 one (up to 1/28 + 2^-9) exceed it.
constexpr double kE4m3OutTol = 16.0 / 448.0 + 1e-4;
// Output tolerance for `dtype` and how the error is measured: bf16 relative to the tensor's
// largest value, e4m3 relative to each row's.
double output_err(DType dtype, const std::vector<float>& got, const std::vector<float>& want,
                  int64_t rows, int64_t cols) {
  return dtype == DType::kF8E4M3 ? row_rel_err(got, want, rows, cols) : rel_err(got, want);
}
double output_tol(DType dtype) { return dtype == DType::kF8E4M3 ? kE4m3OutTol : kBf16Tol; }

// The fp8 linear against the CPU's fp32 product of bf16 x and the dequantised e4m3 weights: the
// only differences are the activation's rounding to e4m3 (per row, by linear_fp8), the output
// rounding and the accumulation. Each x_k is within 2^-4 relative of itself; for x smooth on the
// scale of one e4m3 step the rounding error is uniform within half a step, so its RMS is at most
// 2^-4 / sqrt(3) relative (reached at the bottom of a binade). The error of a K-term dot product,
// sum_k x_k delta_k w_k with independent zero-mean delta_k, then has an RMS of at most
// 2^-4 / sqrt(3) * sqrt(sum_k (x_k w_k)^2), and for random-sign terms sum_k (x_k w_k)^2 has the
// expectation of y^2: RMS(error) / RMS(y) <= 2^-4 / sqrt(3) = 0.036 (the docs measure 0.026 for
// Gaussian x). Added as worst cases: the bf16 output rounding(s), 2^-7 (two on the own-epilogue
// path: the unscaled product, then the scaled result); Hopper's fp8 accumulation keeping ~14 bits
// of the running sum. With cuBLASLt's periodic promotion to fp32 that is 2^-12 sum_k |x_k w_k|,
// for Gaussian terms 2^-12 (2 / pi) sqrt(K) of RMS(y); with fast accumulation (radix's default)
// each of the K/32 steps may lose 2^-14 of the running sum, whose expected size never exceeds
// RMS(y), so at most 2^-14 ceil(K/32) of RMS(y) even if every loss has the same sign; the larger of
// the two is taken (the first up to K ~ 6,600). Together 0.046 (K = 256) to 0.049 (K = 1024),
// against an expected 0.026 (Gaussian x, docs/numerics.md). Checked on the whole output and on
// every row and column of >= 256 elements, whose sampled RMS is within ~7 % (one standard
// deviation) of its expectation, so the worst of thousands of rows stays well inside the gap
// between 0.026 and the bound (a host simulation of these shapes: at most 0.76 of the bound over 10
// seeds). A 10 % wrong row or channel scale, a lost row or a truncating rounding (simulated: up
// to 1.3 times the bound) fail it.
double e4m3_linear_rms_tol(int64_t k) {
  const double promoted = 0x1p-12 * (2.0 / std::numbers::pi) * std::sqrt(double(k));
  const double fast = 0x1p-14 * std::ceil(double(k) / 32.0);
  return 0x1p-4 / std::sqrt(3.0) + 0x1p-7 + std::max(promoted, fast);
}

// Norms: bf16 in and out as the bf16 forward, or an e4m3 output with per-row scales as the fp8
// forward's qkv and gate_up inputs. The norm weight itself is bf16 in both forwards.
TEST_P(CudaBackendDtypeTest, NormsMatchCpu) {
  const DType dt = GetParam();
  std::mt19937 rng(3);
  for (const NormWeight mode : {NormWeight::kPlain, NormWeight::kPlusOne}) {
    for (int rows : {1, 127, 129}) {
      for (int hidden : {1024, 200}) {
        const auto x = bf16_values(rows * hidden, rng, 2.0f);
        Pair w = make(bf16_values(hidden, rng), 1, hidden, DType::kBF16);
        Pair res = make(x, rows, hidden, DType::kF32);
        Pair delta = make(bf16_values(rows * hidden, rng), rows, hidden, DType::kBF16);
        const std::string at = std::to_string(rows) + "x" + std::to_string(hidden) +
                               (mode == NormWeight::kPlusOne ? " (1 + w)" : "");
        Out normed = make_typed_out(rows, hidden, dt);
        cpu_->rms_norm(res.cpu, w.cpu, 1e-6f, normed.p.cpu, mode);
        gpu_->rms_norm(res.gpu, w.gpu, 1e-6f, normed.p.gpu, mode, normed.scale);
        EXPECT_LT(output_err(dt, gpu_values(normed), get(*cpu_, normed.p.cpu), rows, hidden),
                  output_tol(dt))
            << "rms_norm " << at;
        normed = make_typed_out(rows, hidden, dt);
        cpu_->add_rms_norm(res.cpu, delta.cpu, w.cpu, 1e-6f, normed.p.cpu, mode);
        gpu_->add_rms_norm(res.gpu, delta.gpu, w.gpu, 1e-6f, normed.p.gpu, mode, normed.scale);
        EXPECT_LT(err(res), 1e-6) << "fp32 residual after the add";
        EXPECT_LT(output_err(dt, gpu_values(normed), get(*cpu_, normed.p.cpu), rows, hidden),
                  output_tol(dt))
            << "add_rms_norm " << at;
        // The final norm in fp32 (an f32 output is allowed too; the same in both forwards).
        Pair f32 = make_out(rows, hidden, DType::kF32);
        cpu_->rms_norm(res.cpu, w.cpu, 1e-6f, f32.cpu, mode);
        gpu_->rms_norm(res.gpu, w.gpu, 1e-6f, f32.gpu, mode);
        EXPECT_LT(err(f32), 1e-5) << at;
      }
    }
  }
}

// The gated activation: bf16 out, or e4m3 with per-row scales (the fp8 down projection's input).
TEST_P(CudaBackendDtypeTest, GatedActivationMatchesCpu) {
  const DType dt = GetParam();
  std::mt19937 rng(5);
  for (const Activation act : {Activation::kSiLU, Activation::kGeluTanh}) {
    for (int rows : {1, 127, 129}) {
      for (int inter : {384, 1001}) {
        Pair gu = make(bf16_values(rows * 2 * inter, rng, 2.0f), rows, 2 * inter, DType::kBF16);
        Out out = make_typed_out(rows, inter, dt);
        cpu_->gated_activation(gu.cpu, act, out.p.cpu);
        gpu_->gated_activation(gu.gpu, act, out.p.gpu, out.scale);
        EXPECT_LT(output_err(dt, gpu_values(out), get(*cpu_, out.p.cpu), rows, inter),
                  output_tol(dt))
            << activation_name(act) << " " << rows << "x" << inter;
      }
    }
  }
}

// Projections: bf16 weights through Backend::linear, e4m3 weights (per-channel scales) through
// Backend::linear_fp8, with and without a bias, bf16 and fp32 outputs, accumulating. The narrow
// weights of <= 8 rows (the warp-per-output kernel) and inner sizes that are not multiples of 16
// are bf16 only: cuBLASLt's e4m3 GEMM needs k % 16 == 0, and the fp8 forward quantises only the
// four projections, never the LM-head rows or a classifier.
TEST_P(CudaBackendDtypeTest, LinearMatchesCpu) {
  const DType dt = GetParam();
  const bool fp8 = dt == DType::kF8E4M3;
  std::vector<std::pair<int, int>> shapes = {{384, 256}, {96, 1024}};
  if (!fp8) shapes.insert(shapes.end(), {{2, 1024}, {3, 200}});
  std::mt19937 rng(4);
  double worst_rms = 0;
  for (int rows : {1, 127, 129, 1000}) {
    for (auto [out_f, in_f] : shapes) {
      Pair x = make(bf16_values(rows * in_f, rng), rows, in_f, DType::kBF16);
      const Weight w = make_weight(bf16_values(out_f * in_f, rng, 0.05f), out_f, in_f, dt);
      Pair b = make(bf16_values(out_f, rng), 1, out_f, DType::kBF16);
      for (const bool bias : {false, true}) {
        const Tensor bc = bias ? b.cpu.tensor() : Tensor{}, bg = bias ? b.gpu.tensor() : Tensor{};
        for (DType odt : {DType::kBF16, DType::kF32}) {
          const std::string at = std::to_string(rows) + " " + std::to_string(out_f) + "x" +
                                 std::to_string(in_f) + " " + dtype_name(odt) +
                                 (bias ? " bias" : "");
          Pair y = make_out(rows, out_f, odt);
          for (const bool accumulate : {false, true}) {
            cpu_->linear(x.cpu, w.cpu, y.cpu, accumulate, bc);
            gpu_linear(x.gpu, w, y.gpu, accumulate, bg);
            const std::string what = at + (accumulate ? " accumulate" : "");
            if (!fp8) {
              const double tol = (odt == DType::kBF16 ? kBf16Tol : 1e-4) * (accumulate ? 2 : 1);
              EXPECT_LT(err(y), tol) << what;
              continue;
            }
            const RmsErr e = rms_rel_err(get(*gpu_, y.gpu), get(*cpu_, y.cpu), rows, out_f);
            const double tol = e4m3_linear_rms_tol(in_f);
            EXPECT_LT(e.all, tol) << what;
            EXPECT_LT(e.worst_row, tol) << "worst row, " << what;
            EXPECT_LT(e.worst_col, tol) << "worst channel, " << what;
            worst_rms = std::max(worst_rms, e.all);
          }
        }
      }
    }
  }
  if (fp8) {
    std::printf(
        "e4m3 linear vs the CPU on the dequantised weights: RMS error up to %.4f of the "
        "output's RMS (bound %.4f-%.4f)\n",
        worst_rms, e4m3_linear_rms_tol(256), e4m3_linear_rms_tol(1024));
  }
  // Strided views: columns of a wider buffer (how the model reads the fused outputs).
  Pair x = make(bf16_values(129 * 512, rng), 129, 512, DType::kBF16);
  const Weight w = make_weight(bf16_values(256 * 256, rng, 0.05f), 256, 256, dt);
  Pair y = make_out(129, 512, DType::kBF16);
  const auto xs = [](const Tensor& t) { return t.col_slice(256, 256); };
  cpu_->linear(xs(x.cpu), w.cpu, xs(y.cpu));
  gpu_linear(xs(x.gpu), w, xs(y.gpu));
  const auto got = get(*gpu_, xs(y.gpu)), want = get(*cpu_, xs(y.cpu));
  if (fp8) {
    const RmsErr e = rms_rel_err(got, want, 129, 256);
    EXPECT_LT(e.all, e4m3_linear_rms_tol(256)) << "strided";
    EXPECT_LT(e.worst_row, e4m3_linear_rms_tol(256)) << "strided, worst row";
    EXPECT_LT(e.worst_col, e4m3_linear_rms_tol(256)) << "strided, worst channel";
  } else {
    EXPECT_LT(rel_err(got, want), kBf16Tol) << "strided";
  }
  EXPECT_THROW(gpu_linear(x.gpu, w, y.gpu), BackendError);  // shapes differ
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaBackendDtypeTest,
                         ::testing::Values(DType::kBF16, DType::kF8E4M3), dtype_param_name);

// q/k norm + RoPE: bf16 only, also in the fp8 forward (attention's inputs stay bf16).
TEST_F(CudaBackendTest, QkNormRopeMatchesCpu) {
  std::mt19937 rng(5);
  const AttentionShape shape{4, 2, 128, 1.0f / std::sqrt(128.0f)};
  const int width = (4 + 2 * 2) * 128;
  for (int rows : {1, 127, 129}) {
    Pair qkv = make(bf16_values(rows * width, rng, 2.0f), rows, width, DType::kBF16);
    Pair qn = make(bf16_values(128, rng), 1, 128, DType::kBF16);
    Pair kn = make(bf16_values(128, rng), 1, 128, DType::kBF16);
    std::vector<int32_t> pos(rows);
    for (auto& p : pos) p = static_cast<int32_t>(rng() % 2048);
    Pair positions = make_index(pos);
    cpu_->qk_norm_rope(qkv.cpu, shape, qn.cpu, kn.cpu, positions.cpu, 1e-6f, 1e6f);
    gpu_->qk_norm_rope(qkv.gpu, shape, qn.gpu, kn.gpu, positions.gpu, 1e-6f, 1e6f);
    EXPECT_LT(err(qkv), 1e-2) << rows;
  }
}

TEST_F(CudaBackendTest, GatherRowsMatchesCpu) {
  std::mt19937 rng(6);
  for (DType dt : {DType::kBF16, DType::kF32}) {
    Pair src = make(bf16_values(129 * 300, rng), 129, 300, dt);
    std::vector<int32_t> index(127);
    for (auto& i : index) i = static_cast<int32_t>(rng() % 130) - 1;  // -1: a zero row
    Pair idx = make_index(index);
    Pair out = make_out(127, 300, dt);
    cpu_->gather_rows(src.cpu, idx.cpu, out.cpu);
    gpu_->gather_rows(src.gpu, idx.gpu, out.gpu);
    EXPECT_EQ(err(out), 0.0) << dtype_name(dt);
  }
}

TEST_F(CudaBackendTest, AttentionTreeAndVarlenAgreeWithCpu) {
  const AttentionShape shape{4, 2, 128, 1.0f / std::sqrt(128.0f)};
  const int width = (4 + 2 * 2) * 128, out_w = 4 * 128;
  for (int trial = 0; trial < 3; ++trial) {
    std::mt19937 rng(100 + trial);
    const RaggedBatch batch = random_batch(rng, 1 + 12 * trial);
    FoldOptions fold;
    fold.pad_to_multiple = trial == 2 ? 64 : 1;  // padding rows see only themselves
    const FoldPlan plan = build_fold_plan(batch.ids, batch.positions, batch.cu_seqlens, fold);
    const int n = plan.num_rows, tokens = static_cast<int>(batch.num_tokens());
    Pair qkv = make(bf16_values(n * width, rng), n, width, DType::kBF16);

    AttentionMask tree;
    tree.kind = AttentionMask::Kind::kTree;
    Pair ends = make_index(plan.subtree_end);
    Pair out_tree = make_out(n, out_w, DType::kBF16);
    tree.subtree_end = ends.cpu;
    cpu_->attention(qkv.cpu, shape, tree, out_tree.cpu);
    tree.subtree_end = ends.gpu;
    gpu_->attention(qkv.gpu, shape, tree, out_tree.gpu);
    EXPECT_LT(err(out_tree), 1e-2) << "tree, trial " << trial;

    // The scatter path: rows to tokens, varlen causal attention, back to rows.
    Pair scatter = make_index(plan.scatter), gather = make_index(plan.gather);
    Pair flat = make_out(tokens, width, DType::kBF16);
    Pair out_flat = make_out(tokens, out_w, DType::kBF16);
    Pair out_rows = make_out(n, out_w, DType::kBF16);
    Pair cu = make_index(batch.cu_seqlens);
    AttentionMask varlen;
    varlen.kind = AttentionMask::Kind::kVarlenCausal;
    varlen.num_seqs = batch.num_sequences();
    for (int s = 0; s < varlen.num_seqs; ++s) {
      varlen.max_seqlen =
          std::max(varlen.max_seqlen, batch.cu_seqlens[s + 1] - batch.cu_seqlens[s]);
    }
    varlen.cu_seqlens = cu.gpu;
    gpu_->gather_rows(qkv.gpu, scatter.gpu, flat.gpu);
    gpu_->attention(flat.gpu, shape, varlen, out_flat.gpu);
    gpu_->gather_rows(out_flat.gpu, gather.gpu, out_rows.gpu);
    varlen.cu_seqlens = cu.cpu;
    cpu_->gather_rows(qkv.cpu, scatter.cpu, flat.cpu);
    cpu_->attention(flat.cpu, shape, varlen, out_flat.cpu);
    cpu_->gather_rows(out_flat.cpu, gather.cpu, out_rows.cpu);
    EXPECT_LT(err(out_flat), 1e-2) << "varlen, trial " << trial;
    // Tree and scatter agree on every real row (padding rows: zeros from the gather vs their
    // own attention in tree mode, so compare through the gather index).
    const auto t = get(*gpu_, out_tree.gpu), s = get(*gpu_, out_rows.gpu);
    std::vector<float> tv, sv;
    for (int r = 0; r < n; ++r) {
      if (plan.gather[r] < 0) continue;
      tv.insert(tv.end(), t.begin() + r * out_w, t.begin() + (r + 1) * out_w);
      sv.insert(sv.end(), s.begin() + r * out_w, s.begin() + (r + 1) * out_w);
    }
    EXPECT_LT(rel_err(tv, sv), 1e-2) << "tree vs scatter, trial " << trial;
  }
}

// A mask with an id lets the backend compute the tree attention's per-tile bounds once for all
// calls with that id (a forward's layers), each call taking its own work counter. Every such call
// must give exactly what a call without an id gives (the same kernel on the same inputs), with a
// window on some layers; and new contents in the same subtree_end buffer under a new id must not
// be served the old bounds: first a chain (every row sees all before it), then rows that see only
// themselves, where stale bounds would let rows see keys they must not.
TEST_F(CudaBackendTest, AttentionMaskIdSharesTreeBoundsAndNeverServesStaleOnes) {
  const AttentionShape shape{4, 2, 128, 1.0f / std::sqrt(128.0f)};
  constexpr int kLayers = 4;
  const int n = 300, width = (4 + 2 * 2) * 128, out_w = 4 * 128;
  std::vector<int32_t> chain(n, n), alone(n), positions(n);
  for (int r = 0; r < n; ++r) alone[r] = r + 1, positions[r] = r;
  Pair ends = make_index(chain), pos = make_index(positions);
  std::mt19937 rng(7);
  for (const auto* contents : {&chain, &alone}) {
    const char* name = contents == &chain ? "chain" : "alone";
    if (contents == &alone) gpu_->upload(ends.gpu, alone.data(), DType::kI32);
    AttentionMask mask;
    mask.kind = AttentionMask::Kind::kTree;
    mask.subtree_end = ends.gpu;
    mask.positions = pos.gpu;
    mask.id = new_attention_mask_id();
    std::vector<Pair> qkv, shared;
    for (int layer = 0; layer < kLayers; ++layer) {  // the layers back to back, as a forward
      qkv.push_back(make(bf16_values(n * width, rng), n, width, DType::kBF16));
      shared.push_back(make_out(n, out_w, DType::kBF16));
      mask.window = layer % 2 == 1 ? 40 : 0;
      gpu_->attention(qkv[layer].gpu, shape, mask, shared[layer].gpu);
    }
    Pair cpu_ends = make_index(*contents);
    for (int layer = 0; layer < kLayers; ++layer) {
      AttentionMask own = mask;
      own.id = 0;
      own.window = layer % 2 == 1 ? 40 : 0;
      Pair by_itself = make_out(n, out_w, DType::kBF16);
      gpu_->attention(qkv[layer].gpu, shape, own, by_itself.gpu);
      ASSERT_EQ(get(*gpu_, shared[layer].gpu), get(*gpu_, by_itself.gpu))
          << name << ", layer " << layer;
      // And right: the CPU's attention under the same mask.
      own.subtree_end = cpu_ends.cpu;
      own.positions = pos.cpu;
      cpu_->attention(qkv[layer].cpu, shape, own, shared[layer].cpu);
      EXPECT_LT(err(shared[layer]), 1e-2) << name << ", layer " << layer;
    }
  }
}

TEST_F(CudaBackendTest, RejectsWrongDtypesWithBackendError) {
  Buffer f = gpu_->alloc(DType::kF32, 4, 8), b = gpu_->alloc(DType::kBF16, 4, 8);
  Buffer w = gpu_->alloc(DType::kBF16, 1, 8);
  EXPECT_THROW(gpu_->gated_activation(f, Activation::kSiLU, b), BackendError);
  EXPECT_THROW(gpu_->add_rms_norm(f, f, w, 1e-6f, b), BackendError);  // delta must be bf16
  EXPECT_THROW(gpu_->rms_norm(f, f, 1e-6f, b), BackendError);         // weight must be bf16
  EXPECT_THROW(gpu_->gather_rows(f, f, b), BackendError);
  EXPECT_THROW(gpu_->alloc(DType::kF32, -1, 4), BackendError);
}

}  // namespace
}  // namespace radix::cuda::testing
