// The prefix cache's two ops on CUDA (kernels/prefix_attention.cu, kernels/scatter_rows.cu)
// against the CPU backend's, through the Backend interface: the same bf16-exact inputs in both,
// attention compared at 1e-2 of the output's scale (the CUDA attention tests' tolerance: bf16
// output and bf16 probabilities in P.V, docs/cuda.md), scatter exactly (a copy).
#include <algorithm>
#include <numeric>
#include <string>

#include "backend_pair.h"

namespace radix::cuda::testing {
namespace {

constexpr double kAttentionRelTol = 1e-2;

// A random trie of n rows in DFS pre-order: each row's parent is on the path to the previous row
// (or none). chain: every row is the previous one's child (a cached prompt). Returns subtree_end;
// depth[r] is r's depth (its position when the trie starts at position base).
std::vector<int32_t> random_trie(std::mt19937& rng, int n, bool chain, std::vector<int32_t>& depth,
                                 std::vector<int32_t>* root_of = nullptr) {
  std::vector<int32_t> parent(n, -1), end(n);
  depth.assign(n, 0);
  if (root_of) root_of->assign(n, 0);
  std::vector<int32_t> path;
  for (int r = 0; r < n; ++r) {
    if (!chain && !path.empty()) path.resize(rng() % (path.size() + 1));
    parent[r] = path.empty() ? -1 : path.back();
    depth[r] = static_cast<int32_t>(path.size());
    if (root_of) (*root_of)[r] = path.empty() ? r : (*root_of)[path.front()];
    path.push_back(r);
  }
  std::iota(end.begin(), end.end(), 1);
  for (int r = n - 1; r >= 0; --r) {
    if (parent[r] >= 0) end[parent[r]] = std::max(end[parent[r]], end[r]);
  }
  return end;
}

struct Shape {
  int hq, hkv, d;
  float softcap = 0;
  int window = 0;
};

class PrefixOpsTest : public CudaBackendTest {
 protected:
  // One prefix_attention call on both backends. prefix_rows keys in a trie (a chain when
  // chain_prefix), n query rows as a tree mask (or flat sequences when flat); each query trie
  // root (sequence) gets a random anchor, -1 included, that its descendants share.
  void check(const Shape& s, int prefix_rows, int n, bool chain_prefix, bool flat, uint32_t seed,
             const std::string& what) {
    std::mt19937 rng(seed);
    const int64_t qkv_cols = static_cast<int64_t>(s.hq + 2 * s.hkv) * s.d;
    const int64_t kv_cols = 2 * static_cast<int64_t>(s.hkv) * s.d;
    std::vector<int32_t> pdepth;
    std::vector<int32_t> pend = random_trie(rng, prefix_rows, chain_prefix, pdepth);
    std::vector<int32_t> qdepth, qroot;
    std::vector<int32_t> qend;
    std::vector<int32_t> cu{0};
    if (flat) {  // sequences of 1..n rows back to back
      qdepth.resize(n);
      qroot.resize(n);
      while (cu.back() < n) {
        const int len = std::min<int>(n - cu.back(), 1 + static_cast<int>(rng() % 40));
        for (int i = 0; i < len; ++i) {
          qdepth[cu.back() + i] = i;
          qroot[cu.back() + i] = cu.back();
        }
        cu.push_back(cu.back() + len);
      }
    } else {
      qend = random_trie(rng, n, false, qdepth, &qroot);
    }
    std::vector<int32_t> anchor(n), positions(n);
    std::vector<int32_t> root_anchor(n, -1);
    for (int r = 0; r < n; ++r) {
      if (qroot[r] == r) {
        // Mostly the deepest prefix row (the stream case), sometimes another or none.
        const uint32_t pick = rng() % 4;
        root_anchor[r] = prefix_rows == 0 || pick == 3 ? -1
                         : pick == 0                   ? static_cast<int32_t>(rng() % prefix_rows)
                                                       : prefix_rows - 1;
      }
      anchor[r] = root_anchor[qroot[r]];
      positions[r] = (anchor[r] >= 0 ? pdepth[anchor[r]] + 1 : 0) + qdepth[r];
    }
    const std::vector<float> qkv = bf16_values(static_cast<size_t>(n) * qkv_cols, rng);
    // An empty prefix is a 0-row view of a 1-row buffer (nothing to upload).
    const int stored = std::max(prefix_rows, 1);
    // Every other call reads the prefix keys as a strided view (a layer's columns of the cache's
    // storage, as the cache passes a prompt cached in one go).
    const int64_t pad = seed % 2 == 0 ? 16 : 0;
    const std::vector<float> kv = bf16_values(static_cast<size_t>(stored) * (kv_cols + pad), rng);
    pend.resize(stored, 1);
    pdepth.resize(stored, 0);
    Pair q = make(qkv, n, qkv_cols, DType::kBF16);
    Pair pk = make(kv, stored, kv_cols + pad, DType::kBF16);
    Pair pe = make_index(pend), pp = make_index(pdepth), an = make_index(anchor);
    Pair pos = make_index(positions);
    Pair te = make_index(flat ? std::vector<int32_t>{0} : qend), cs = make_index(cu);
    Pair out = make_out(n, static_cast<int64_t>(s.hq) * s.d, DType::kBF16);
    const AttentionShape shape{s.hq, s.hkv, s.d, 1.0f / std::sqrt(static_cast<float>(s.d)),
                               s.softcap};
    auto run = [&](Backend& be, bool gpu) {
      auto pick = [gpu](const Pair& p) -> const Tensor& {
        return gpu ? p.gpu.tensor() : p.cpu.tensor();
      };
      AttentionMask mask;
      if (flat) {
        mask.kind = AttentionMask::Kind::kVarlenCausal;
        mask.cu_seqlens = pick(cs);
        mask.num_seqs = static_cast<int32_t>(cu.size() - 1);
        for (size_t i = 1; i < cu.size(); ++i) {
          mask.max_seqlen = std::max(mask.max_seqlen, cu[i] - cu[i - 1]);
        }
      } else {
        mask.kind = AttentionMask::Kind::kTree;
        mask.subtree_end = pick(te);
      }
      mask.window = s.window;
      mask.positions = pick(pos);
      be.prefix_attention(
          pick(q), shape, mask,
          PrefixKeys{pick(pk).col_slice(pad / 2, kv_cols).first_rows(prefix_rows),
                     pick(pe).first_rows(prefix_rows), pick(pp).first_rows(prefix_rows), pick(an)},
          pick(out));
    };
    run(*cpu_, false);
    run(*gpu_, true);
    EXPECT_LT(err(out), kAttentionRelTol) << what;
  }
};

// The stream workload's shape and the awkward ones around it: cached ranges of 0, 1, 17 and 2,100
// keys (a chain, every row anchored at its end or elsewhere), 1 to 70 new rows, GQA groups of 1, 2,
// 4 and 7, the head dims of the families (64, 128, 256) and two that need padding (48, 80).
TEST_F(PrefixOpsTest, PrefixAttentionMatchesCpu) {
  const Shape shapes[] = {{16, 8, 128}, {4, 1, 64}, {8, 2, 256},
                          {7, 1, 64},   {4, 4, 48}, {6, 2, 80}};
  uint32_t seed = 1;
  for (const Shape& s : shapes) {
    for (const int p : {0, 1, 17, 2100}) {
      for (const int n : {1, 5, 64, 70}) {
        if (s.d == 256 && p == 2100 && n != 64) continue;  // keep the CPU side fast
        for (const bool flat : {false, true}) {
          check(s, p, n, /*chain=*/true, flat, seed++,
                "hq " + std::to_string(s.hq) + " hkv " + std::to_string(s.hkv) + " d " +
                    std::to_string(s.d) + " p " + std::to_string(p) + " n " + std::to_string(n) +
                    (flat ? " flat" : " tree"));
        }
      }
    }
  }
}

// Branching prefix tries (several cached prompts, anchors anywhere in them), a bigger batch of new
// rows (split-free launches), sliding windows shorter than the paths, soft-capping.
TEST_F(PrefixOpsTest, PrefixAttentionOnTriesWithWindowAndSoftcap) {
  uint32_t seed = 100;
  for (const Shape& s : {Shape{8, 4, 128, 0, 0}, Shape{8, 4, 128, 0, 9}, Shape{4, 2, 256, 50.f, 0},
                         Shape{4, 2, 256, 50.f, 33}, Shape{4, 1, 64, 0, 1}}) {
    for (const int p : {3, 150, 700}) {
      for (const int n : {2, 70, 600}) {
        for (const bool flat : {false, true}) {
          check(s, p, n, /*chain=*/false, flat, seed++,
                "d " + std::to_string(s.d) + " softcap " + std::to_string(s.softcap) + " window " +
                    std::to_string(s.window) + " p " + std::to_string(p) + " n " +
                    std::to_string(n) + (flat ? " flat" : " tree"));
        }
      }
    }
  }
}

// Qwen3-8B's heads on the stream workload's shape (64 new rows against a 2,048-key cached prompt),
// where the split count is largest, and a few rows more and fewer around the 64-pair tiles.
TEST_F(PrefixOpsTest, PrefixAttentionOnTheStreamShape) {
  uint32_t seed = 200;
  for (const int n : {63, 64, 65}) {
    check(Shape{32, 8, 128}, 2048, n, /*chain=*/true, /*flat=*/false, seed++,
          "hq 32 hkv 8 d 128 p 2048 n " + std::to_string(n));
  }
}

TEST_F(PrefixOpsTest, PrefixAttentionRejectsBadShapes) {
  Buffer qkv = gpu_->alloc(DType::kBF16, 4, 3 * 64);
  Buffer kv = gpu_->alloc(DType::kBF16, 2, 64);  // wrong: needs 2 * Hkv * d = 128 columns
  Buffer idx = gpu_->alloc(DType::kI32, 4, 1);
  Buffer out = gpu_->alloc(DType::kBF16, 4, 64);
  const AttentionShape shape{1, 1, 64, 0.125f};
  AttentionMask mask;
  mask.kind = AttentionMask::Kind::kTree;
  mask.subtree_end = idx;
  EXPECT_THROW(gpu_->prefix_attention(qkv, shape, mask, PrefixKeys{kv, idx, idx, idx}, out),
               BackendError);
  Buffer kv_ok = gpu_->alloc(DType::kBF16, 2, 128);
  mask.kind = AttentionMask::Kind::kVarlenBidirectional;
  mask.cu_seqlens = idx;
  mask.num_seqs = 1;
  EXPECT_THROW(gpu_->prefix_attention(qkv, shape, mask, PrefixKeys{kv_ok, idx, idx, idx}, out),
               BackendError);
}

TEST_F(PrefixOpsTest, ScatterRowsMatchesCpu) {
  std::mt19937 rng(7);
  for (const int64_t cols : {int64_t{1}, int64_t{6}, int64_t{64}, int64_t{1000}}) {
    for (const DType dt : {DType::kBF16, DType::kF32}) {
      const int64_t n = 37, m = 50;
      std::vector<int32_t> slots(m);
      std::iota(slots.begin(), slots.end(), 0);
      std::shuffle(slots.begin(), slots.end(), rng);
      std::vector<int32_t> index(n);
      for (int64_t r = 0; r < n; ++r) index[r] = r % 5 == 3 ? -1 : slots[r];
      Pair src = make(bf16_values(static_cast<size_t>(n * cols), rng), n, cols, dt);
      const std::vector<float> before = bf16_values(static_cast<size_t>(m * cols), rng);
      Pair out = make(before, m, cols, dt);
      Pair ix = make_index(index);
      cpu_->scatter_rows(src.cpu, ix.cpu, out.cpu);
      gpu_->scatter_rows(src.gpu, ix.gpu, out.gpu);
      EXPECT_EQ(err(out), 0.0) << dtype_name(dt) << " cols " << cols;
    }
  }
  // A strided destination (one layer's columns of the cache's storage).
  Pair store = make(std::vector<float>(10 * 8, 0.0f), 10, 8, DType::kBF16);
  Pair src = make(std::vector<float>{1, 2, 3, 4, 5, 6}, 2, 3, DType::kBF16);
  Pair ix = make_index({4, -1});
  gpu_->scatter_rows(src.gpu, ix.gpu, store.gpu.tensor().col_slice(2, 3));
  const std::vector<float> got = get(*gpu_, store.gpu);
  EXPECT_EQ(got[4 * 8 + 2], 1.0f);
  EXPECT_EQ(got[4 * 8 + 4], 3.0f);
  EXPECT_EQ(got[4 * 8 + 5], 0.0f);
  EXPECT_EQ(std::accumulate(got.begin(), got.end(), 0.0f), 6.0f);
}

}  // namespace
}  // namespace radix::cuda::testing
