// Every CPU backend op against the scalar references of tests/backend/reference_ops.h, at
// awkward sizes (1, 127, 129 rows; odd widths; several tiles; single-token sequences; tries).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "../reference_ops.h"
#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/random_fill.h"
#include "core/fold_plan.h"
#include "cpu_op_fixture.h"

namespace radix::testing {
namespace {

class CpuOps : public CpuOpFixture {
 protected:
  CpuOps() : CpuOpFixture(42) {}
};

TEST_F(CpuOps, SlicesAreBoundsChecked) {
  Buffer b = be->alloc(DType::kF32, 4, 6);
  EXPECT_EQ(b.tensor().row_slice(1, 3).rows, 3);
  EXPECT_EQ(b.tensor().col_slice(2, 4).cols, 4);
  EXPECT_EQ(b.tensor().col_slice(2, 4).row_stride, 6);
  EXPECT_THROW(b.tensor().row_slice(2, 3), BackendError);
  EXPECT_THROW(b.tensor().col_slice(-1, 2), BackendError);
  EXPECT_THROW(be->alloc(DType::kBF16, 2, 2), BackendError);
}

TEST_F(CpuOps, UploadConvertsBf16AndF16Exactly) {
  const uint16_t bf16[] = {0x3F80, 0xC040, 0x0000, 0x7F80};  // 1, -3, 0, inf
  const uint16_t f16[] = {0x3C00, 0xC200, 0x0001, 0x7C00, 0x8000, 0x3555};
  Buffer a = be->alloc(DType::kF32, 1, 4);
  be->upload(a, bf16, DType::kBF16);
  const auto va = download(a);
  EXPECT_EQ(va[0], 1.0f);
  EXPECT_EQ(va[1], -3.0f);
  EXPECT_EQ(va[2], 0.0f);
  EXPECT_TRUE(std::isinf(va[3]));
  Buffer b = be->alloc(DType::kF32, 2, 3);
  be->upload(b, f16, DType::kF16);
  const auto vb = download(b);
  EXPECT_EQ(vb[0], 1.0f);
  EXPECT_EQ(vb[1], -3.0f);
  EXPECT_EQ(vb[2], std::ldexp(1.0f, -24));  // the smallest subnormal
  EXPECT_TRUE(std::isinf(vb[3]));
  EXPECT_EQ(vb[4], 0.0f);
  EXPECT_TRUE(std::signbit(vb[4]));
  EXPECT_FLOAT_EQ(vb[5], 0.333251953125f);
}

TEST_F(CpuOps, UploadIntoAStridedSliceLeavesTheRestAlone) {
  Buffer b = be->alloc(DType::kF32, 3, 5);
  be->fill_constant(b, -1.0f);
  const std::vector<float> part = {1, 2, 3, 4, 5, 6};
  be->upload(b.tensor().col_slice(1, 2), part.data(), DType::kF32);
  EXPECT_EQ(download(b),
            (std::vector<float>{-1, 1, 2, -1, -1, -1, 3, 4, -1, -1, -1, 5, 6, -1, -1}));
  EXPECT_THROW(be->upload(b, part.data(), DType::kI32), BackendError);
}

TEST_F(CpuOps, RandomFillIsACounterStream) {
  Buffer full = be->alloc(DType::kF32, 300, 129);
  be->fill_random_normal(full, 7, 0.02f);
  const auto v = download(full);
  double sum = 0, sq = 0;
  for (float x : v) sum += x, sq += static_cast<double>(x) * x;
  EXPECT_NEAR(sum / v.size(), 0.0, 0.001);
  EXPECT_NEAR(std::sqrt(sq / v.size()), 0.02, 0.001);
  EXPECT_EQ(v[5 * 129 + 3], 0.02f * random_normal(7, 5 * 129 + 3));
  // A row filled alone with first_index continues the stream of the full tensor.
  Buffer row = be->alloc(DType::kF32, 1, 129);
  be->fill_random_normal(row, 7, 0.02f, 77 * 129);
  const auto r = download(row);
  EXPECT_TRUE(std::equal(r.begin(), r.end(), v.begin() + 77 * 129));
}

TEST_F(CpuOps, EmbeddingGathersRowsAndRejectsBadIds) {
  const auto table = random_vector(10 * 7, rng);
  Buffer t = upload(table, 10, 7);
  Buffer ids = upload_index({3, 0, 9, 3});
  Buffer out = be->alloc(DType::kF32, 4, 7);
  be->embedding(t, ids, out);
  const auto v = download(out);
  for (int r = 0; r < 4; ++r) {
    const int id = std::vector<int>{3, 0, 9, 3}[r];
    for (int c = 0; c < 7; ++c) EXPECT_EQ(v[r * 7 + c], table[id * 7 + c]);
  }
  Buffer bad = upload_index({10});
  EXPECT_THROW(be->embedding(t, bad, out.tensor().first_rows(1)), BackendError);
}

TEST_F(CpuOps, RmsNormAndAddRmsNormMatchTheReference) {
  for (const int64_t n : {1, 127, 129}) {
    for (const int64_t h : {1, 7, 128, 129}) {
      const auto x = random_vector(n * h, rng, 3.0f), d = random_vector(n * h, rng);
      const auto w = random_vector(h, rng);
      Buffer bx = upload(x, n, h), bd = upload(d, n, h), bw = upload(w, 1, h);
      Buffer out = be->alloc(DType::kF32, n, h);
      be->rms_norm(bx, bw, 1e-6f, out);
      expect_close(download(out), ref_rms_norm(x, w, n, h, 1e-6f), 1e-6, "rms_norm");
      be->add_rms_norm(bx, bd, bw, 1e-6f, out);
      std::vector<float> sum(x.size());
      for (size_t i = 0; i < x.size(); ++i) sum[i] = x[i] + d[i];
      expect_close(download(bx), sum, 0, "add_rms_norm residual");
      expect_close(download(out), ref_rms_norm(sum, w, n, h, 1e-6f), 1e-6, "add_rms_norm");
    }
  }
}

TEST_F(CpuOps, LinearMatchesTheReference) {
  for (const int64_t n : {1, 3, 127, 129, 300}) {
    for (const int64_t m : {2, 129, 600}) {
      for (const int64_t k : {1, 17, 256}) {
        const auto x = random_vector(n * k, rng), w = random_vector(m * k, rng);
        Buffer bx = upload(x, n, k), bw = upload(w, m, k);
        Buffer out = be->alloc(DType::kF32, n, m);
        be->linear(bx, bw, out);
        const auto want = ref_linear(x, w, n, m, k);
        expect_close(download(out), want, 1e-5, "linear");
        be->linear(bx, bw, out, /*accumulate=*/true);
        std::vector<float> twice(want.size());
        for (size_t i = 0; i < want.size(); ++i) twice[i] = 2 * want[i];
        expect_close(download(out), twice, 1e-5, "linear accumulate");
      }
    }
  }
}

TEST_F(CpuOps, LinearWritesIntoAColumnSlice) {
  const int64_t n = 5, m = 2, k = 9;
  const auto x = random_vector(n * k, rng), w = random_vector(m * k, rng);
  Buffer bx = upload(x, n, k), bw = upload(w, m, k);
  Buffer out = be->alloc(DType::kF32, n, 4);
  be->fill_constant(out, 9.0f);
  be->linear(bx, bw, out.tensor().col_slice(1, 2));
  const auto v = download(out);
  const auto want = ref_linear(x, w, n, m, k);
  for (int64_t r = 0; r < n; ++r) {
    EXPECT_EQ(v[r * 4], 9.0f);
    EXPECT_NEAR(v[r * 4 + 1], want[r * 2], 1e-5);
    EXPECT_NEAR(v[r * 4 + 2], want[r * 2 + 1], 1e-5);
    EXPECT_EQ(v[r * 4 + 3], 9.0f);
  }
  EXPECT_THROW(be->linear(bx, bx, out), BackendError);
}

TEST_F(CpuOps, QkNormRopeMatchesTheReference) {
  for (const int d : {32, 128}) {
    const int hq = 4, hkv = 2;
    const int64_t n = 129, width = (hq + 2 * hkv) * d;
    auto qkv = random_vector(n * width, rng);
    const auto qw = random_vector(d, rng), kw = random_vector(d, rng);
    std::vector<int32_t> pos(n);
    std::uniform_int_distribution<int32_t> p(0, 4000);
    for (auto& x : pos) x = p(rng);
    Buffer b = upload(qkv, n, width), bq = upload(qw, 1, d), bk = upload(kw, 1, d);
    Buffer bp = upload_index(pos);
    be->qk_norm_rope(b, {hq, hkv, d, 0.0f}, bq, bk, bp, 1e-6f, 1e6f);
    ref_qk_norm_rope(qkv, n, hq, hkv, d, qw, kw, pos, 1e-6f, 1e6);
    // Positions up to 4000 with fp32 angles (as Hugging Face computes them): ~1e-4 absolute.
    expect_close(download(b), qkv, 2e-4, "qk_norm_rope d=" + std::to_string(d));
  }
}

TEST_F(CpuOps, SwigluMatchesTheReference) {
  check_gated_activation(Activation::kSiLU, ref_swiglu, 1e-6, "swiglu");
}

TEST_F(CpuOps, GatherRowsZeroesPaddingAndRejectsBadIndices) {
  const auto src = random_vector(6 * 5, rng);
  Buffer b = upload(src, 6, 5);
  Buffer idx = upload_index({5, -1, 0, 5});
  Buffer out = be->alloc(DType::kF32, 4, 5);
  be->gather_rows(b, idx, out);
  const auto v = download(out);
  for (int c = 0; c < 5; ++c) {
    EXPECT_EQ(v[c], src[25 + c]);
    EXPECT_EQ(v[5 + c], 0.0f);
    EXPECT_EQ(v[10 + c], src[c]);
    EXPECT_EQ(v[15 + c], src[25 + c]);
  }
  Buffer bad = upload_index({6});
  EXPECT_THROW(be->gather_rows(b, bad, out.tensor().first_rows(1)), BackendError);
}

class CpuAttention : public CpuOps, public ::testing::WithParamInterface<AttentionCase> {};

TEST_P(CpuAttention, VarlenCausalMatchesTheReference) {
  const auto [hq, hkv, d] = GetParam();
  // Sequences of 1, 127, 1, 129, 64 and 3 rows: crossing tile edges in both directions.
  const std::vector<int32_t> lens = {1, 127, 1, 129, 64, 3};
  std::vector<int32_t> cu = {0}, visible_end;
  for (int32_t len : lens) {
    cu.push_back(cu.back() + len);
    for (int32_t i = 0; i < len; ++i) visible_end.push_back(cu.back());
  }
  const int64_t n = cu.back(), width = static_cast<int64_t>(hq + 2 * hkv) * d;
  const auto qkv = random_vector(n * width, rng, 2.0f);
  Buffer b = upload(qkv, n, width), bcu = upload_index(cu);
  Buffer out = be->alloc(DType::kF32, n, static_cast<int64_t>(hq) * d);
  AttentionMask mask;
  mask.kind = AttentionMask::Kind::kVarlenCausal;
  mask.cu_seqlens = bcu;
  mask.num_seqs = static_cast<int32_t>(lens.size());
  mask.max_seqlen = 129;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  be->attention(b, {hq, hkv, d, scale}, mask, out);
  expect_close(download(out), ref_attention(qkv, n, hq, hkv, d, scale, visible_end), 1e-5,
               "varlen attention");
}

TEST_P(CpuAttention, TreeMaskMatchesTheReferenceOnRandomTries) {
  const auto [hq, hkv, d] = GetParam();
  for (int trial = 0; trial < 3; ++trial) {
    const FoldPlan plan = random_trie_plan(rng);
    const int64_t n = plan.num_rows, width = static_cast<int64_t>(hq + 2 * hkv) * d;
    const auto qkv = random_vector(n * width, rng, 2.0f);
    Buffer b = upload(qkv, n, width), bse = upload_index(plan.subtree_end);
    Buffer out = be->alloc(DType::kF32, n, static_cast<int64_t>(hq) * d);
    AttentionMask mask;
    mask.kind = AttentionMask::Kind::kTree;
    mask.subtree_end = bse;
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));
    be->attention(b, {hq, hkv, d, scale}, mask, out);
    expect_close(download(out), ref_attention(qkv, n, hq, hkv, d, scale, plan.subtree_end), 1e-5,
                 "tree attention");
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CpuAttention,
                         ::testing::Values(AttentionCase{1, 1, 8}, AttentionCase{4, 2, 128},
                                           AttentionCase{8, 2, 32}, AttentionCase{3, 3, 16}),
                         attention_case_name);

TEST_F(CpuOps, AttentionRejectsABadMask) {
  Buffer qkv = be->alloc(DType::kF32, 3, 3 * 8);
  be->fill_constant(qkv, 0.5f);
  Buffer out = be->alloc(DType::kF32, 3, 8);
  AttentionMask mask;
  mask.kind = AttentionMask::Kind::kTree;
  Buffer bad = upload_index({1, 1, 3});  // subtree_end[1] must exceed 1
  mask.subtree_end = bad;
  EXPECT_THROW(be->attention(qkv, {1, 1, 8, 0.3f}, mask, out), BackendError);
  EXPECT_THROW(be->attention(qkv, {2, 1, 8, 0.3f}, mask, out), BackendError);  // width mismatch
}

}  // namespace
}  // namespace radix::testing
