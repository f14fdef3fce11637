// The op options the model families need (bias, (1 + w) norms, GeGLU, RoPE from a table, logit
// soft-cap, sliding windows in positions, bidirectional masks) against the scalar references of
// tests/backend/reference_ops.h, at awkward sizes.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "../reference_ops.h"
#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "core/fold_plan.h"
#include "cpu_op_fixture.h"

namespace radix::testing {
namespace {

class CpuFamilyOps : public CpuOpFixture {
 protected:
  CpuFamilyOps() : CpuOpFixture(7) {}
};

TEST_F(CpuFamilyOps, EmbeddingScalesRows) {
  const auto table = random_vector(9 * 5, rng);
  Buffer t = upload(table, 9, 5), ids = upload_index({8, 0, 8});
  Buffer out = be->alloc(DType::kF32, 3, 5);
  const float scale = std::sqrt(5.0f);
  be->embedding(t, ids, out, scale);
  const auto v = download(out);
  const int id[] = {8, 0, 8};
  for (int r = 0; r < 3; ++r) {
    // One fp32 multiply per element, as transformers' fp32 `embeds * normalizer`: exact.
    for (int c = 0; c < 5; ++c) EXPECT_EQ(v[r * 5 + c], table[id[r] * 5 + c] * scale);
  }
}

TEST_F(CpuFamilyOps, PlusOneNormsMatchTheReference) {
  for (const int64_t n : {1, 127, 129}) {
    for (const int64_t h : {1, 7, 129, 256}) {
      const auto x = random_vector(n * h, rng, 3.0f), d = random_vector(n * h, rng);
      const auto w = random_vector(h, rng, 0.5f);
      Buffer bx = upload(x, n, h), bd = upload(d, n, h), bw = upload(w, 1, h);
      Buffer out = be->alloc(DType::kF32, n, h);
      be->rms_norm(bx, bw, 1e-6f, out, NormWeight::kPlusOne);
      expect_close(download(out), ref_rms_norm_plus_one(x, w, n, h, 1e-6f), 1e-6, "rms_norm+1");
      be->add_rms_norm(bx, bd, bw, 1e-6f, out, NormWeight::kPlusOne);
      std::vector<float> sum(x.size());
      for (size_t i = 0; i < x.size(); ++i) sum[i] = x[i] + d[i];
      expect_close(download(bx), sum, 0, "add_rms_norm+1 residual");
      expect_close(download(out), ref_rms_norm_plus_one(sum, w, n, h, 1e-6f), 1e-6,
                   "add_rms_norm+1");
    }
  }
}

TEST_F(CpuFamilyOps, LinearAddsTheBias) {
  for (const int64_t n : {1, 127, 300}) {
    for (const int64_t m : {1, 129, 600}) {
      for (const int64_t k : {1, 17, 256}) {
        const auto x = random_vector(n * k, rng), w = random_vector(m * k, rng);
        const auto bias = random_vector(m, rng, 3.0f);
        Buffer bx = upload(x, n, k), bw = upload(w, m, k), bb = upload(bias, 1, m);
        Buffer out = be->alloc(DType::kF32, n, m);
        be->fill_constant(out, 1e6f);  // must be overwritten, not accumulated
        be->linear(bx, bw, out, false, bb);
        auto want = ref_linear(x, w, n, m, k);
        for (int64_t r = 0; r < n; ++r) {
          for (int64_t c = 0; c < m; ++c) want[r * m + c] += bias[c];
        }
        expect_close(download(out), want, 1e-5, "linear+bias");
        be->linear(bx, bw, out, /*accumulate=*/true, bb);
        for (float& v : want) v *= 2;
        expect_close(download(out), want, 1e-5, "linear+bias accumulate");
      }
    }
  }
}

TEST_F(CpuFamilyOps, LinearWithBiasIntoAColumnSlice) {
  const int64_t n = 5, m = 2, k = 9;
  const auto x = random_vector(n * k, rng), w = random_vector(m * k, rng);
  const std::vector<float> bias = {10.0f, -20.0f};
  Buffer bx = upload(x, n, k), bw = upload(w, m, k), bb = upload(bias, 1, m);
  Buffer out = be->alloc(DType::kF32, n, 4);
  be->fill_constant(out, 9.0f);
  be->linear(bx, bw, out.tensor().col_slice(1, 2), false, bb);
  const auto v = download(out);
  const auto want = ref_linear(x, w, n, m, k);
  for (int64_t r = 0; r < n; ++r) {
    EXPECT_EQ(v[r * 4], 9.0f);
    EXPECT_NEAR(v[r * 4 + 1], want[r * 2] + 10.0f, 1e-5);
    EXPECT_NEAR(v[r * 4 + 2], want[r * 2 + 1] - 20.0f, 1e-5);
    EXPECT_EQ(v[r * 4 + 3], 9.0f);
  }
  Buffer wrong = upload({1, 2, 3}, 1, 3);
  EXPECT_THROW(be->linear(bx, bw, out.tensor().col_slice(1, 2), false, wrong), BackendError);
}

TEST_F(CpuFamilyOps, GegluTanhMatchesTheReference) {
  // 1 + tanh(y) cancels for negative gates in fp32 (as in PyTorch's own fp32 kernel, whose formula
  // this is): a few ulp of the largest output.
  check_gated_activation(Activation::kGeluTanh, ref_geglu_tanh, 1e-5, "geglu_tanh");
}

TEST_F(CpuFamilyOps, RopeFromATableMatchesTheReference) {
  for (const int d : {8, 64, 128, 256}) {
    for (const int64_t n : {1, 129}) {
      const int hq = 3, hkv = 1;
      const int64_t width = (hq + 2 * hkv) * d;
      auto qkv = random_vector(n * width, rng);
      std::vector<float> inv_freq(d / 2);
      for (int i = 0; i < d / 2; ++i) {  // a scaled table: no closed form the kernel could assume
        inv_freq[i] = std::pow(5e5f, -2.0f * i / d) / (i % 3 == 0 ? 8.0f : 1.0f);
      }
      std::vector<int32_t> pos(n);
      std::uniform_int_distribution<int32_t> p(0, 4000);
      for (auto& x : pos) x = p(rng);
      Buffer b = upload(qkv, n, width), bf = upload(inv_freq, 1, d / 2), bp = upload_index(pos);
      be->rope(b, {hq, hkv, d, 0.0f}, bp, bf);
      const auto v_before = qkv;
      ref_rope(qkv, n, hq, hkv, d, pos, inv_freq);
      // fp32 angles up to 4000 rad (as Hugging Face computes them): ~1e-4 absolute.
      expect_close(download(b), qkv, 2e-4, "rope d=" + std::to_string(d));
      // v is untouched, bit for bit.
      const auto got = download(b);
      for (int64_t r = 0; r < n; ++r) {
        for (int64_t c = (hq + hkv) * d; c < width; ++c) {
          ASSERT_EQ(got[r * width + c], v_before[r * width + c]);
        }
      }
    }
  }
  Buffer qkv = be->alloc(DType::kF32, 2, 3 * 8), pos = upload_index({0, 1});
  Buffer short_table = be->alloc(DType::kF32, 1, 3);
  EXPECT_THROW(be->rope(qkv, {1, 1, 8, 0.0f}, pos, short_table), BackendError);
}

TEST_F(CpuFamilyOps, RopeAfterNormsEqualsTheFusedQwen3Path) {
  const int d = 64, hq = 4, hkv = 2;
  const int64_t n = 33, width = (hq + 2 * hkv) * d;
  const auto qkv = random_vector(n * width, rng);
  const auto qw = random_vector(d, rng), kw = random_vector(d, rng);
  std::vector<int32_t> pos(n);
  for (int64_t i = 0; i < n; ++i) pos[i] = static_cast<int32_t>(i * 37);
  Buffer fused = upload(qkv, n, width), bq = upload(qw, 1, d), bk = upload(kw, 1, d);
  Buffer bp = upload_index(pos);
  be->qk_norm_rope(fused, {hq, hkv, d, 0.0f}, bq, bk, bp, 1e-6f, 1e6f);
  // The same with the separate ops: per-head norms as [n * heads, d] views, then rope.
  Buffer split = upload(qkv, n, width);
  for (int h = 0; h < hq + hkv; ++h) {
    Tensor head = split.tensor().col_slice(static_cast<int64_t>(h) * d, d);
    be->rms_norm(head, h < hq ? bq : bk, 1e-6f, head);
  }
  std::vector<float> inv_freq(d / 2);
  for (int i = 0; i < d / 2; ++i)
    inv_freq[i] = 1.0f / std::pow(1e6f, static_cast<float>(2 * i) / d);
  Buffer bf = upload(inv_freq, 1, d / 2);
  be->rope(split, {hq, hkv, d, 0.0f}, bp, bf);
  expect_close(download(split), download(fused), 1e-6, "rope after norms vs qk_norm_rope");
}

class CpuFamilyAttention : public CpuFamilyOps,
                           public ::testing::WithParamInterface<AttentionCase> {
 protected:
  std::vector<float> run(const std::vector<float>& qkv, int64_t n, const AttentionShape& shape,
                         AttentionMask mask, const std::vector<int32_t>& positions) {
    const auto [hq, hkv, d] = GetParam();
    Buffer b = upload(qkv, n, static_cast<int64_t>(hq + 2 * hkv) * d);
    Buffer bp = upload_index(positions);
    mask.positions = bp;
    Buffer out = be->alloc(DType::kF32, n, static_cast<int64_t>(hq) * d);
    be->attention(b, shape, mask, out);
    return download(out);
  }
};

// Sequences of 1, 127, 1, 129, 70 and 3 rows: crossing tile edges in both directions.
const std::vector<int32_t> kLens = {1, 127, 1, 129, 70, 3};

TEST_P(CpuFamilyAttention, VarlenSoftcapAndWindowMatchTheReference) {
  const auto [hq, hkv, d] = GetParam();
  std::vector<int32_t> cu = {0}, begin, end, positions;
  for (int32_t len : kLens) {
    cu.push_back(cu.back() + len);
    for (int32_t i = 0; i < len; ++i) {
      begin.push_back(cu[cu.size() - 2]);
      end.push_back(cu.back());
      positions.push_back(i);
    }
  }
  const int64_t n = cu.back(), width = static_cast<int64_t>(hq + 2 * hkv) * d;
  const auto qkv = random_vector(n * width, rng, 2.0f);
  Buffer bcu = upload_index(cu);
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  for (const auto kind :
       {AttentionMask::Kind::kVarlenCausal, AttentionMask::Kind::kVarlenBidirectional}) {
    const bool bidir = kind == AttentionMask::Kind::kVarlenBidirectional;
    for (const int32_t window : {0, 1, 5, 70}) {
      if (bidir && window > 0) continue;
      for (const float softcap : {0.0f, 1.5f}) {
        AttentionMask mask;
        mask.kind = kind;
        mask.cu_seqlens = bcu;
        mask.num_seqs = static_cast<int32_t>(kLens.size());
        mask.max_seqlen = 129;
        mask.window = window;
        RefMask ref;
        if (bidir) ref.visible_begin = begin;
        ref.visible_end = end;
        ref.positions = positions;
        ref.window = window;
        ref.softcap = softcap;
        const auto got = run(qkv, n, {hq, hkv, d, scale, softcap}, mask, positions);
        expect_close(got, ref_attention_masked(qkv, n, hq, hkv, d, scale, ref), 1e-5,
                     std::string(bidir ? "bidirectional" : "causal") + " window " +
                         std::to_string(window) + " softcap " + std::to_string(softcap));
      }
    }
  }
}

TEST_P(CpuFamilyAttention, TreeWindowIsInPositionsNotRows) {
  const auto [hq, hkv, d] = GetParam();
  for (int trial = 0; trial < 3; ++trial) {
    const FoldPlan plan = random_trie_plan(rng);
    const int64_t n = plan.num_rows, width = static_cast<int64_t>(hq + 2 * hkv) * d;
    const auto qkv = random_vector(n * width, rng, 2.0f);
    Buffer bse = upload_index(plan.subtree_end);
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));
    for (const int32_t window : {1, 4, 33}) {
      AttentionMask mask;
      mask.kind = AttentionMask::Kind::kTree;
      mask.subtree_end = bse;
      mask.window = window;
      RefMask ref;
      ref.visible_end = plan.subtree_end;
      ref.positions = plan.positions;
      ref.window = window;
      ref.softcap = 30.0;
      const auto got = run(qkv, n, {hq, hkv, d, scale, 30.0f}, mask, plan.positions);
      expect_close(got, ref_attention_masked(qkv, n, hq, hkv, d, scale, ref), 1e-5,
                   "tree window " + std::to_string(window));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CpuFamilyAttention,
                         ::testing::Values(AttentionCase{1, 1, 8}, AttentionCase{4, 1, 256},
                                           AttentionCase{8, 2, 32}, AttentionCase{3, 3, 16}),
                         attention_case_name);

TEST_F(CpuFamilyOps, AttentionRejectsBadOptions) {
  Buffer qkv = be->alloc(DType::kF32, 3, 3 * 8);
  be->fill_constant(qkv, 0.5f);
  Buffer out = be->alloc(DType::kF32, 3, 8);
  Buffer cu = upload_index({0, 3});
  AttentionMask mask;
  mask.kind = AttentionMask::Kind::kVarlenBidirectional;
  mask.cu_seqlens = cu;
  mask.num_seqs = 1;
  mask.max_seqlen = 3;
  be->attention(qkv, {1, 1, 8, 0.3f}, mask, out);  // valid
  mask.window = 2;                                 // no positions, and bidirectional
  EXPECT_THROW(be->attention(qkv, {1, 1, 8, 0.3f}, mask, out), BackendError);
  Buffer pos = upload_index({0, 1, 2});
  mask.positions = pos;
  EXPECT_THROW(be->attention(qkv, {1, 1, 8, 0.3f}, mask, out), BackendError);  // bidirectional
  mask.kind = AttentionMask::Kind::kVarlenCausal;
  be->attention(qkv, {1, 1, 8, 0.3f}, mask, out);  // valid: causal with a window
  mask.window = -1;
  EXPECT_THROW(be->attention(qkv, {1, 1, 8, 0.3f}, mask, out), BackendError);
  mask.window = 0;
  EXPECT_THROW(be->attention(qkv, {1, 1, 8, 0.3f, -1.0f}, mask, out), BackendError);
}

}  // namespace
}  // namespace radix::testing
