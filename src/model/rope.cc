#include "model/rope.h"

#include <algorithm>
#include <cmath>

namespace radix {

std::vector<float> rope_inv_freq(const DecoderConfig& c, int32_t max_position) {
  const int d = c.head_dim;
  const int half = d / 2;
  const RopeScaling& s = c.rope_scaling;
  double base = c.rope_theta;
  if (s.type == RopeScaling::Type::kDynamic) {
    // NTK-aware: base * ((factor * L / L0) - (factor - 1))^(d / (d - 2)) once L > L0.
    const double original = s.original_max_position_embeddings > 0
                                ? s.original_max_position_embeddings
                                : c.max_position_embeddings;
    const double seq_len = std::max<double>(max_position + 1, original);
    base = base * std::pow(s.factor * seq_len / original - (s.factor - 1.0),
                           static_cast<double>(d) / (d - 2));
  }
  // Default: 1 / base^(arange(0, d, 2).float() / d), in fp32 as transformers.
  std::vector<float> inv(half);
  for (int i = 0; i < half; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(d);
    inv[i] = 1.0f / std::pow(static_cast<float>(base), exponent);
  }
  if (s.type == RopeScaling::Type::kLinear) {
    for (float& f : inv) f /= static_cast<float>(s.factor);
  } else if (s.type == RopeScaling::Type::kLlama3) {
    // Long wavelengths divided by the factor, short ones kept, a smooth blend between.
    const double original = s.original_max_position_embeddings > 0
                                ? s.original_max_position_embeddings
                                : c.max_position_embeddings;
    const double low_wavelen = original / s.low_freq_factor;
    const double high_wavelen = original / s.high_freq_factor;
    // torch computes `scalar / tensor` as reciprocal(tensor) * scalar, all in fp32.
    const auto pi2 = static_cast<float>(2 * 3.14159265358979323846);
    const auto factor = static_cast<float>(s.factor);
    const auto low = static_cast<float>(s.low_freq_factor);
    const auto span = static_cast<float>(s.high_freq_factor - s.low_freq_factor);
    for (float& f : inv) {
      const float wavelen = (1.0f / f) * pi2;
      const float scaled = wavelen > static_cast<float>(low_wavelen) ? f / factor : f;
      const float smooth = ((1.0f / wavelen) * static_cast<float>(original) - low) / span;
      const float smoothed = (1.0f - smooth) * scaled / factor + smooth * scaled;
      const bool medium = !(wavelen < static_cast<float>(high_wavelen)) &&
                          !(wavelen > static_cast<float>(low_wavelen));
      f = medium ? smoothed : scaled;
    }
  }
  return inv;
}

}  // namespace radix
