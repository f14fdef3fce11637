// prefix_attention's launch forms against a host reference: every split count (including more
// splits than key blocks, which leaves some empty), with the mma and the wmma kernel, on tiles
// whose rows all hang below the cached keys and on tiles with scattered or missing anchors. The
// backend tests (prefix_ops_test.cc) reach only the split count the backend picks.
#include <algorithm>
#include <cmath>

#include "backend/cuda/kernels/prefix_attention.cuh"
#include "gpu_test_util.h"

namespace radix::cuda::testing {
namespace {

struct Case {
  int rows, prefix_rows, hq, hkv, d;
  // anchors: 0 every row at the last cached key (whole blocks), 1 a few rows elsewhere or
  // unanchored
  int anchors;
};

// Host attention in double: row r sees cached key k iff k <= anchor[r] < prefix_end[k], and batch
// key k iff k <= r < visible_end[k] (a chain here: visible_end = rows).
std::vector<float> reference(const Case& c, const std::vector<bf16>& qkv,
                             const std::vector<bf16>& kv, const std::vector<int32_t>& prefix_end,
                             const std::vector<int32_t>& anchor) {
  const int qkv_cols = (c.hq + 2 * c.hkv) * c.d, kv_cols = 2 * c.hkv * c.d;
  const int group = c.hq / c.hkv;
  std::vector<float> out(static_cast<size_t>(c.rows) * c.hq * c.d);
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.d));
  for (int r = 0; r < c.rows; ++r) {
    for (int h = 0; h < c.hq; ++h) {
      const int g = h / group;
      const bf16* q = &qkv[static_cast<size_t>(r) * qkv_cols + h * c.d];
      std::vector<double> logits;
      std::vector<const bf16*> values;
      auto add = [&](const bf16* k, const bf16* v) {
        double s = 0;
        for (int i = 0; i < c.d; ++i) s += double(to_float(q[i])) * to_float(k[i]);
        logits.push_back(s * scale);
        values.push_back(v);
      };
      for (int k = 0; k < c.prefix_rows; ++k) {
        if (k <= anchor[r] && anchor[r] < prefix_end[k]) {
          const bf16* row = &kv[static_cast<size_t>(k) * kv_cols];
          add(row + g * c.d, row + (c.hkv + g) * c.d);
        }
      }
      for (int k = 0; k <= r; ++k) {
        const bf16* row = &qkv[static_cast<size_t>(k) * qkv_cols];
        add(row + (c.hq + g) * c.d, row + (c.hq + c.hkv + g) * c.d);
      }
      const double mx = *std::max_element(logits.begin(), logits.end());
      double sum = 0;
      std::vector<double> acc(c.d, 0.0);
      for (size_t j = 0; j < logits.size(); ++j) {
        const double p = std::exp(logits[j] - mx);
        sum += p;
        for (int i = 0; i < c.d; ++i) acc[i] += p * to_float(values[j][i]);
      }
      for (int i = 0; i < c.d; ++i) {
        out[(static_cast<size_t>(r) * c.hq + h) * c.d + i] = static_cast<float>(acc[i] / sum);
      }
    }
  }
  return out;
}

void check_forms(const Case& c, uint32_t seed) {
  std::mt19937 rng(seed);
  const int qkv_cols = (c.hq + 2 * c.hkv) * c.d, kv_cols = 2 * c.hkv * c.d;
  const auto qkv = random_bf16(static_cast<size_t>(c.rows) * qkv_cols, rng);
  const auto kv = random_bf16(static_cast<size_t>(c.prefix_rows) * kv_cols, rng);
  // The cached keys: a chain (every key visible to every anchor at or below it).
  std::vector<int32_t> prefix_end(c.prefix_rows, c.prefix_rows), visible_end(c.rows, c.rows);
  std::vector<int32_t> anchor(c.rows, c.prefix_rows - 1);
  if (c.anchors == 1) {
    for (int r = 0; r < c.rows; r += 5) {
      anchor[r] = r % 3 == 0 ? -1 : static_cast<int32_t>(rng() % c.prefix_rows);
    }
  }
  const auto want = reference(c, qkv, kv, prefix_end, anchor);
  DeviceBuffer<bf16> d_qkv(qkv), d_kv(kv);
  DeviceBuffer<int32_t> d_pend(prefix_end), d_vend(visible_end), d_anchor(anchor);
  DeviceBuffer<bf16> d_out(static_cast<size_t>(c.rows) * c.hq * c.d);
  constexpr int kMaxSplits = 16;
  const size_t ws_bytes = prefix_attention_workspace_bytes(c.rows, c.hq, c.d, kMaxSplits);
  DeviceBuffer<unsigned char> ws(ws_bytes);
  for (const bool wmma : {false, true}) {
    for (const int splits : {1, 2, 3, 5, 8, 12, 16}) {
      PrefixAttentionArgs a;
      a.q = d_qkv.get();
      a.k = a.q + c.hq * c.d;
      a.v = a.k + c.hkv * c.d;
      a.qkv_stride = qkv_cols;
      a.out = d_out.get();
      a.out_stride = static_cast<int64_t>(c.hq) * c.d;
      a.visible_end = d_vend.get();
      a.rows = c.rows;
      a.prefix_k = d_kv.get();
      a.prefix_v = a.prefix_k + c.hkv * c.d;
      a.prefix_stride = kv_cols;
      a.prefix_end = d_pend.get();
      a.anchor = d_anchor.get();
      a.prefix_rows = c.prefix_rows;
      a.num_q_heads = c.hq;
      a.num_kv_heads = c.hkv;
      a.head_dim = c.d;
      a.scale = 1.0f / std::sqrt(static_cast<float>(c.d));
      a.force_wmma = wmma;
      d_out.poison();
      ASSERT_EQ(prefix_attention(a, splits, ws.get(), ws_bytes, nullptr), cudaSuccess);
      const auto got = d_out.download();
      // The output is rounded to bf16 (2^-9 relative) and P to bf16 before P.V (2^-9 relative a
      // weight, so at most 2^-9 times the largest |v| of about 4 (normal values) absolute):
      // 2^-7 relative plus 2^-8 absolute bounds both with room for the fp32 sums' order.
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_FALSE(is_poison(got[i])) << "element " << i << " not written";
        ASSERT_NEAR(to_float(got[i]), want[i], std::fabs(want[i]) / 128 + 1.0 / 256)
            << "element " << i << " splits " << splits << (wmma ? " wmma" : " mma");
      }
    }
  }
}

TEST(PrefixAttentionKernel, EverySplitMatchesHost) {
  RADIX_REQUIRE_GPU();
  // Qwen3-8B's heads on a short stream shape (whole cached blocks), GQA 2 with rows that leave the
  // last tile part-filled, and anchors scattered or absent (masked cached blocks).
  check_forms(Case{24, 300, 32, 8, 128, 0}, 1);
  check_forms(Case{37, 200, 4, 2, 64, 0}, 2);
  check_forms(Case{50, 260, 8, 4, 128, 1}, 3);
  // 150 rows without GQA: three tiles, the last seeing the first batch block whole.
  check_forms(Case{150, 70, 2, 2, 64, 0}, 4);
}

}  // namespace
}  // namespace radix::cuda::testing
