// The reference attention kernel against a double-precision CPU loop, on the tree mask of a
// random fold plan and on the varlen causal mask of the same batch: the two must also agree
// row for row, which is the attention half of "off, scatter and tree give the same results".
#include "backend/cuda/kernels/reference_attention.cuh"

#include <cmath>
#include <string>

#include "core/fold_plan.h"
#include "gpu_test_util.h"

namespace radix::cuda::testing {
namespace {

// Sequences drawn from a small alphabet and a few shared stems, so the trie is both deep and wide.
FoldPlan random_plan(std::mt19937& rng, int num_seqs, std::vector<int32_t>& ids,
                     std::vector<int32_t>& cu) {
  std::vector<std::vector<int32_t>> stems(3);
  std::uniform_int_distribution<int> tok(1, 4), len(1, 40);
  for (auto& s : stems) {
    const int l = len(rng);
    for (int i = 0; i < l; ++i) s.push_back(tok(rng));
  }
  ids.clear(), cu.assign(1, 0);
  std::vector<int32_t> pos;
  for (int s = 0; s < num_seqs; ++s) {
    std::vector<int32_t> seq = stems[rng() % 3];
    seq.resize(rng() % (seq.size() + 1));  // sometimes a strict prefix, sometimes empty
    const int tail = rng() % 30;
    for (int i = 0; i < tail; ++i) seq.push_back(tok(rng));
    if (seq.empty()) seq.push_back(tok(rng));
    for (size_t i = 0; i < seq.size(); ++i) {
      ids.push_back(seq[i]);
      pos.push_back(static_cast<int32_t>(i));
    }
    cu.push_back(static_cast<int32_t>(ids.size()));
  }
  return build_fold_plan(ids, pos, cu);
}

// out[r, h*D + i] for rows visible by the interval rule.
std::vector<double> cpu_attention(const std::vector<bf16>& q, const std::vector<bf16>& k,
                                  const std::vector<bf16>& v, const std::vector<int32_t>& end,
                                  int rows, int hq, int hkv, int d, float scale) {
  std::vector<double> out(static_cast<size_t>(rows) * hq * d, 0.0);
  const int group = hq / hkv;
  for (int r = 0; r < rows; ++r) {
    for (int h = 0; h < hq; ++h) {
      const int kh = h / group;
      std::vector<double> logits;
      std::vector<int> keys;
      double mx = -INFINITY;
      for (int key = 0; key <= r; ++key) {
        if (r >= end[key]) continue;
        double dot = 0;
        for (int i = 0; i < d; ++i) {
          dot += double(to_float(q[(r * hq + h) * d + i])) * to_float(k[(key * hkv + kh) * d + i]);
        }
        logits.push_back(dot * scale);
        keys.push_back(key);
        mx = std::max(mx, dot * scale);
      }
      double den = 0;
      for (auto& l : logits) den += (l = std::exp(l - mx));
      for (size_t t = 0; t < keys.size(); ++t) {
        for (int i = 0; i < d; ++i) {
          out[(r * hq + h) * d + i] += logits[t] / den * to_float(v[(keys[t] * hkv + kh) * d + i]);
        }
      }
    }
  }
  return out;
}

TEST(ReferenceAttention, TreeAndCausalMatchCpuAndEachOther) {
  RADIX_REQUIRE_GPU();
  const int hq = 4, hkv = 2;
  // The fast kernels' head dims and others that only this kernel serves (the tiny test models'
  // 16 and 32, and 96).
  for (int d : {16, 32, 96, 128, 256}) {
    SCOPED_TRACE("head_dim " + std::to_string(d));
    const float scale = 1.0f / std::sqrt(float(d));
    for (int trial = 0; trial < 4; ++trial) {
      std::mt19937 rng(trial);
      std::vector<int32_t> ids, cu;
      const FoldPlan plan = random_plan(rng, 1 + trial * 5, ids, cu);
      const int rows = plan.num_rows, flat = static_cast<int>(ids.size());
      auto q = random_bf16(rows * hq * d, rng), k = random_bf16(rows * hkv * d, rng),
           v = random_bf16(rows * hkv * d, rng);
      const auto ref = cpu_attention(q, k, v, plan.subtree_end, rows, hq, hkv, d, scale);

      DeviceBuffer<bf16> dq(q), dk(k), dv(v), dout(rows * hq * d);
      DeviceBuffer<int32_t> dend(plan.subtree_end);
      dout.poison();
      RADIX_CUDA_CHECK(reference_attention(dq.get(), dk.get(), dv.get(), dout.get(), hq * d,
                                           hkv * d, hq * d, dend.get(), rows, hq, hkv, d, scale,
                                           nullptr));
      const auto tree = dout.download();
      for (size_t i = 0; i < tree.size(); ++i) {
        ASSERT_NEAR(to_float(tree[i]), ref[i], bf16_tolerance(ref[i]))
            << "trial " << trial << " " << i;
      }

      // The flat (off-mode) layout: row t holds compact row scatter[t]'s q/k/v.
      std::vector<bf16> fq(flat * hq * d), fk(flat * hkv * d), fv(flat * hkv * d);
      for (int t = 0; t < flat; ++t) {
        const int c = plan.scatter[t];
        std::copy_n(&q[c * hq * d], hq * d, &fq[t * hq * d]);
        std::copy_n(&k[c * hkv * d], hkv * d, &fk[t * hkv * d]);
        std::copy_n(&v[c * hkv * d], hkv * d, &fv[t * hkv * d]);
      }
      DeviceBuffer<bf16> dfq(fq), dfk(fk), dfv(fv), dfout(flat * hq * d);
      DeviceBuffer<int32_t> dcu(cu), dfend(flat);
      dfout.poison();
      RADIX_CUDA_CHECK(causal_subtree_end(dcu.get(), static_cast<int>(cu.size()) - 1, dfend.get(),
                                          flat, nullptr));
      RADIX_CUDA_CHECK(reference_attention(dfq.get(), dfk.get(), dfv.get(), dfout.get(), hq * d,
                                           hkv * d, hq * d, dfend.get(), flat, hq, hkv, d, scale,
                                           nullptr));
      const auto causal = dfout.download();
      for (int t = 0; t < flat; ++t) {
        const int c = plan.scatter[t];
        for (int i = 0; i < hq * d; ++i) {
          // Same keys in the same order: the two layouts must agree exactly.
          ASSERT_EQ(to_float(causal[t * hq * d + i]), to_float(tree[c * hq * d + i]))
              << "trial " << trial << " flat " << t;
        }
      }
    }
  }
}

}  // namespace
}  // namespace radix::cuda::testing
