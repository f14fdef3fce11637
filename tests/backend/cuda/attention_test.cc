// The attention kernels (src/backend/cuda/attention.cu) against a CPU fp32 reference on the same
// bf16 inputs, for both masks, every tile shape and GQA ratios 1, 2 and 4, plus the invariances
// the engine relies on: tree attention on the fold plan equals varlen causal attention on the flat
// batch, and on the identity plan the two kernels agree row for row. The options of the families
// beyond Qwen3 (head_dim 64 and 256, logit soft-cap, sliding window in positions) are covered by
// AttentionFeatures over every combination, both masks and every tile shape of each head_dim.
//
// Tolerance: per (row, head), ||out - ref||_2 <= 1e-2 * ||ref||_2. The kernels round P to bf16
// before P V (relative 2^-9 per weight, averaging out over keys) and round the output to bf16
// (2^-9 relative); both together stay near 3e-3, and 1e-2 leaves room for that while a wrongly
// masked key of any real weight moves a row by far more (the scores here have a standard deviation
// near 3, so softmax weights are peaked, not uniform).
#include "backend/cuda/attention.cuh"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <ostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "backend/cuda/attention_tiles.cuh"
#include "core/fold_plan.h"
#include "core/ragged_batch.h"
#include "gpu_test_util.h"

namespace radix::cuda {
// Readable parameters in test listings (found by argument-dependent lookup).
void PrintTo(AttentionTiles tiles, std::ostream* os) { *os << attention_tiles_name(tiles); }
}  // namespace radix::cuda

namespace radix::cuda::testing {
namespace {

constexpr double kTolerance = 1e-2;
constexpr int kOutPad = 8;  // extra elements per output row that must stay untouched

// Q/K/V of `rows` rows in the fused projection layout [rows, (Hq + 2*Hkv) * d] bf16.
struct Qkv {
  int rows = 0, hq = 0, hkv = 0, d = kAttentionHeadDim;
  std::vector<bf16> data;
  int64_t stride() const { return static_cast<int64_t>(hq + 2 * hkv) * d; }
  const bf16* q(int r, int h) const { return data.data() + r * stride() + h * d; }
  const bf16* k(int r, int h) const { return data.data() + r * stride() + (hq + h) * d; }
  const bf16* v(int r, int h) const { return data.data() + r * stride() + (hq + hkv + h) * d; }
};

// Q and K uniform in [-3, 3] (score standard deviation about 3 with scale 1/sqrt(d)), V in
// [-1, 1].
Qkv random_qkv(int rows, int hq, int hkv, uint32_t seed, int d = kAttentionHeadDim) {
  Qkv x{rows, hq, hkv, d, {}};
  const int kD = d;
  x.data.resize(static_cast<size_t>(rows) * x.stride());
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> qk(-3.f, 3.f), val(-1.f, 1.f);
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < x.stride(); ++c) {
      const bool is_v = c >= (hq + hkv) * kD;
      x.data[r * x.stride() + c] = to_bf16(is_v ? val(rng) : qk(rng));
    }
  }
  return x;
}

// Rows of flat token t copied from compact row scatter[t] (what the `scatter` mode does).
Qkv scatter_rows(const Qkv& compact, const std::vector<int32_t>& scatter) {
  Qkv flat{static_cast<int>(scatter.size()), compact.hq, compact.hkv, compact.d, {}};
  flat.data.resize(scatter.size() * compact.stride());
  for (size_t t = 0; t < scatter.size(); ++t) {
    std::copy_n(compact.data.begin() + scatter[t] * compact.stride(), compact.stride(),
                flat.data.begin() + t * compact.stride());
  }
  return flat;
}

float default_scale(int d = kAttentionHeadDim) { return 1.0f / std::sqrt(static_cast<float>(d)); }

using Visible = std::function<bool(int q, int k)>;

// Output of query row q, head h: softmax over visible keys in double precision; with softcap > 0
// each logit l becomes softcap * tanh(l / softcap) first.
std::vector<double> reference_row(const Qkv& x, int q, int h, const Visible& visible, float scale,
                                  float softcap = 0.f) {
  const int kD = x.d;
  const int kvh = h / (x.hq / x.hkv);
  std::vector<int> keys;
  std::vector<double> scores;
  for (int k = 0; k <= q; ++k) {
    if (!visible(q, k)) continue;
    double dot = 0;
    for (int d = 0; d < kD; ++d) dot += double(to_float(x.q(q, h)[d])) * to_float(x.k(k, kvh)[d]);
    keys.push_back(k);
    const double logit = dot * scale;
    scores.push_back(softcap > 0 ? softcap * std::tanh(logit / softcap) : logit);
  }
  std::vector<double> out(kD, 0.0);
  if (keys.empty()) return out;
  const double mx = *std::max_element(scores.begin(), scores.end());
  double sum = 0;
  for (double& s : scores) sum += (s = std::exp(s - mx));
  for (size_t i = 0; i < keys.size(); ++i) {
    const bf16* v = x.v(keys[i], kvh);
    for (int d = 0; d < kD; ++d) out[d] += scores[i] / sum * to_float(v[d]);
  }
  return out;
}

// Rows checked against the reference: all of them for small inputs, otherwise both ends, the
// rows on each side of every 64-row tile boundary and a random sample.
std::vector<int> rows_to_check(int rows, uint32_t seed) {
  std::vector<int> out;
  if (rows <= 512) {
    for (int r = 0; r < rows; ++r) out.push_back(r);
    return out;
  }
  for (int r = 0; r < 48; ++r) out.push_back(r);
  for (int r = rows - 48; r < rows; ++r) out.push_back(r);
  for (int r = 64; r < rows; r += 64) out.insert(out.end(), {r - 1, r});
  std::mt19937 rng(seed);
  for (int i = 0; i < 64; ++i) out.push_back(std::uniform_int_distribution<int>(0, rows - 1)(rng));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  if (out.size() > 400) {  // keep long inputs cheap: every other tile boundary is enough
    std::vector<int> thinned;
    for (size_t i = 0; i < out.size(); i += 2) thinned.push_back(out[i]);
    out.swap(thinned);
  }
  return out;
}

double row_error(const bf16* got, const std::vector<double>& ref) {
  double err = 0, norm = 0;
  for (size_t d = 0; d < ref.size(); ++d) {
    const double diff = double(to_float(got[d])) - ref[d];
    err += diff * diff;
    norm += ref[d] * ref[d];
  }
  return std::sqrt(err) / std::max(std::sqrt(norm), 1e-3);
}

// out as returned by the runners: [rows, Hq * 128], padding columns removed.
void expect_matches_reference(const Qkv& x, const std::vector<bf16>& out, const Visible& visible,
                              uint32_t seed, float softcap = 0.f) {
  const int kD = x.d;
  const int64_t out_cols = int64_t{x.hq} * kD;
  double worst = 0;
  int failures = 0;
  for (int r : rows_to_check(x.rows, seed)) {
    for (int h = 0; h < x.hq; ++h) {
      const double err = row_error(out.data() + r * out_cols + h * kD,
                                   reference_row(x, r, h, visible, default_scale(kD), softcap));
      worst = std::max(worst, err);
      if (!(err <= kTolerance) && ++failures <= 5) {
        ADD_FAILURE() << "row " << r << " head " << h << ": relative L2 error " << err;
      }
    }
  }
  EXPECT_EQ(failures, 0) << "worst relative L2 error " << worst;
}

// Every output element finite (poisoned NaN would survive otherwise), padding columns and the
// spare row past the end untouched.
std::vector<bf16> take_output(const DeviceBuffer<bf16>& d_out, int rows, int hq, int kD) {
  const std::vector<bf16> raw = d_out.download();
  const int64_t cols = int64_t{hq} * kD, stride = cols + kOutPad;
  std::vector<bf16> out(static_cast<size_t>(rows) * cols);
  int64_t unwritten = 0, clobbered = 0;
  for (int64_t r = 0; r <= rows; ++r) {
    for (int64_t c = 0; c < stride; ++c) {
      const bf16 v = raw[r * stride + c];
      if (r == rows || c >= cols) {
        clobbered += !is_poison(v);
      } else {
        unwritten += !std::isfinite(to_float(v));
        out[r * cols + c] = v;
      }
    }
  }
  EXPECT_EQ(unwritten, 0) << "output elements left unwritten (NaN)";
  EXPECT_EQ(clobbered, 0) << "elements written outside the output rows";
  return out;
}

std::vector<bf16> run_varlen(AttentionTiles tiles, const Qkv& x,
                             const std::vector<int32_t>& cu_seqlens,
                             AttentionOptions options = {}) {
  const int kD = x.d;
  options.head_dim = kD;
  int max_len = 0;
  for (size_t s = 0; s + 1 < cu_seqlens.size(); ++s) {
    max_len = std::max(max_len, cu_seqlens[s + 1] - cu_seqlens[s]);
  }
  const int64_t out_stride = int64_t{x.hq} * kD + kOutPad;
  DeviceBuffer<bf16> d_qkv(x.data), d_out((x.rows + 1) * out_stride);
  DeviceBuffer<int32_t> d_cu(cu_seqlens);
  d_out.poison();
  const bf16* base = d_qkv.get();
  EXPECT_EQ(attention_varlen_causal_tiles(
                tiles, base, base + x.hq * kD, base + (x.hq + x.hkv) * kD, d_out.get(), x.stride(),
                x.stride(), out_stride, d_cu.get(), static_cast<int>(cu_seqlens.size()) - 1,
                max_len, x.rows, x.hq, x.hkv, default_scale(kD), nullptr, options),
            cudaSuccess);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  return take_output(d_out, x.rows, x.hq, kD);
}

// positions: needed with a window (options.window > 0).
std::vector<bf16> run_tree(AttentionTiles tiles, const Qkv& x,
                           const std::vector<int32_t>& subtree_end, AttentionOptions options = {},
                           const std::vector<int32_t>& positions = {}) {
  const int kD = x.d;
  options.head_dim = kD;
  const int64_t out_stride = int64_t{x.hq} * kD + kOutPad;
  DeviceBuffer<bf16> d_qkv(x.data), d_out((x.rows + 1) * out_stride);
  DeviceBuffer<int32_t> d_end(subtree_end), d_pos(positions);
  if (!positions.empty()) options.positions_dev = d_pos.get();
  const size_t ws_bytes = attention_tree_workspace_bytes(x.rows);
  DeviceBuffer<unsigned char> d_ws(ws_bytes);
  d_out.poison();
  const bf16* base = d_qkv.get();
  EXPECT_EQ(
      attention_tree_tiles(tiles, base, base + x.hq * kD, base + (x.hq + x.hkv) * kD, d_out.get(),
                           x.stride(), x.stride(), out_stride, d_end.get(), x.rows, x.hq, x.hkv,
                           default_scale(kD), d_ws.get(), ws_bytes, nullptr, options),
      cudaSuccess);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  return take_output(d_out, x.rows, x.hq, kD);
}

// Compares two outputs of the same rows (through a row map) with the same tolerance.
void expect_same_rows(const std::vector<bf16>& a, const std::vector<bf16>& b,
                      const std::vector<int32_t>& b_row_of_a_row, int hq,
                      int kD = kAttentionHeadDim) {
  const int64_t cols = int64_t{hq} * kD;
  double worst = 0;
  for (size_t r = 0; r < b_row_of_a_row.size(); ++r) {
    for (int h = 0; h < hq; ++h) {
      std::vector<double> ref(kD);
      for (int d = 0; d < kD; ++d) ref[d] = to_float(b[b_row_of_a_row[r] * cols + h * kD + d]);
      worst = std::max(worst, row_error(a.data() + r * cols + h * kD, ref));
    }
  }
  EXPECT_LE(worst, kTolerance) << "worst relative L2 difference between the two kernels";
}

struct Heads {
  int hq, hkv;
};
constexpr Heads kHeadConfigs[] = {{4, 4}, {4, 2}, {8, 2}};  // GQA ratios 1, 2, 4
void PrintTo(const Heads& h, std::ostream* os) { *os << "hq" << h.hq << "_hkv" << h.hkv; }

std::string tiles_heads_name(AttentionTiles tiles, Heads heads) {
  return std::string(attention_tiles_name(tiles)) + "_hq" + std::to_string(heads.hq) + "_hkv" +
         std::to_string(heads.hkv);
}

// ---------------------------------------------------------------------------------------------
// Varlen causal.

struct VarlenCase {
  std::string name;
  std::vector<int> lengths;
};

void PrintTo(const VarlenCase& c, std::ostream* os) { *os << c.name; }

std::vector<VarlenCase> varlen_cases() {
  std::vector<VarlenCase> cases = {
      {"one_row", {1}},
      {"len127", {127}},
      {"len129", {129}},
      {"len1000", {1000}},
      {"single_tokens", std::vector<int>(37, 1)},
      {"mixed", {1, 64, 65, 127, 128, 129, 300, 2}},
      {"len4096", {4096}},
  };
  std::mt19937 rng(5);
  VarlenCase many{"many_short", {}};
  for (int i = 0; i < 90; ++i) many.lengths.push_back(std::uniform_int_distribution<>(1, 40)(rng));
  cases.push_back(many);
  return cases;
}

using VarlenParam = std::tuple<VarlenCase, Heads, AttentionTiles>;
class VarlenAttention : public ::testing::TestWithParam<VarlenParam> {};

#define RADIX_REQUIRE_TILES(tiles)                                                           \
  do {                                                                                       \
    if (!attention_tiles_supported(tiles)) {                                                 \
      GTEST_SKIP() << attention_tiles_name(tiles) << " needs attention.cu built for sm_90a"; \
    }                                                                                        \
  } while (0)

TEST_P(VarlenAttention, MatchesReference) {
  RADIX_REQUIRE_GPU();
  const auto& [c, heads, tiles] = GetParam();
  RADIX_REQUIRE_TILES(tiles);
  std::vector<int32_t> cu{0};
  std::vector<int32_t> seq_end_of_row;
  for (int len : c.lengths) {
    cu.push_back(cu.back() + len);
    seq_end_of_row.insert(seq_end_of_row.end(), len, cu.back());
  }
  const Qkv x = random_qkv(cu.back(), heads.hq, heads.hkv, 17 + cu.back());
  const std::vector<bf16> out = run_varlen(tiles, x, cu);
  // Same sequence and causal: k <= q and k's sequence has not ended before q.
  expect_matches_reference(
      x, out, [&](int q, int k) { return k <= q && q < seq_end_of_row[k]; }, cu.back());
}

INSTANTIATE_TEST_SUITE_P(Cases, VarlenAttention,
                         ::testing::Combine(::testing::ValuesIn(varlen_cases()),
                                            ::testing::ValuesIn(kHeadConfigs),
                                            ::testing::ValuesIn(kAttentionAllTiles)),
                         [](const auto& info) {
                           return std::get<0>(info.param).name + "_" +
                                  tiles_heads_name(std::get<2>(info.param),
                                                   std::get<1>(info.param));
                         });

// ---------------------------------------------------------------------------------------------
// Tree mask on real fold plans.

struct TreeCase {
  std::string name;
  std::function<RaggedBatch()> make;
  int pad_to_multiple = 1;
};

void PrintTo(const TreeCase& c, std::ostream* os) { *os << c.name; }

RaggedBatch deep_chain() {
  // Two sequences sharing 650 tokens: a chain 650 deep that forks into two 50-token branches.
  std::vector<int32_t> a(700), b;
  for (int i = 0; i < 700; ++i) a[i] = 1000 + i;
  b.assign(a.begin(), a.begin() + 650);
  for (int i = 0; i < 50; ++i) b.push_back(5000 + i);
  RaggedBatch batch;
  batch.add_sequence(a);
  batch.add_sequence(b);
  return batch;
}

RaggedBatch wide_trie() {
  // 300 siblings under a 3-token root chain, each with 1-4 tokens of its own.
  std::mt19937 rng(3);
  RaggedBatch batch;
  for (int s = 0; s < 300; ++s) {
    std::vector<int32_t> seq = {7, 8, 9};
    const int tail = std::uniform_int_distribution<>(1, 4)(rng);
    for (int i = 0; i < tail; ++i) seq.push_back(100 + s * 8 + i);
    batch.add_sequence(seq);
  }
  return batch;
}

RaggedBatch random_trie(uint32_t seed) {
  // Sequences drawn from a few stems with short tails over a 3-letter alphabet, so that prefixes
  // collide at many depths.
  std::mt19937 rng(seed);
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  std::vector<std::vector<int32_t>> stems(uni(1, 4));
  for (auto& stem : stems) {
    stem.resize(uni(0, 200));
    for (auto& t : stem) t = uni(0, 1000);
  }
  RaggedBatch batch;
  const int n = uni(20, 60);
  for (int s = 0; s < n; ++s) {
    const auto& stem = stems[uni(0, static_cast<int>(stems.size()) - 1)];
    std::vector<int32_t> seq(stem.begin(), stem.begin() + uni(0, static_cast<int>(stem.size())));
    const int tail = uni(seq.empty() ? 1 : 0, 60);
    for (int i = 0; i < tail; ++i) seq.push_back(uni(0, 2));
    batch.add_sequence(seq);
  }
  return batch;
}

RaggedBatch shared_prefix(int batch_size, int prefix, int suffix) {
  RaggedBatch batch;
  for (int s = 0; s < batch_size; ++s) {
    std::vector<int32_t> seq;
    for (int i = 0; i < prefix; ++i) seq.push_back(10 + i);
    for (int i = 0; i < suffix; ++i) seq.push_back(100000 + s * suffix + i);
    batch.add_sequence(seq);
  }
  return batch;
}

std::vector<TreeCase> tree_cases() {
  return {
      {"single_row", [] { return shared_prefix(1, 1, 0); }},
      {"deep_chain", deep_chain},
      {"deep_chain_pad64", deep_chain, 64},
      {"wide", wide_trie},
      {"random1", [] { return random_trie(1); }},
      {"random2_pad7", [] { return random_trie(2); }, 7},
      {"random3", [] { return random_trie(3); }},
      {"syn_like", [] { return shared_prefix(6, 300, 100); }},
  };
}

using TreeParam = std::tuple<TreeCase, Heads, AttentionTiles>;
class TreeAttention : public ::testing::TestWithParam<TreeParam> {};

TEST_P(TreeAttention, MatchesReferenceAndVarlenOnTheFlatBatch) {
  RADIX_REQUIRE_GPU();
  const auto& [c, heads, tiles] = GetParam();
  RADIX_REQUIRE_TILES(tiles);
  const RaggedBatch batch = c.make();
  FoldOptions options;
  options.pad_to_multiple = c.pad_to_multiple;
  const FoldPlan plan = build_fold_plan(batch.ids, batch.positions, batch.cu_seqlens, options);
  ASSERT_TRUE(plan.folded || plan.num_rows == batch.num_tokens());

  const Qkv compact = random_qkv(plan.num_rows, heads.hq, heads.hkv, 99 + plan.num_rows);
  const std::vector<bf16> tree_out = run_tree(tiles, compact, plan.subtree_end);
  expect_matches_reference(
      compact, tree_out, [&](int q, int k) { return k <= q && q < plan.subtree_end[k]; },
      plan.num_rows);

  // The dedup invariant: flat token t attending causally within its sequence equals its compact
  // row attending to its ancestors.
  const Qkv flat = scatter_rows(compact, plan.scatter);
  const std::vector<bf16> flat_out = run_varlen(tiles, flat, batch.cu_seqlens);
  expect_same_rows(flat_out, tree_out, plan.scatter, heads.hq);
}

INSTANTIATE_TEST_SUITE_P(Cases, TreeAttention,
                         ::testing::Combine(::testing::ValuesIn(tree_cases()),
                                            ::testing::ValuesIn(kHeadConfigs),
                                            ::testing::ValuesIn(kAttentionAllTiles)),
                         [](const auto& info) {
                           return std::get<0>(info.param).name + "_" +
                                  tiles_heads_name(std::get<2>(info.param),
                                                   std::get<1>(info.param));
                         });

// On the identity plan (threshold 0) rows are the flat tokens and subtree_end is each token's
// sequence end, so the tree kernel must reproduce the varlen kernel.
TEST(TreeAttentionIdentity, EqualsVarlenCausal) {
  RADIX_REQUIRE_GPU();
  const RaggedBatch batch = random_trie(11);
  FoldOptions options;
  options.threshold = 0.0;
  const FoldPlan plan = build_fold_plan(batch.ids, batch.positions, batch.cu_seqlens, options);
  ASSERT_FALSE(plan.folded);
  for (AttentionTiles tiles : kAttentionAllTiles) {
    if (!attention_tiles_supported(tiles)) continue;
    SCOPED_TRACE(attention_tiles_name(tiles));
    const Qkv x = random_qkv(plan.num_rows, 8, 2, 4);
    const std::vector<bf16> tree_out = run_tree(tiles, x, plan.subtree_end);
    const std::vector<bf16> varlen_out = run_varlen(tiles, x, batch.cu_seqlens);
    std::vector<int32_t> same(plan.num_rows);
    for (int r = 0; r < plan.num_rows; ++r) same[r] = r;
    expect_same_rows(tree_out, varlen_out, same, 8);
  }
}

// ---------------------------------------------------------------------------------------------
// The families' options: head_dim x soft-cap x sliding window x mask kind, on every tile shape
// that has kernels for the head_dim. Windows: 1 (a row sees only itself: every other key of
// every tile is out), 100 (well inside the 700-deep chain: whole key tiles out of the window are
// skipped, tiles straddling its edge are masked, and no tile below the diagonal may be taken as
// fully visible) and 0 (none). The tree cases also run through varlen on the flat batch: the two
// masks measure the window differently (row offsets, positions array) and must agree.

struct FeatureParam {
  int head_dim;
  float softcap;
  int window;
  bool tree;
  AttentionTiles tiles;
};

void PrintTo(const FeatureParam& p, std::ostream* os) {
  *os << "d" << p.head_dim << "_cap" << p.softcap << "_win" << p.window
      << (p.tree ? "_tree_" : "_varlen_") << attention_tiles_name(p.tiles);
}

std::vector<FeatureParam> feature_params() {
  std::vector<FeatureParam> out;
  for (const int d : {64, 128, 256}) {
    for (const float cap : {0.f, 4.f}) {
      for (const int window : {0, 1, 100}) {
        for (const bool tree : {false, true}) {
          for (const AttentionTiles tiles : kAttentionAllTiles) {
            // 128: every shape; 64: both warp-specialised shapes; 256: only the 64-key one.
            if (d == 64 && tiles != AttentionTiles::kWgmmaWsQ128N128 &&
                tiles != AttentionTiles::kWgmmaWsQ128N64) {
              continue;
            }
            if (d == 256 && tiles != AttentionTiles::kWgmmaWsQ128N64) continue;
            out.push_back({d, cap, window, tree, tiles});
          }
        }
      }
    }
  }
  return out;
}

class AttentionFeatures : public ::testing::TestWithParam<FeatureParam> {};

TEST_P(AttentionFeatures, MatchReference) {
  RADIX_REQUIRE_GPU();
  const FeatureParam f = GetParam();
  if (!attention_tiles_supported(f.tiles, f.head_dim)) {
    GTEST_SKIP() << attention_tiles_name(f.tiles) << " has no kernel for head_dim " << f.head_dim
                 << " in this build (see attention_tiles_supported)";
  }
  AttentionOptions options;
  options.softcap = f.softcap;
  options.window = f.window;
  auto in_window = [&](int64_t dpos) { return f.window == 0 || dpos < f.window; };
  const Heads heads = f.head_dim == 256 ? Heads{8, 1} : Heads{4, 2};  // Gemma-2B: one KV head
  if (!f.tree) {
    const std::vector<int> lengths = {1, 64, 65, 127, 128, 129, 300, 700};
    std::vector<int32_t> cu{0};
    std::vector<int32_t> seq_end_of_row;
    for (int len : lengths) {
      cu.push_back(cu.back() + len);
      seq_end_of_row.insert(seq_end_of_row.end(), len, cu.back());
    }
    const Qkv x = random_qkv(cu.back(), heads.hq, heads.hkv, 23, f.head_dim);
    const std::vector<bf16> out = run_varlen(f.tiles, x, cu, options);
    expect_matches_reference(
        x, out, [&](int q, int k) { return k <= q && q < seq_end_of_row[k] && in_window(q - k); },
        5, f.softcap);
    return;
  }
  for (const auto& make : {deep_chain, +[] { return random_trie(4); }}) {
    const RaggedBatch batch = make();
    const FoldPlan plan = build_fold_plan(batch.ids, batch.positions, batch.cu_seqlens);
    const Qkv compact = random_qkv(plan.num_rows, heads.hq, heads.hkv, 31, f.head_dim);
    const std::vector<bf16> tree_out =
        run_tree(f.tiles, compact, plan.subtree_end, options, plan.positions);
    expect_matches_reference(
        compact, tree_out,
        [&](int q, int k) {
          return k <= q && q < plan.subtree_end[k] &&
                 in_window(int64_t{plan.positions[q]} - plan.positions[k]);
        },
        7, f.softcap);
    const Qkv flat = scatter_rows(compact, plan.scatter);
    const std::vector<bf16> flat_out = run_varlen(f.tiles, flat, batch.cu_seqlens, options);
    expect_same_rows(flat_out, tree_out, plan.scatter, heads.hq, f.head_dim);
  }
}

INSTANTIATE_TEST_SUITE_P(Options, AttentionFeatures, ::testing::ValuesIn(feature_params()),
                         [](const auto& info) {
                           std::ostringstream os;
                           PrintTo(info.param, &os);
                           std::string name = os.str();
                           for (char& c : name) {
                             if (c == '.') c = 'p';
                           }
                           return name;
                         });

// A window in positions, not rows: tree positions that jump (as padding rows or a caller's own
// numbering may) must be honoured exactly, including for skipping (a tile whose rows are close
// but whose positions are far apart holds no visible key).
TEST(AttentionFeaturesTree, WindowFollowsPositionsNotRows) {
  RADIX_REQUIRE_GPU();
  const RaggedBatch batch = deep_chain();
  const FoldPlan plan = build_fold_plan(batch.ids, batch.positions, batch.cu_seqlens);
  std::vector<int32_t> positions(plan.positions);
  for (int32_t& p : positions) p *= 3;  // every step 3 positions: a window of 90 spans 30 rows
  AttentionOptions options;
  options.window = 90;
  for (const AttentionTiles tiles : {AttentionTiles::kWgmmaWsQ128N128,
                                     AttentionTiles::kWgmmaWsQ128N64, AttentionTiles::kFa2Q64}) {
    if (!attention_tiles_supported(tiles)) continue;
    SCOPED_TRACE(attention_tiles_name(tiles));
    const Qkv x = random_qkv(plan.num_rows, 4, 2, 41);
    const std::vector<bf16> out = run_tree(tiles, x, plan.subtree_end, options, positions);
    expect_matches_reference(
        x, out,
        [&](int q, int k) {
          return k <= q && q < plan.subtree_end[k] && positions[q] - positions[k] < 90;
        },
        9);
  }
}

// The public entry points at the real head counts of the new families, with their options, on
// both tile-size hints.
TEST(AttentionDefaults, FamilyHeadCounts) {
  RADIX_REQUIRE_GPU();
  struct Family {
    const char* name;
    Heads heads;
    int d;
    float softcap;
    int window;
  };
  const Family families[] = {{"gemma-2b", {8, 1}, 256, 0, 0},
                             {"gemma2-9b", {16, 8}, 256, 50, 96},
                             {"mistral-7b", {32, 8}, 128, 0, 96},
                             {"d64", {12, 4}, 64, 0, 0}};
  for (const Family& fam : families) {
    SCOPED_TRACE(fam.name);
    if (!attention_has_fast_kernels(fam.d)) {
      ADD_FAILURE() << "no fast kernel for head_dim " << fam.d << " in this build";
      continue;
    }
    const RaggedBatch batch = shared_prefix(3, 150, 60);
    const FoldPlan plan = build_fold_plan(batch.ids, batch.positions, batch.cu_seqlens);
    const Qkv x = random_qkv(plan.num_rows, fam.heads.hq, fam.heads.hkv, 8, fam.d);
    const int64_t out_stride = int64_t{fam.heads.hq} * fam.d + kOutPad;
    DeviceBuffer<bf16> d_qkv(x.data), d_out((x.rows + 1) * out_stride);
    DeviceBuffer<int32_t> d_end(plan.subtree_end), d_pos(plan.positions);
    DeviceBuffer<unsigned char> d_ws(attention_tree_workspace_bytes(x.rows));
    AttentionOptions options;
    options.head_dim = fam.d;
    options.softcap = fam.softcap;
    options.window = fam.window;
    options.positions_dev = d_pos.get();
    for (const double hint : {0.0, 1000.0}) {
      d_out.poison();
      const bf16* base = d_qkv.get();
      ASSERT_EQ(
          attention_tree(base, base + x.hq * fam.d, base + (x.hq + x.hkv) * fam.d, d_out.get(),
                         x.stride(), x.stride(), out_stride, d_end.get(), x.rows, x.hq, x.hkv,
                         default_scale(fam.d), d_ws.get(), d_ws.size(), nullptr, hint, options),
          cudaSuccess);
      const std::vector<bf16> out = take_output(d_out, x.rows, x.hq, fam.d);
      expect_matches_reference(
          x, out,
          [&](int q, int k) {
            return k <= q && q < plan.subtree_end[k] &&
                   (fam.window == 0 || plan.positions[q] - plan.positions[k] < fam.window);
          },
          1, fam.softcap);
    }
  }
}

// The public entry points (default tiles) at the real Qwen3 head counts and the fused layout.
TEST(AttentionDefaults, Qwen3HeadCounts) {
  RADIX_REQUIRE_GPU();
  for (const Heads heads : {Heads{16, 8}, Heads{32, 8}}) {
    const RaggedBatch batch = shared_prefix(3, 150, 60);
    const FoldPlan plan = build_fold_plan(batch.ids, batch.positions, batch.cu_seqlens);
    const Qkv x = random_qkv(plan.num_rows, heads.hq, heads.hkv, 8);
    constexpr int kD = kAttentionHeadDim;
    const int64_t out_stride = int64_t{heads.hq} * kD + kOutPad;
    DeviceBuffer<bf16> d_qkv(x.data), d_out((x.rows + 1) * out_stride);
    DeviceBuffer<int32_t> d_end(plan.subtree_end);
    DeviceBuffer<unsigned char> d_ws(attention_tree_workspace_bytes(x.rows));
    d_out.poison();
    const bf16* base = d_qkv.get();
    ASSERT_EQ(attention_tree(base, base + x.hq * kD, base + (x.hq + x.hkv) * kD, d_out.get(),
                             x.stride(), x.stride(), out_stride, d_end.get(), x.rows, x.hq, x.hkv,
                             default_scale(), d_ws.get(), d_ws.size(), nullptr),
              cudaSuccess);
    const std::vector<bf16> out = take_output(d_out, x.rows, x.hq, kD);
    expect_matches_reference(
        x, out, [&](int q, int k) { return k <= q && q < plan.subtree_end[k]; }, 1);
  }
}

// A forward's layers share one mask: its per-tile bounds are computed once
// (attention_tree_bounds) and each call takes its own work counter. Every call must give what a
// call that computes the bounds itself gives, bit for bit (the same kernel on the same inputs),
// on different q/k/v per "layer", with a window (the positions' bounds) and without.
TEST(AttentionTreeBounds, ComputedOnceServeEveryLayer) {
  RADIX_REQUIRE_GPU();
  const RaggedBatch batch = shared_prefix(5, 300, 90);
  const FoldPlan plan = build_fold_plan(batch.ids, batch.positions, batch.cu_seqlens);
  constexpr int kD = kAttentionHeadDim, kLayers = 3;
  const Heads heads{16, 8};
  const int64_t out_stride = int64_t{heads.hq} * kD;
  DeviceBuffer<int32_t> d_end(plan.subtree_end), d_pos(plan.positions);
  const int rows = plan.num_rows;
  DeviceBuffer<unsigned char> d_shared(attention_tree_workspace_bytes(rows, kLayers)),
      d_own(attention_tree_workspace_bytes(rows));
  ASSERT_EQ(attention_tree_bounds(d_end.get(), d_pos.get(), rows, kLayers, d_shared.get(),
                                  d_shared.size(), nullptr),
            cudaSuccess);
  for (int layer = 0; layer < kLayers; ++layer) {
    SCOPED_TRACE("layer " + std::to_string(layer));
    const Qkv x = random_qkv(rows, heads.hq, heads.hkv, 8 + layer);
    DeviceBuffer<bf16> d_qkv(x.data), d_out(rows * out_stride), d_want(rows * out_stride);
    const bf16* base = d_qkv.get();
    AttentionOptions options;
    options.window = layer == 1 ? 100 : 0;  // positions' bounds are in the shared workspace too
    options.positions_dev = d_pos.get();
    auto run = [&](bf16* out, void* ws, size_t bytes, int counter) {
      AttentionOptions o = options;
      o.tree_counter = counter;
      return attention_tree(base, base + x.hq * kD, base + (x.hq + x.hkv) * kD, out, x.stride(),
                            x.stride(), out_stride, d_end.get(), rows, x.hq, x.hkv, default_scale(),
                            ws, bytes, nullptr, 0, o);
    };
    d_out.poison();
    ASSERT_EQ(run(d_out.get(), d_shared.get(), d_shared.size(), layer), cudaSuccess);
    ASSERT_EQ(run(d_want.get(), d_own.get(), d_own.size(), -1), cudaSuccess);
    const std::vector<bf16> got = d_out.download(), want = d_want.download();
    ASSERT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(bf16)), 0);
  }
  // A counter past the workspace's is an error, launching nothing (the counters are rounded up
  // to 8 bytes: kLayers + 1 of them would still fit).
  const bf16* p = reinterpret_cast<const bf16*>(uintptr_t{1} << 20);
  AttentionOptions past;
  past.tree_counter = kLayers + 2;
  EXPECT_EQ(
      attention_tree(p, p, p, const_cast<bf16*>(p), 24 * kD, 24 * kD, 16 * kD, d_end.get(), rows,
                     16, 4, default_scale(), d_shared.get(), d_shared.size(), nullptr, 0, past),
      cudaErrorInvalidValue);
  EXPECT_EQ(attention_tree_bounds(d_end.get(), nullptr, rows, kLayers + 3, d_shared.get(),
                                  d_shared.size(), nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(
      attention_tree_bounds(nullptr, nullptr, rows, 1, d_shared.get(), d_shared.size(), nullptr),
      cudaErrorInvalidValue);
  EXPECT_EQ(attention_tree_bounds(d_end.get(), nullptr, rows, 0, d_shared.get(), d_shared.size(),
                                  nullptr),
            cudaErrorInvalidValue);
}

// Argument checks happen before anything touches the device, so these run without a GPU.
TEST(AttentionArguments, RejectedWithInvalidValue) {
  auto* p = reinterpret_cast<bf16*>(uintptr_t{1} << 20);  // aligned, never dereferenced
  auto* misaligned = reinterpret_cast<bf16*>((uintptr_t{1} << 20) + 2);
  const auto* cu = reinterpret_cast<const int32_t*>(uintptr_t{1} << 21);
  constexpr int kD = kAttentionHeadDim;
  const float scale = default_scale();
  const int64_t s = 24 * kD;  // Hq 16, Hkv 4
  auto varlen = [&](const bf16* q, int64_t q_stride, int hq, int hkv, float sc) {
    return attention_varlen_causal(q, p, p, p, q_stride, s, 16 * kD, cu, 2, 10, 20, hq, hkv, sc,
                                   nullptr);
  };
  EXPECT_EQ(varlen(nullptr, s, 16, 4, scale), cudaErrorInvalidValue);
  EXPECT_EQ(varlen(misaligned, s, 16, 4, scale), cudaErrorInvalidValue);
  EXPECT_EQ(varlen(p, s + 4, 16, 4, scale), cudaErrorInvalidValue);   // stride not a multiple of 8
  EXPECT_EQ(varlen(p, 8 * kD, 16, 4, scale), cudaErrorInvalidValue);  // rows overlap
  EXPECT_EQ(varlen(p, s, 16, 3, scale), cudaErrorInvalidValue);       // 16 % 3 != 0
  EXPECT_EQ(varlen(p, s, 0, 4, scale), cudaErrorInvalidValue);
  EXPECT_EQ(varlen(p, s, 16, 4, -1.f), cudaErrorInvalidValue);
  EXPECT_EQ(varlen(p, s, 16, 4, NAN), cudaErrorInvalidValue);
  EXPECT_EQ(
      attention_varlen_causal(p, p, p, p, s, s, 16 * kD, nullptr, 2, 10, 20, 16, 4, scale, nullptr),
      cudaErrorInvalidValue);
  EXPECT_EQ(
      attention_varlen_causal(p, p, p, p, s, s, 16 * kD, cu, 70000, 10, 20, 16, 4, scale, nullptr),
      cudaErrorInvalidValue);  // more sequences than one grid dimension holds
  // Nothing to do is not an error, and launches nothing.
  EXPECT_EQ(attention_varlen_causal(p, p, p, p, s, s, 16 * kD, cu, 0, 0, 0, 16, 4, scale, nullptr),
            cudaSuccess);

  const size_t need = attention_tree_workspace_bytes(1000);
  // Per 64-row tile (min, max) of subtree_end and of the positions, then a work counter.
  EXPECT_EQ(need, 2u * 16u * 8u + 8u);
  auto* ws = reinterpret_cast<void*>(uintptr_t{1} << 22);
  auto tree = [&](int rows, void* workspace, size_t bytes) {
    return attention_tree(p, p, p, p, s, s, 16 * kD, cu, rows, 16, 4, scale, workspace, bytes,
                          nullptr);
  };
  EXPECT_EQ(tree(1000, ws, need - 1), cudaErrorInvalidValue);
  EXPECT_EQ(tree(1000, nullptr, need), cudaErrorInvalidValue);
  EXPECT_EQ(tree(1000, reinterpret_cast<char*>(ws) + 4, need), cudaErrorInvalidValue);
  EXPECT_EQ(tree(-1, ws, need), cudaErrorInvalidValue);
  EXPECT_EQ(tree(0, nullptr, 0), cudaSuccess);
  EXPECT_EQ(attention_tree_workspace_bytes(0), 0u);
  // One counter per call that shares the bounds, rounded up to 8 bytes.
  EXPECT_EQ(attention_tree_workspace_bytes(1000, 3), 2u * 16u * 8u + 16u);
  EXPECT_EQ(attention_tree_workspace_bytes(1000, 0), 0u);

  // The options: head_dim outside 64/128/256, a negative or NaN cap, a negative window, a tree
  // window without positions.
  auto with = [&](AttentionOptions o) {
    return attention_varlen_causal(p, p, p, p, s, s, 16 * kD, cu, 2, 10, 20, 16, 4, scale, nullptr,
                                   o);
  };
  EXPECT_EQ(with({96}), cudaErrorInvalidValue);
  EXPECT_EQ(with({128, -1.f}), cudaErrorInvalidValue);
  EXPECT_EQ(with({128, NAN}), cudaErrorInvalidValue);
  EXPECT_EQ(with({128, 0.f, -5}), cudaErrorInvalidValue);
  EXPECT_EQ(with({256}), cudaErrorInvalidValue);  // strides too small for 24 heads of 256
  AttentionOptions windowed;
  windowed.window = 16;
  EXPECT_EQ(attention_tree(p, p, p, p, s, s, 16 * kD, cu, 1000, 16, 4, scale, ws, need, nullptr, 0,
                           windowed),
            cudaErrorInvalidValue);
  // Every tile shape with a kernel for the head dimension: fa2 only 128, the 128-key
  // warp-specialised one 64 and 128.
  EXPECT_FALSE(attention_tiles_supported(AttentionTiles::kFa2Q64, 256));
  EXPECT_FALSE(attention_tiles_supported(AttentionTiles::kFa2Q64, 64));
  EXPECT_FALSE(attention_tiles_supported(AttentionTiles::kWgmmaWsQ128N128, 256));
  EXPECT_FALSE(attention_tiles_supported(AttentionTiles::kWgmmaWsQ128N64, 96));
  EXPECT_FALSE(attention_has_fast_kernels(96));
  // A shape without a kernel for the call's head dimension is refused before any launch, options
  // or not.
  AttentionOptions d64;
  d64.head_dim = 64;
  EXPECT_EQ(attention_varlen_causal_tiles(AttentionTiles::kFa2Q64, p, p, p, p, s, s, 16 * kD, cu, 2,
                                          10, 20, 16, 4, scale, nullptr, d64),
            cudaErrorNotSupported);
  d64.softcap = 30.f;
  EXPECT_EQ(attention_varlen_causal_tiles(AttentionTiles::kFa2Q64, p, p, p, p, s, s, 16 * kD, cu, 2,
                                          10, 20, 16, 4, scale, nullptr, d64),
            cudaErrorNotSupported);
}

}  // namespace
}  // namespace radix::cuda::testing
