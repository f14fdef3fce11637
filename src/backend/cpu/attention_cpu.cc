#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/cpu_simd.h"

namespace radix::cpu {
namespace {

constexpr int kTileQ = 32;
constexpr int kTileK = 64;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct AttentionArgs {
  const float* qkv;
  int64_t stride;
  int hq, hkv, d, group;
  float scale;
  const int32_t* visible_end;
  const int32_t* tile_max_end;  // per key tile: max visible_end over its rows
  float* out;
  int64_t out_stride;
};

RADIX_CPU_CLONES float dot(const float* a, const float* b, int d) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int i = 0; i < d; ++i) sum += a[i] * b[i];
  return sum;
}

RADIX_CPU_CLONES void scale_add(float* acc, float factor, const float* v, float p, int d) {
#pragma omp simd
  for (int i = 0; i < d; ++i) acc[i] = acc[i] * factor + p * v[i];
}

// Query rows [q0, q1) of the q heads that share kv head g, with an online softmax over the key
// tiles that any of these rows can see. state: m, l per (row, head); acc: [rows * group, d].
void attention_tile(const AttentionArgs& a, int64_t q0, int64_t q1, int g, float* m, float* l,
                    float* acc, float* scores) {
  const int d = a.d;
  const int64_t rows = q1 - q0;
  std::fill(m, m + rows * a.group, kNegInf);
  std::fill(l, l + rows * a.group, 0.0f);
  std::fill(acc, acc + rows * a.group * d, 0.0f);
  const float* k_base = a.qkv + static_cast<int64_t>(a.hq + g) * d;
  const float* v_base = a.qkv + static_cast<int64_t>(a.hq + a.hkv + g) * d;

  for (int64_t k0 = 0; k0 < q1; k0 += kTileK) {
    // Every key row of this tile ends its visibility at or before the tile's first query.
    if (a.tile_max_end[k0 / kTileK] <= q0) continue;
    const int64_t k1 = std::min<int64_t>(k0 + kTileK, q1);
    for (int64_t r = q0; r < q1; ++r) {
      const int64_t k_stop = std::min<int64_t>(k1, r + 1);  // keys after the query are never seen
      if (k_stop <= k0) continue;
      for (int j = 0; j < a.group; ++j) {
        const int h = g * a.group + j;
        const float* q = a.qkv + r * a.stride + static_cast<int64_t>(h) * d;
        float tile_max = kNegInf;
        for (int64_t k = k0; k < k_stop; ++k) {
          float s = kNegInf;
          if (a.visible_end[k] > r) {
            s = dot(q, k_base + k * a.stride, d) * a.scale;
            tile_max = std::max(tile_max, s);
          }
          scores[k - k0] = s;
        }
        if (tile_max == kNegInf) continue;
        const int64_t state = (r - q0) * a.group + j;
        const float m_new = std::max(m[state], tile_max);
        float correction = std::exp(m[state] - m_new);  // 0 on the first visible tile
        float* acc_row = acc + state * d;
        float sum = l[state] * correction;
        for (int64_t k = k0; k < k_stop; ++k) {
          const float s = scores[k - k0];
          if (s == kNegInf) continue;
          const float p = std::exp(s - m_new);
          sum += p;
          scale_add(acc_row, correction, v_base + k * a.stride, p, d);
          correction = 1.0f;
        }
        l[state] = sum;
        m[state] = m_new;
      }
    }
  }
  for (int64_t r = q0; r < q1; ++r) {
    for (int j = 0; j < a.group; ++j) {
      const int64_t state = (r - q0) * a.group + j;
      const float inv = 1.0f / l[state];  // l > 0: every row sees itself
      const float* acc_row = acc + state * d;
      float* o = a.out + r * a.out_stride + static_cast<int64_t>(g * a.group + j) * d;
      for (int i = 0; i < d; ++i) o[i] = acc_row[i] * inv;
    }
  }
}

}  // namespace

void attention_interval(const float* qkv, int64_t s, int64_t n, int hq, int hkv, int d, float scale,
                        const int32_t* visible_end, float* out, int64_t so, int threads) {
  if (n == 0) return;
  const int64_t num_k_tiles = (n + kTileK - 1) / kTileK;
  std::vector<int32_t> tile_max_end(num_k_tiles);
  for (int64_t t = 0; t < num_k_tiles; ++t) {
    const int64_t end = std::min<int64_t>((t + 1) * kTileK, n);
    tile_max_end[t] = *std::max_element(visible_end + t * kTileK, visible_end + end);
  }
  const AttentionArgs args{qkv, s, hq, hkv, d, hq / hkv, scale, visible_end, tile_max_end.data(),
                           out, so};
  const int64_t num_q_tiles = (n + kTileQ - 1) / kTileQ;
  const int64_t tasks = num_q_tiles * hkv;
#pragma omp parallel num_threads(threads) if (tasks > 1)
  {
    std::vector<float> m(kTileQ * args.group), l(kTileQ * args.group);
    std::vector<float> acc(static_cast<size_t>(kTileQ) * args.group * d), scores(kTileK);
    // Later query tiles see more keys; dynamic scheduling, biggest first.
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t tile = num_q_tiles - 1 - task / hkv;
      const int g = static_cast<int>(task % hkv);
      const int64_t q0 = tile * kTileQ;
      const int64_t q1 = std::min<int64_t>(q0 + kTileQ, n);
      attention_tile(args, q0, q1, g, m.data(), l.data(), acc.data(), scores.data());
    }
  }
}

}  // namespace radix::cpu
