#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/cpu_simd.h"
#include "backend/cpu/fast_exp.h"

namespace radix::cpu {
namespace {

// Query and key tiles: big enough for the two small GEMMs per tile to run near BLAS speed, small
// enough that tree and causal masks let whole key tiles be skipped.
constexpr int kTileQ = 64;
constexpr int kTileK = 64;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct AttentionArgs {
  const float* qkv;
  int64_t stride;
  int64_t n;  // rows
  int hq, hkv, d, group;
  float scale;
  float softcap;  // > 0: scores become softcap * tanh(s / softcap)
  const IntervalMask* mask;
  bool causal;                    // visible_begin[k] == k: no key after the last query is seen
  const int32_t* tile_max_end;    // per key tile: the largest visible_end of its rows
  const int32_t* tile_min_end;    // per key tile: the smallest
  const int32_t* tile_min_begin;  // per key tile: the smallest visible_begin
  const int32_t* tile_max_begin;  // per key tile: the largest
  float* out;
  int64_t out_stride;
  const PrefixKeysCpu* prefix;  // nullptr: none
};

// s[j] = exp(s[j] - m) (0 for masked keys at -inf); returns the sum.
RADIX_CPU_CLONES float exp_shift_sum(float* s, int n, float m) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int j = 0; j < n; ++j) {
    s[j] = fast_exp(s[j] - m);
    sum += s[j];
  }
  return sum;
}

struct Scratch {
  std::vector<float> scores, acc, m, l;
  explicit Scratch(int d)
      : scores(kTileQ * kTileK), acc(static_cast<size_t>(kTileQ) * d), m(kTileQ), l(kTileQ) {}
};

// One key block for query rows [q0, q0 + nq) of q head h: scores = Q K^T, masked by
// seen(i, j) unless all_visible, folded into the online softmax state, acc += P V.
template <typename Seen>
void accumulate_block(const AttentionArgs& a, const float* q, int nq, const float* k,
                      const float* v, int64_t kv_stride, int nk, bool all_visible, Seen seen,
                      Scratch& w) {
  const int d = a.d;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, d, a.scale, q,
              static_cast<blasint>(a.stride), k, static_cast<blasint>(kv_stride), 0.0f,
              w.scores.data(), kTileK);
  for (int i = 0; i < nq; ++i) {
    float* s = w.scores.data() + static_cast<int64_t>(i) * kTileK;
    if (a.softcap > 0.0f) {
      const float inv_cap = 1.0f / a.softcap;
      for (int j = 0; j < nk; ++j) s[j] = a.softcap * std::tanh(s[j] * inv_cap);
    }
    if (!all_visible) {
      for (int j = 0; j < nk; ++j) {
        if (!seen(i, j)) s[j] = kNegInf;
      }
    }
    float tile_max = kNegInf;
    for (int j = 0; j < nk; ++j) tile_max = std::max(tile_max, s[j]);
    if (tile_max == kNegInf) {  // this row sees nothing here: contribute zeros
      std::fill(s, s + nk, 0.0f);
      continue;
    }
    const float m_new = std::max(w.m[i], tile_max);
    const float correction = std::exp(w.m[i] - m_new);  // 0 on the row's first visible tile
    const float sum = exp_shift_sum(s, nk, m_new);
    w.l[i] = w.l[i] * correction + sum;
    w.m[i] = m_new;
    if (correction != 1.0f) {
      float* acc = w.acc.data() + static_cast<int64_t>(i) * d;
      for (int c = 0; c < d; ++c) acc[c] *= correction;
    }
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, d, nk, 1.0f, w.scores.data(), kTileK,
              v, static_cast<blasint>(kv_stride), 1.0f, w.acc.data(), d);
}

// The prefix keys query rows [q0, q1) of kv group g see: tiles of the prefix no anchor of these
// rows reaches are skipped (a key tile [k0, k1) is seen by anchor a only if k0 <= a and some
// subtree_end in it is > a).
void accumulate_prefix(const AttentionArgs& a, const float* q, int64_t q0, int64_t q1, int g,
                       Scratch& w) {
  const PrefixKeysCpu& p = *a.prefix;
  int32_t min_anchor = std::numeric_limits<int32_t>::max(), max_anchor = -1;
  for (int64_t r = q0; r < q1; ++r) {
    if (p.anchor[r] < 0) continue;
    min_anchor = std::min(min_anchor, p.anchor[r]);
    max_anchor = std::max(max_anchor, p.anchor[r]);
  }
  if (max_anchor < 0) return;
  const IntervalMask& mask = *a.mask;
  const int nq = static_cast<int>(q1 - q0);
  const float* k_base = p.kv + static_cast<int64_t>(g) * a.d;
  const float* v_base = p.kv + static_cast<int64_t>(a.hkv + g) * a.d;
  for (int64_t k0 = 0; k0 <= max_anchor; k0 += kTileK) {
    const int64_t k1 = std::min<int64_t>({k0 + kTileK, p.rows, int64_t{max_anchor} + 1});
    const int32_t tile_max_end = *std::max_element(p.subtree_end + k0, p.subtree_end + k1);
    if (tile_max_end <= min_anchor) continue;
    auto seen = [&](int i, int j) {
      const int32_t anchor = p.anchor[q0 + i];
      const int64_t k = k0 + j;
      if (anchor < k || anchor >= p.subtree_end[k]) return false;
      return mask.window == 0 ||
             static_cast<int64_t>(mask.positions[q0 + i]) - p.positions[k] < mask.window;
    };
    accumulate_block(a, q, nq, k_base + k0 * p.stride, v_base + k0 * p.stride, p.stride,
                     static_cast<int>(k1 - k0), false, seen, w);
  }
}

// Query rows [q0, q1) of head h: flash-style online softmax over the key tiles any of these rows
// can see (the prefix keys first, then this batch's); scores = Q K^T and acc += P V as
// single-threaded sgemm calls (each OpenMP thread runs its own tiles; OpenBLAS is set to one
// thread).
void attention_tile(const AttentionArgs& a, int64_t q0, int64_t q1, int h, Scratch& w) {
  const int d = a.d;
  const int g = h / a.group;
  const int nq = static_cast<int>(q1 - q0);
  const float* q = a.qkv + q0 * a.stride + static_cast<int64_t>(h) * d;
  const float* k_base = a.qkv + static_cast<int64_t>(a.hq + g) * d;
  const float* v_base = a.qkv + static_cast<int64_t>(a.hq + a.hkv + g) * d;
  std::fill(w.m.begin(), w.m.begin() + nq, kNegInf);
  std::fill(w.l.begin(), w.l.begin() + nq, 0.0f);
  std::fill(w.acc.begin(), w.acc.begin() + static_cast<int64_t>(nq) * d, 0.0f);
  if (a.prefix != nullptr) accumulate_prefix(a, q, q0, q1, g, w);

  const IntervalMask& mask = *a.mask;
  const int64_t key_end = a.causal ? q1 : a.n;  // causal: keys after the last query are unseen
  for (int64_t k0 = 0; k0 < key_end; k0 += kTileK) {
    const int64_t tile = k0 / kTileK;
    // No key here is visible to any query of the tile.
    if (a.tile_max_end[tile] <= q0 || a.tile_min_begin[tile] >= q1) continue;
    const int64_t k1 = std::min<int64_t>(k0 + kTileK, key_end);
    // Every key of the tile is visible to every query of the tile: no mask.
    const bool all_visible =
        mask.window == 0 && a.tile_max_begin[tile] <= q0 && a.tile_min_end[tile] >= q1;
    auto seen = [&](int i, int j) {
      const int64_t r = q0 + i;
      const int64_t k = k0 + j;
      const int64_t begin = mask.visible_begin ? mask.visible_begin[k] : k;
      bool visible = begin <= r && r < mask.visible_end[k];
      if (visible && mask.window > 0 && k != r) {
        visible = static_cast<int64_t>(mask.positions[r]) - mask.positions[k] < mask.window;
      }
      return visible;
    };
    accumulate_block(a, q, nq, k_base + k0 * a.stride, v_base + k0 * a.stride, a.stride,
                     static_cast<int>(k1 - k0), all_visible, seen, w);
  }
  for (int i = 0; i < nq; ++i) {
    const float inv = 1.0f / w.l[i];  // l > 0: every row sees itself
    const float* acc = w.acc.data() + static_cast<int64_t>(i) * d;
    float* o = a.out + (q0 + i) * a.out_stride + static_cast<int64_t>(h) * d;
    for (int c = 0; c < d; ++c) o[c] = acc[c] * inv;
  }
}

}  // namespace

void attention_interval(const float* qkv, int64_t s, int64_t n, int hq, int hkv, int d, float scale,
                        float softcap, const IntervalMask& mask, float* out, int64_t so,
                        int threads, const PrefixKeysCpu* prefix) {
  if (n == 0) return;
  const int64_t num_k_tiles = (n + kTileK - 1) / kTileK;
  std::vector<int32_t> tile_max_end(num_k_tiles), tile_min_end(num_k_tiles);
  std::vector<int32_t> tile_min_begin(num_k_tiles), tile_max_begin(num_k_tiles);
  for (int64_t t = 0; t < num_k_tiles; ++t) {
    const int64_t k0 = t * kTileK;
    const int64_t k1 = std::min<int64_t>(k0 + kTileK, n);
    tile_max_end[t] = *std::max_element(mask.visible_end + k0, mask.visible_end + k1);
    tile_min_end[t] = *std::min_element(mask.visible_end + k0, mask.visible_end + k1);
    if (mask.visible_begin != nullptr) {
      tile_min_begin[t] = *std::min_element(mask.visible_begin + k0, mask.visible_begin + k1);
      tile_max_begin[t] = *std::max_element(mask.visible_begin + k0, mask.visible_begin + k1);
    } else {
      tile_min_begin[t] = static_cast<int32_t>(k0);
      tile_max_begin[t] = static_cast<int32_t>(k1 - 1);
    }
  }
  const AttentionArgs args{qkv,
                           s,
                           n,
                           hq,
                           hkv,
                           d,
                           hq / hkv,
                           scale,
                           softcap,
                           &mask,
                           mask.visible_begin == nullptr,
                           tile_max_end.data(),
                           tile_min_end.data(),
                           tile_min_begin.data(),
                           tile_max_begin.data(),
                           out,
                           so,
                           prefix};
  const int64_t num_q_tiles = (n + kTileQ - 1) / kTileQ;
  const int64_t tasks = num_q_tiles * hq;
#pragma omp parallel num_threads(threads) if (tasks > 1)
  {
    Scratch scratch(d);
    // Later query tiles see more keys: dynamic scheduling, biggest first.
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t tile = num_q_tiles - 1 - task / hq;
      const int h = static_cast<int>(task % hq);
      const int64_t q0 = tile * kTileQ;
      attention_tile(args, q0, std::min<int64_t>(q0 + kTileQ, n), h, scratch);
    }
  }
}

}  // namespace radix::cpu
