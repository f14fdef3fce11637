// fp8 checkpoints on the CUDA backend (label gpu; skipped where radix has no CUDA or no GPU):
// with --dtype fp8 per-tensor and per-channel projections reach the GPU as stored (the same e4m3
// values, one scale per output channel), block-wise ones re-quantised per channel within one e4m3
// rounding, and without fp8 they are the bf16 rounding of the dequantised weights; the fp8
// forward stays close to the CPU's dequantised one.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>

#include "common/cosine.h"
#include "fp8_folders.h"
#include "model/decoder_weights.h"
#include "model/fp8_checkpoint.h"
#include "model/model.h"
#include "model/model_folder.h"

namespace radix::testing {
namespace {

std::unique_ptr<Backend> cuda_backend(bool fp8, std::string& why_not) {
  BackendOptions options;
  options.device = "cuda";
  options.fp8 = fp8;
  try {
    return create_backend(options);
  } catch (const std::exception& e) {
    why_not = e.what();
    return nullptr;
  }
}

#define RADIX_CUDA_BACKEND(var, fp8)           \
  std::string var##_missing;                   \
  auto var = cuda_backend(fp8, var##_missing); \
  if (!var) GTEST_SKIP() << "no CUDA backend: " << var##_missing

std::vector<float> download(Backend& backend, const Tensor& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  backend.download(t, out.data());
  return out;
}

std::vector<float> scale_values(const SafetensorsTensor& t) {
  std::vector<float> v(t.nbytes / 4);
  std::memcpy(v.data(), t.data, t.nbytes);
  return v;
}

struct Part {
  std::string name;  // canonical, e.g. "layers.0.self_attn.q_proj.weight"
  int64_t rows;
};

// The fused projections of layer l with their parts, as LayerWeights holds them.
std::vector<std::pair<const Buffer*, const Buffer*>> projections(const LayerWeights& w) {
  return {{&w.qkv, &w.qkv_scale},
          {&w.o, &w.o_scale},
          {&w.gate_up, &w.gate_up_scale},
          {&w.down, &w.down_scale}};
}

std::vector<std::vector<Part>> parts_of_layer(const Qwen3Config& c, int l) {
  const std::string p = "layers." + std::to_string(l) + ".";
  return {{{p + "self_attn.q_proj.weight", c.q_dim()},
           {p + "self_attn.k_proj.weight", c.kv_dim()},
           {p + "self_attn.v_proj.weight", c.kv_dim()}},
          {{p + "self_attn.o_proj.weight", c.hidden_size}},
          {{p + "mlp.gate_proj.weight", c.intermediate_size},
           {p + "mlp.up_proj.weight", c.intermediate_size}},
          {{p + "mlp.down_proj.weight", c.hidden_size}}};
}

// Per tensor and per channel, in every spelling of the scale's shape.
std::optional<Scales> mixed_layout(const std::string& name) {
  if (name.find("q_proj") != std::string::npos) return Scales::kTensor;
  if (name.find("down_proj") != std::string::npos) return Scales::kTensor1;
  if (name.find("up_proj") != std::string::npos) return Scales::kChannel1;
  return Scales::kChannel;
}

TEST(Fp8CheckpointGpu, PerTensorAndPerChannelWeightsArriveAsStored) {
  RADIX_CUDA_BACKEND(backend, true);
  const Qwen3Config c = small_fp8_config();
  const Folders f = write_fp8_folders("gpu_as_stored", mixed_layout);
  const SafetensorsWeights source(f.fp8.string(), c);
  const SafetensorsSet stored(f.fp8.string());
  WeightNeeds needs;
  needs.fp8_projections = true;
  const DecoderWeights w = load_decoder_weights(c, source, *backend, needs);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const auto fused = projections(w.layers[l]);
    const auto parts = parts_of_layer(c, l);
    for (size_t i = 0; i < fused.size(); ++i) {
      const Tensor& q = *fused[i].first;
      ASSERT_EQ(q.dtype, DType::kF8E4M3);
      const std::vector<float> values = download(*backend, q);
      const std::vector<float> scales = download(*backend, *fused[i].second);
      int64_t at = 0;
      for (const Part& part : parts[i]) {
        SCOPED_TRACE(part.name);
        const SafetensorsTensor* t = stored.find("model." + part.name);
        ASSERT_NE(t, nullptr);
        const std::string base = "model." + part.name.substr(0, part.name.size() - 7);
        const SafetensorsTensor* file_scale = stored.find(base + ".weight_scale");
        ASSERT_NE(file_scale, nullptr);
        const std::vector<float> file_scales = scale_values(*file_scale);
        const auto* bytes = static_cast<const uint8_t*>(t->data);
        for (int64_t r = 0; r < part.rows; ++r) {
          // The same e4m3 value, bit for bit, and the stored scale (a per-tensor one repeated).
          EXPECT_EQ(scales[at + r], file_scales[file_scales.size() == 1 ? 0 : r]) << "row " << r;
          for (int64_t col = 0; col < q.cols; ++col) {
            ASSERT_EQ(values[(at + r) * q.cols + col], e4m3_to_float(bytes[r * q.cols + col]))
                << "row " << r << " col " << col;
          }
        }
        at += part.rows;
      }
    }
  }
}

// Block scales cannot be one per channel: the dequantised weight is re-quantised per row on the
// GPU from f32, with scale s = amax / 448. Each value then moves by at most half an e4m3 step:
// 2^-4 relative where x / s is normal (>= 2^-6), 2^-10 * s absolute below (subnormal step 2^-9);
// 1e-4 of slack covers the fp32 products around the rounding.
TEST(Fp8CheckpointGpu, BlockWeightsAreRequantisedPerChannel) {
  RADIX_CUDA_BACKEND(backend, true);
  const Qwen3Config c = small_fp8_config();
  const Folders f = write_fp8_folders(
      "gpu_block", [](const std::string&) { return std::optional<Scales>(Scales::kBlock); });
  const SafetensorsWeights source(f.fp8.string(), c);
  const SafetensorsWeights reference(f.reference.string(), c);
  WeightNeeds needs;
  needs.fp8_projections = true;
  const DecoderWeights w = load_decoder_weights(c, source, *backend, needs);
  const auto fused = projections(w.layers[1]);
  const auto parts = parts_of_layer(c, 1);
  const std::unique_ptr<Backend> cpu = create_backend({});
  for (size_t i = 0; i < fused.size(); ++i) {
    const Tensor& q = *fused[i].first;
    const std::vector<float> values = download(*backend, q);
    const std::vector<float> scales = download(*backend, *fused[i].second);
    int64_t at = 0;
    for (const Part& part : parts[i]) {
      SCOPED_TRACE(part.name);
      // The dequantised weight as the reference folder stores it (f32).
      Buffer host = cpu->alloc(DType::kF32, part.rows, q.cols);
      reference.write(part.name, *cpu, host);
      std::vector<float> want(static_cast<size_t>(part.rows * q.cols));
      cpu->download(host, want.data());
      for (int64_t r = 0; r < part.rows; ++r) {
        const float s = scales[at + r];
        for (int64_t col = 0; col < q.cols; ++col) {
          const float got = values[(at + r) * q.cols + col] * s;
          const float x = want[r * q.cols + col];
          EXPECT_LE(std::fabs(got - x),
                    1.0001f * std::max(std::ldexp(std::fabs(x), -4), std::ldexp(s, -10)))
              << "row " << r << " col " << col;
        }
      }
      at += part.rows;
    }
  }
}

// Without fp8 the GPU holds bf16: the round-to-nearest-even of each dequantised value.
TEST(Fp8CheckpointGpu, Bf16WeightsAreTheRoundedDequantisedValues) {
  RADIX_CUDA_BACKEND(backend, false);
  const Qwen3Config c = small_fp8_config();
  const Folders f = write_fp8_folders("gpu_bf16", mixed_layout);
  const SafetensorsWeights source(f.fp8.string(), c);
  const SafetensorsSet reference(f.reference.string());
  const DecoderWeights w = load_decoder_weights(c, source, *backend, WeightNeeds{});
  const Tensor& qkv = w.layers[0].qkv;
  ASSERT_EQ(qkv.dtype, DType::kBF16);
  const std::vector<float> got = download(*backend, qkv);
  // Named: a range-for over parts_of_layer(c, 0)[0] would iterate a vector already destroyed
  // (the temporary outer vector dies before the loop body runs, C++20 range-for lifetime).
  const std::vector<std::vector<Part>> parts = parts_of_layer(c, 0);
  int64_t at = 0;
  for (const Part& part : parts[0]) {
    const SafetensorsTensor* t = reference.find("model." + part.name);
    ASSERT_NE(t, nullptr) << part.name;
    ASSERT_EQ(t->dtype, DType::kF32) << part.name;
    ASSERT_EQ(t->nbytes, static_cast<size_t>(part.rows * qkv.cols) * 4) << part.name;
    const auto* want = static_cast<const float*>(t->data);
    for (int64_t e = 0; e < part.rows * qkv.cols; ++e) {
      const uint32_t bits = static_cast<uint32_t>(to_bf16(want[e])) << 16;
      float rounded;
      std::memcpy(&rounded, &bits, 4);
      ASSERT_EQ(got[at * qkv.cols + e], rounded) << part.name << " element " << e;
    }
    at += part.rows;
  }
}

// The fp8 forward of an fp8 checkpoint against the CPU's fp32 forward of the same (dequantised)
// weights: the weights agree exactly, so what differs is the GPU's bf16 activations and its
// per-row e4m3 activation quantisation, held to the bars of fp8 against bf16 (docs/numerics.md:
// cosine >= 0.999 mean, >= 0.995 per sequence).
TEST(Fp8CheckpointGpu, Fp8ForwardCloseToTheCpuDequantisedForward) {
  RADIX_CUDA_BACKEND(probe, true);
  probe.reset();
  // head_dim 64: the CUDA attention kernels take no smaller heads.
  const Folders f = write_fp8_folders(small_fp8_config(64), "gpu_forward", mixed_layout);
  LoadOptions gpu;
  gpu.backend.device = "cuda";
  gpu.backend.fp8 = true;
  auto fp8_model = Model::load(f.fp8.string(), gpu);
  auto cpu_model = Model::load(f.fp8.string());
  RaggedBatch batch;
  batch.add_sequence(std::vector<int32_t>{1, 2, 3, 4, 5, 6, 7, 8});
  batch.add_sequence(std::vector<int32_t>{1, 2, 3, 9, 10});
  batch.add_sequence(std::vector<int32_t>{40, 41});
  const ForwardResult got = fp8_model->forward(batch, {});
  const ForwardResult want = cpu_model->forward(batch, {});
  ASSERT_EQ(got.values.size(), want.values.size());
  double sum = 0, lowest = 1;
  for (int s = 0; s < want.num_sequences; ++s) {
    const double cos =
        cosine(got.values.data() + s * want.dim, want.values.data() + s * want.dim, want.dim);
    ASSERT_TRUE(std::isfinite(cos)) << "sequence " << s;
    sum += cos;
    lowest = std::min(lowest, cos);
  }
  std::printf("fp8 checkpoint, cuda fp8 vs cpu dequantised: cosine mean %.5f min %.5f\n",
              sum / want.num_sequences, lowest);
  EXPECT_GE(sum / want.num_sequences, 0.999);
  EXPECT_GE(lowest, 0.995);
}

}  // namespace
}  // namespace radix::testing
