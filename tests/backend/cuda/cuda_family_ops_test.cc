// The ops and options of the families beyond Qwen3 (Mistral, Qwen2, Llama, Gemma, Gemma2) on the
// CUDA backend against the CPU backend: scaled embeddings, (1 + w) norms, linear with a bias, RoPE
// from an inv_freq table, GeGLU, and attention over head_dim {64, 128, 256} x soft-cap x sliding
// window x mask kind, on the fast kernels and on the reference fallback. Tolerances as in
// cuda_backend_test.cc (docs/cuda.md): bf16 storage bounds the agreement.
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "backend_pair.h"
#include "core/fold_plan.h"

namespace radix::cuda::testing {
namespace {

TEST_F(CudaBackendTest, ScaledEmbeddingMatchesCpu) {
  std::mt19937 rng(21);
  const int vocab = 500;
  for (int hidden : {2048, 200}) {
    Pair table = make(bf16_values(vocab * hidden, rng), vocab, hidden, DType::kBF16);
    const float scale = round_bf16(std::sqrt(static_cast<float>(hidden)));
    std::vector<int32_t> ids(129);
    for (auto& id : ids) id = static_cast<int32_t>(rng() % vocab);
    Pair idx = make_index(ids);
    for (DType odt : {DType::kF32, DType::kBF16}) {
      Pair out = make_out(129, hidden, odt);
      cpu_->embedding(table.cpu, idx.cpu, out.cpu, scale);
      gpu_->embedding(table.gpu, idx.gpu, out.gpu, scale);
      // The GPU rounds the product to bf16 as transformers does in a bf16 model; the fp32 CPU
      // keeps it: one bf16 rounding (2^-9) apart.
      EXPECT_LT(err(out), 4e-3) << hidden << " " << dtype_name(odt);
    }
  }
}

TEST_F(CudaBackendTest, PlusOneNormsMatchCpu) {
  std::mt19937 rng(22);
  for (int rows : {1, 127, 129}) {
    for (int hidden : {2048, 3584, 200}) {
      const auto x = bf16_values(rows * hidden, rng, 2.0f);
      // Gemma stores w - 1: small values around 0, some near -1 (a factor near 0).
      Pair w = make(bf16_values(hidden, rng, 0.5f), 1, hidden, DType::kBF16);
      Pair res = make(x, rows, hidden, DType::kF32);
      Pair delta = make(bf16_values(rows * hidden, rng), rows, hidden, DType::kBF16);
      Pair normed = make_out(rows, hidden, DType::kBF16);
      cpu_->rms_norm(res.cpu, w.cpu, 1e-6f, normed.cpu, NormWeight::kPlusOne);
      gpu_->rms_norm(res.gpu, w.gpu, 1e-6f, normed.gpu, NormWeight::kPlusOne);
      EXPECT_LT(err(normed), 8e-3) << rows << "x" << hidden;
      cpu_->add_rms_norm(res.cpu, delta.cpu, w.cpu, 1e-6f, normed.cpu, NormWeight::kPlusOne);
      gpu_->add_rms_norm(res.gpu, delta.gpu, w.gpu, 1e-6f, normed.gpu, NormWeight::kPlusOne);
      EXPECT_LT(err(res), 1e-6) << "fp32 residual after the add";
      EXPECT_LT(err(normed), 8e-3) << rows << "x" << hidden;
      Pair f32 = make_out(rows, hidden, DType::kF32);
      cpu_->rms_norm(res.cpu, w.cpu, 1e-6f, f32.cpu, NormWeight::kPlusOne);
      gpu_->rms_norm(res.gpu, w.gpu, 1e-6f, f32.gpu, NormWeight::kPlusOne);
      EXPECT_LT(err(f32), 1e-5);
      // And the plain weight still means w, not 1 + w.
      Pair plain = make_out(rows, hidden, DType::kF32);
      gpu_->rms_norm(res.gpu, w.gpu, 1e-6f, plain.gpu);
      EXPECT_GT(rel_err(get(*gpu_, plain.gpu), get(*gpu_, f32.gpu)), 0.1);
    }
  }
}

// Qwen2's q/k/v bias (bf16 out through cuBLASLt's epilogue), Llama's o_proj / down_proj bias
// (fp32 out, accumulated into the residual) and small heads with a bias (the warp-per-output
// kernel), at awkward sizes and on strided views.
TEST_F(CudaBackendTest, LinearWithBiasMatchesCpu) {
  std::mt19937 rng(23);
  for (int rows : {1, 127, 129, 1000}) {
    for (auto [out_f, in_f] :
         {std::pair{384, 256}, std::pair{1000, 200}, std::pair{2, 1024}, std::pair{3, 200}}) {
      Pair x = make(bf16_values(rows * in_f, rng), rows, in_f, DType::kBF16);
      Pair w = make(bf16_values(out_f * in_f, rng, 0.05f), out_f, in_f, DType::kBF16);
      Pair b = make(bf16_values(out_f, rng), 1, out_f, DType::kBF16);
      for (DType odt : {DType::kBF16, DType::kF32}) {
        Pair y = make_out(rows, out_f, odt);
        cpu_->linear(x.cpu, w.cpu, y.cpu, false, b.cpu);
        gpu_->linear(x.gpu, w.gpu, y.gpu, false, b.gpu);
        const double tol = odt == DType::kBF16 ? 8e-3 : 1e-4;
        EXPECT_LT(err(y), tol) << rows << " " << out_f << "x" << in_f << " " << dtype_name(odt);
        cpu_->linear(x.cpu, w.cpu, y.cpu, /*accumulate=*/true, b.cpu);
        gpu_->linear(x.gpu, w.gpu, y.gpu, /*accumulate=*/true, b.gpu);
        EXPECT_LT(err(y), 2 * tol) << "accumulate " << rows << " " << out_f;
      }
    }
  }
  // The fused q/k/v projection writing into columns of a wider buffer.
  Pair x = make(bf16_values(129 * 256, rng), 129, 256, DType::kBF16);
  Pair w = make(bf16_values(256 * 256, rng, 0.05f), 256, 256, DType::kBF16);
  Pair b = make(bf16_values(256, rng), 1, 256, DType::kBF16);
  Pair y = make_out(129, 512, DType::kBF16);
  const auto cols = [](const Tensor& t) { return t.col_slice(256, 256); };
  cpu_->linear(x.cpu, w.cpu, cols(y.cpu), false, b.cpu);
  gpu_->linear(x.gpu, w.gpu, cols(y.gpu), false, b.gpu);
  EXPECT_LT(rel_err(get(*gpu_, cols(y.gpu)), get(*cpu_, cols(y.cpu))), 8e-3);
  // A bias of the wrong width or dtype is an argument error.
  Pair short_b = make(bf16_values(255, rng), 1, 255, DType::kBF16);
  EXPECT_THROW(gpu_->linear(x.gpu, w.gpu, cols(y.gpu), false, short_b.gpu), BackendError);
  Buffer f32_b = gpu_->alloc(DType::kF32, 1, 256);
  EXPECT_THROW(gpu_->linear(x.gpu, w.gpu, cols(y.gpu), false, f32_b), BackendError);
}

TEST_F(CudaBackendTest, RopeTableAndGegluMatchCpu) {
  std::mt19937 rng(24);
  for (int d : {64, 128, 256}) {
    const AttentionShape shape{4, 2, d, 1.0f / std::sqrt(static_cast<float>(d))};
    const int width = (4 + 2 * 2) * d;
    std::vector<float> inv_freq(d / 2);
    for (int i = 0; i < d / 2; ++i) {
      inv_freq[i] = 1.0f / std::pow(10000.0f, static_cast<float>(2 * i) / d);
      if (i >= d / 4) inv_freq[i] /= 8.0f;  // a scaled table (as llama3 rope scaling makes)
    }
    Pair table = make(inv_freq, 1, d / 2, DType::kF32);
    for (int rows : {1, 127, 129}) {
      Pair qkv = make(bf16_values(rows * width, rng, 2.0f), rows, width, DType::kBF16);
      std::vector<int32_t> pos(rows);
      for (auto& p : pos) p = static_cast<int32_t>(rng() % 8192);
      Pair positions = make_index(pos);
      cpu_->rope(qkv.cpu, shape, positions.cpu, table.cpu);
      gpu_->rope(qkv.gpu, shape, positions.gpu, table.gpu);
      EXPECT_LT(err(qkv), 1e-2) << "d " << d << " rows " << rows;
    }
  }
  for (int rows : {1, 127, 129}) {
    for (int inter : {384, 1001}) {
      Pair gu = make(bf16_values(rows * 2 * inter, rng, 2.0f), rows, 2 * inter, DType::kBF16);
      Pair act = make_out(rows, inter, DType::kBF16);
      cpu_->gated_activation(gu.cpu, Activation::kGeluTanh, act.cpu);
      gpu_->gated_activation(gu.gpu, Activation::kGeluTanh, act.gpu);
      EXPECT_LT(err(act), 8e-3) << rows << "x" << inter;
    }
  }
}

// Attention with the families' options on both masks and the scatter path, against the CPU
// backend: head_dim x soft-cap x window, causal tree, causal varlen and bidirectional varlen.
// `reference` runs the GPU side on the reference kernel (RADIX_CUDA_REFERENCE_ATTENTION), the
// fallback for shapes without a fast kernel, which must honour the same options.
void check_family_attention(CudaBackendTest& t, Backend& gpu, int d, float softcap, int window,
                            uint32_t seed) {
  Backend& cpu = *t.cpu_;
  const AttentionShape shape{4, 2, d, 1.0f / std::sqrt(static_cast<float>(d)), softcap};
  const int width = (4 + 2 * 2) * d, out_w = 4 * d;
  std::mt19937 rng(seed);
  const RaggedBatch batch = random_batch(rng, 13);
  const FoldPlan plan = build_fold_plan(batch.ids, batch.positions, batch.cu_seqlens);
  const int n = plan.num_rows, tokens = static_cast<int>(batch.num_tokens());
  const std::string what = "d " + std::to_string(d) + " softcap " + std::to_string(softcap) +
                           " window " + std::to_string(window);
  auto both = [&](const std::vector<float>& host, int64_t rows, int64_t cols, DType dt) {
    CudaBackendTest::Pair p{cpu.alloc(DType::kF32, rows, cols), gpu.alloc(dt, rows, cols)};
    cpu.upload(p.cpu, host.data(), DType::kF32);
    gpu.upload(p.gpu, host.data(), DType::kF32);
    return p;
  };
  auto index = [&](const std::vector<int32_t>& host) {
    const auto rows = static_cast<int64_t>(host.size());
    CudaBackendTest::Pair p{cpu.alloc(DType::kI32, rows, 1), gpu.alloc(DType::kI32, rows, 1)};
    cpu.upload(p.cpu, host.data(), DType::kI32);
    gpu.upload(p.gpu, host.data(), DType::kI32);
    return p;
  };
  auto out = [&](int64_t rows, int64_t cols) {
    CudaBackendTest::Pair p{cpu.alloc(DType::kF32, rows, cols),
                            gpu.alloc(DType::kBF16, rows, cols)};
    gpu.fill_constant(p.gpu, NAN);
    return p;
  };
  auto error = [&](const CudaBackendTest::Pair& p) {
    return rel_err(t.get(gpu, p.gpu), t.get(cpu, p.cpu));
  };

  // Tree, with the window in positions (trie depths).
  CudaBackendTest::Pair qkv = both(bf16_values(n * width, rng), n, width, DType::kBF16);
  CudaBackendTest::Pair ends = index(plan.subtree_end), tree_pos = index(plan.positions);
  CudaBackendTest::Pair out_tree = out(n, out_w);
  AttentionMask tree;
  tree.kind = AttentionMask::Kind::kTree;
  tree.window = window;
  for (const bool gpu_side : {false, true}) {
    tree.subtree_end = gpu_side ? ends.gpu : ends.cpu;
    tree.positions = gpu_side ? tree_pos.gpu : tree_pos.cpu;
    (gpu_side ? gpu : cpu)
        .attention(gpu_side ? qkv.gpu : qkv.cpu, shape, tree,
                   gpu_side ? out_tree.gpu : out_tree.cpu);
  }
  EXPECT_LT(error(out_tree), 1e-2) << "tree, " << what;

  // Causal varlen over the flat batch (positions 0.. per sequence), then bidirectional (no
  // window there: a bidirectional mask with a window is an argument error).
  CudaBackendTest::Pair scatter = index(plan.scatter), cu = index(batch.cu_seqlens);
  CudaBackendTest::Pair flat_pos = index(batch.positions);
  CudaBackendTest::Pair flat = out(tokens, width);
  CudaBackendTest::Pair out_flat = out(tokens, out_w);
  cpu.gather_rows(qkv.cpu, scatter.cpu, flat.cpu);
  gpu.gather_rows(qkv.gpu, scatter.gpu, flat.gpu);
  AttentionMask varlen;
  varlen.kind = AttentionMask::Kind::kVarlenCausal;
  varlen.num_seqs = batch.num_sequences();
  for (int s = 0; s < varlen.num_seqs; ++s) {
    varlen.max_seqlen = std::max(varlen.max_seqlen, batch.cu_seqlens[s + 1] - batch.cu_seqlens[s]);
  }
  varlen.window = window;
  for (const auto kind :
       {AttentionMask::Kind::kVarlenCausal, AttentionMask::Kind::kVarlenBidirectional}) {
    const bool bidi = kind == AttentionMask::Kind::kVarlenBidirectional;
    varlen.kind = kind;
    varlen.window = bidi ? 0 : window;
    for (const bool gpu_side : {false, true}) {
      varlen.cu_seqlens = gpu_side ? cu.gpu : cu.cpu;
      varlen.positions = gpu_side ? flat_pos.gpu : flat_pos.cpu;
      (gpu_side ? gpu : cpu)
          .attention(gpu_side ? flat.gpu : flat.cpu, shape, varlen,
                     gpu_side ? out_flat.gpu : out_flat.cpu);
    }
    EXPECT_LT(error(out_flat), 1e-2) << (bidi ? "bidirectional varlen, " : "varlen, ") << what;
    if (!bidi) {
      // The dedup invariant with a window: token t of the flat batch equals its trie row.
      const auto tv = t.get(gpu, out_tree.gpu), fv = t.get(gpu, out_flat.gpu);
      std::vector<float> rows_of_tokens;
      for (int tok = 0; tok < tokens; ++tok) {
        const int r = plan.scatter[tok];
        rows_of_tokens.insert(rows_of_tokens.end(), tv.begin() + r * out_w,
                              tv.begin() + (r + 1) * out_w);
      }
      EXPECT_LT(rel_err(fv, rows_of_tokens), 1e-2) << "tree vs flat, " << what;
    }
  }
  if (window > 0) {
    varlen.kind = AttentionMask::Kind::kVarlenBidirectional;
    varlen.window = window;
    varlen.cu_seqlens = cu.gpu;
    varlen.positions = flat_pos.gpu;
    EXPECT_THROW(gpu.attention(flat.gpu, shape, varlen, out_flat.gpu), BackendError);
  }
}

class FamilyAttention : public CudaBackendTest,
                        public ::testing::WithParamInterface<std::tuple<int, float, int>> {};

TEST_P(FamilyAttention, FastKernelsMatchCpu) {
  const auto [d, softcap, window] = GetParam();
  check_family_attention(*this, *gpu_, d, softcap, window, 300 + d + window);
}

TEST_P(FamilyAttention, ReferenceFallbackMatchesCpu) {
  const auto [d, softcap, window] = GetParam();
  setenv("RADIX_CUDA_REFERENCE_ATTENTION", "1", 1);
  std::unique_ptr<Backend> reference = make_cuda_backend(BackendOptions{"cuda", 0});
  unsetenv("RADIX_CUDA_REFERENCE_ATTENTION");
  check_family_attention(*this, *reference, d, softcap, window, 400 + d + window);
}

INSTANTIATE_TEST_SUITE_P(Options, FamilyAttention,
                         ::testing::Combine(::testing::Values(64, 128, 256),
                                            ::testing::Values(0.0f, 5.0f),
                                            ::testing::Values(0, 1, 50)),
                         [](const auto& info) {
                           return "d" + std::to_string(std::get<0>(info.param)) + "_cap" +
                                  std::to_string(static_cast<int>(std::get<1>(info.param))) +
                                  "_win" + std::to_string(std::get<2>(info.param));
                         });

}  // namespace
}  // namespace radix::cuda::testing
