// Straightforward scalar references of the backend ops (double accumulation), shared by the CPU
// op tests and usable by any backend's tests. Shapes as in backend.h; everything contiguous.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace radix::testing {

// x: [n, h] -> x * rsqrt(mean(x^2) + eps) * w
inline std::vector<float> ref_rms_norm(const std::vector<float>& x, const std::vector<float>& w,
                                       int64_t n, int64_t h, float eps) {
  std::vector<float> out(x.size());
  for (int64_t r = 0; r < n; ++r) {
    double sum = 0;
    for (int64_t i = 0; i < h; ++i) sum += static_cast<double>(x[r * h + i]) * x[r * h + i];
    const double inv = 1.0 / std::sqrt(sum / static_cast<double>(h) + eps);
    for (int64_t i = 0; i < h; ++i)
      out[r * h + i] = static_cast<float>(w[i] * (x[r * h + i] * inv));
  }
  return out;
}

// x: [n, k], w: [m, k] -> [n, m]
inline std::vector<float> ref_linear(const std::vector<float>& x, const std::vector<float>& w,
                                     int64_t n, int64_t m, int64_t k) {
  std::vector<float> out(static_cast<size_t>(n * m));
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < m; ++c) {
      double sum = 0;
      for (int64_t i = 0; i < k; ++i) sum += static_cast<double>(x[r * k + i]) * w[c * k + i];
      out[r * m + c] = static_cast<float>(sum);
    }
  }
  return out;
}

// In place on qkv: [n, (hq + 2 hkv) d]: per-head RMSNorm then rotate-half RoPE of q and k heads.
inline void ref_qk_norm_rope(std::vector<float>& qkv, int64_t n, int hq, int hkv, int d,
                             const std::vector<float>& qw, const std::vector<float>& kw,
                             const std::vector<int32_t>& positions, float eps, double theta) {
  const int64_t width = static_cast<int64_t>(hq + 2 * hkv) * d;
  const int half = d / 2;
  for (int64_t r = 0; r < n; ++r) {
    for (int h = 0; h < hq + hkv; ++h) {
      float* x = qkv.data() + r * width + static_cast<int64_t>(h) * d;
      const std::vector<float>& w = h < hq ? qw : kw;
      double sum = 0;
      for (int i = 0; i < d; ++i) sum += static_cast<double>(x[i]) * x[i];
      const double inv = 1.0 / std::sqrt(sum / d + eps);
      std::vector<double> y(d);
      for (int i = 0; i < d; ++i) y[i] = w[i] * (x[i] * inv);
      for (int i = 0; i < half; ++i) {
        const double angle = positions[r] * std::pow(theta, -2.0 * i / d);
        const double c = std::cos(angle), s = std::sin(angle);
        x[i] = static_cast<float>(y[i] * c - y[i + half] * s);
        x[i + half] = static_cast<float>(y[i + half] * c + y[i] * s);
      }
    }
  }
}

// The general mask of the reference attention: key k is visible to query q iff
// visible_begin[k] <= q < visible_end[k] (visible_begin empty: k <= q), and with window > 0 also
// q == k or positions[q] - positions[k] < window. softcap > 0: s -> softcap * tanh(s / softcap).
struct RefMask {
  std::vector<int32_t> visible_begin;
  std::vector<int32_t> visible_end;
  std::vector<int32_t> positions;
  int32_t window = 0;
  double softcap = 0;
};

inline std::vector<float> ref_attention_masked(const std::vector<float>& qkv, int64_t n, int hq,
                                               int hkv, int d, float scale, const RefMask& m) {
  const int64_t width = static_cast<int64_t>(hq + 2 * hkv) * d;
  std::vector<float> out(static_cast<size_t>(n) * hq * d);
  for (int64_t q = 0; q < n; ++q) {
    for (int h = 0; h < hq; ++h) {
      const int g = h / (hq / hkv);
      const float* qv = qkv.data() + q * width + static_cast<int64_t>(h) * d;
      std::vector<double> scores;
      std::vector<int64_t> keys;
      double mx = -1e300;
      for (int64_t k = 0; k < n; ++k) {
        const int64_t begin = m.visible_begin.empty() ? k : m.visible_begin[k];
        if (q < begin || q >= m.visible_end[k]) continue;
        if (m.window > 0 && k != q && m.positions[q] - m.positions[k] >= m.window) continue;
        const float* kv = qkv.data() + k * width + static_cast<int64_t>(hq + g) * d;
        double s = 0;
        for (int i = 0; i < d; ++i) s += static_cast<double>(qv[i]) * kv[i];
        s *= scale;
        if (m.softcap > 0) s = m.softcap * std::tanh(s / m.softcap);
        scores.push_back(s);
        keys.push_back(k);
        mx = std::max(mx, s);
      }
      double denom = 0;
      for (double& s : scores) denom += (s = std::exp(s - mx));
      for (int i = 0; i < d; ++i) {
        double acc = 0;
        for (size_t j = 0; j < keys.size(); ++j) {
          acc += scores[j] * qkv[keys[j] * width + static_cast<int64_t>(hq + hkv + g) * d + i];
        }
        out[(q * hq + h) * d + i] = static_cast<float>(acc / denom);
      }
    }
  }
  return out;
}

// x: [n, h] -> x * rsqrt(mean(x^2) + eps) * (1 + w)  (Gemma's norm)
inline std::vector<float> ref_rms_norm_plus_one(const std::vector<float>& x,
                                                const std::vector<float>& w, int64_t n, int64_t h,
                                                float eps) {
  std::vector<float> w1(w.size());
  for (size_t i = 0; i < w.size(); ++i) w1[i] = static_cast<float>(1.0 + w[i]);
  return ref_rms_norm(x, w1, n, h, eps);
}

// In place on qkv: rotate-half RoPE of the q and k heads at angle positions[r] * inv_freq[i].
inline void ref_rope(std::vector<float>& qkv, int64_t n, int hq, int hkv, int d,
                     const std::vector<int32_t>& positions, const std::vector<float>& inv_freq) {
  const int64_t width = static_cast<int64_t>(hq + 2 * hkv) * d;
  const int half = d / 2;
  for (int64_t r = 0; r < n; ++r) {
    for (int h = 0; h < hq + hkv; ++h) {
      float* x = qkv.data() + r * width + static_cast<int64_t>(h) * d;
      for (int i = 0; i < half; ++i) {
        const double angle = static_cast<double>(positions[r]) * inv_freq[i];
        const double c = std::cos(angle), s = std::sin(angle);
        const double a = x[i], b = x[i + half];
        x[i] = static_cast<float>(a * c - b * s);
        x[i + half] = static_cast<float>(b * c + a * s);
      }
    }
  }
}

// gate_up: [n, 2i] -> [n, i]: gelu_tanh(gate) * up (PyTorch's gelu(approximate="tanh")).
inline std::vector<float> ref_geglu_tanh(const std::vector<float>& gate_up, int64_t n,
                                         int64_t inter) {
  std::vector<float> out(static_cast<size_t>(n * inter));
  const double beta = std::sqrt(2.0 / 3.14159265358979323846);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < inter; ++c) {
      const double g = gate_up[r * 2 * inter + c], u = gate_up[r * 2 * inter + inter + c];
      out[r * inter + c] =
          static_cast<float>(0.5 * g * (1.0 + std::tanh(beta * (g + 0.044715 * g * g * g))) * u);
    }
  }
  return out;
}

// Attention over the interval mask: row q sees k iff k <= q < visible_end[k].
inline std::vector<float> ref_attention(const std::vector<float>& qkv, int64_t n, int hq, int hkv,
                                        int d, float scale,
                                        const std::vector<int32_t>& visible_end) {
  RefMask m;
  m.visible_end = visible_end;
  return ref_attention_masked(qkv, n, hq, hkv, d, scale, m);
}

// gate_up: [n, 2i] -> [n, i]
inline std::vector<float> ref_swiglu(const std::vector<float>& gate_up, int64_t n, int64_t inter) {
  std::vector<float> out(static_cast<size_t>(n * inter));
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < inter; ++c) {
      const double g = gate_up[r * 2 * inter + c], u = gate_up[r * 2 * inter + inter + c];
      out[r * inter + c] = static_cast<float>(g / (1.0 + std::exp(-g)) * u);
    }
  }
  return out;
}

}  // namespace radix::testing
