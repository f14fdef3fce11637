// Checkpoints stored in fp8 (quantization_config quant_method "fp8"): the tiny formula model's
// projections quantised to e4m3 here in the test, per tensor, per channel and per block. On the
// CPU they are dequantised at load; the forward must equal the same model loaded from an f32
// checkpoint of the dequantised weights. Plus the as-stored fp8 hand-over (write_fp8) and a clear
// error for every malformed scale.
#include "model/fp8_checkpoint.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>

#include "common/expect_error.h"
#include "fp8_folders.h"
#include "model/model.h"
#include "model/model_folder.h"

namespace radix::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<float> embed(const fs::path& folder) {
  auto model = Model::load(folder.string());
  RaggedBatch batch;
  batch.add_sequence(std::vector<int32_t>{1, 2, 3, 4, 5});
  batch.add_sequence(std::vector<int32_t>{1, 2, 9});
  batch.add_sequence(std::vector<int32_t>{40});
  ForwardOptions options;
  options.normalize = false;
  return model->forward(batch, options).values;
}

// The fp8 folder dequantised at load and the f32 folder of the same dequantised values hold the
// same fp32 weights bit for bit (value * scale, one fp32 rounding on both sides), so the two CPU
// forwards run the same arithmetic; 1e-5 relative leaves room for nothing but a changed
// summation order, while one e4m3 step in one weight moves outputs by ~1e-2.
void expect_same_forward(const Folders& f) {
  const std::vector<float> got = embed(f.fp8);
  const std::vector<float> want = embed(f.reference);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], 1e-5 * (1 + std::fabs(want[i]))) << "element " << i;
  }
}

std::function<std::optional<Scales>(const std::string&)> all(Scales kind) {
  return [kind](const std::string&) { return std::optional<Scales>(kind); };
}

TEST(Fp8Checkpoint, DecodesEveryE4m3Code) {
  for (int c = 0; c < 256; ++c) {
    const float v = e4m3_to_float(static_cast<uint8_t>(c));
    if ((c & 0x7F) == 0x7F) {
      EXPECT_TRUE(std::isnan(v)) << c;
    } else {
      EXPECT_EQ(v, reference_e4m3(static_cast<uint8_t>(c))) << c;
    }
  }
  EXPECT_EQ(e4m3_to_float(0x7E), 448.0f);
  EXPECT_EQ(e4m3_to_float(0x38), 1.0f);
  EXPECT_EQ(e4m3_to_float(0x01), std::ldexp(1.0f, -9));
}

TEST(Fp8Checkpoint, PerTensorScalesDequantiseToTheSameForward) {
  expect_same_forward(write_fp8_folders("tensor", all(Scales::kTensor)));
  expect_same_forward(write_fp8_folders("tensor1", all(Scales::kTensor1)));
}

TEST(Fp8Checkpoint, PerChannelScalesDequantiseToTheSameForward) {
  expect_same_forward(write_fp8_folders("channel", all(Scales::kChannel)));
  expect_same_forward(write_fp8_folders("channel1", all(Scales::kChannel1)));
}

TEST(Fp8Checkpoint, BlockScalesDequantiseToTheSameForward) {
  expect_same_forward(write_fp8_folders("block", all(Scales::kBlock)));
}

// Per tensor and per channel side by side in one fused qkv and gate_up, and layer 1's MLP left in
// f32 (an ignored_layers entry).
TEST(Fp8Checkpoint, MixedLayoutsAndUnquantisedLayers) {
  expect_same_forward(write_fp8_folders("mixed", [](const std::string& name) {
    if (name.rfind("layers.1.mlp", 0) == 0) return std::optional<Scales>();
    const bool channel =
        name.find("k_proj") != std::string::npos || name.find("up_proj") != std::string::npos;
    return std::optional<Scales>(channel ? Scales::kChannel : Scales::kTensor);
  }));
}

// The quantisation is real: the fp8 model is close to the unquantised one, not equal to it.
TEST(Fp8Checkpoint, DequantisedModelIsCloseToTheOriginal) {
  const Folders f = write_fp8_folders("close", all(Scales::kChannel));
  const fs::path original = temp_folder("close_original");
  write_text(original / "config.json", config_json(small_fp8_config()).dump());
  write_safetensors((original / "model.safetensors").string(),
                    formula_checkpoint(small_fp8_config(), true));
  const auto a = embed(f.fp8), b = embed(original);
  double dot = 0, na = 0, nb = 0, max_diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
    max_diff = std::max(max_diff, static_cast<double>(std::fabs(a[i] - b[i])));
  }
  // e4m3 keeps 3 mantissa bits (relative step 2^-3): over all sequences the embeddings stay
  // within cosine 0.99 of the f32 ones, and differ somewhere by more than fp32 noise.
  EXPECT_GT(dot / std::sqrt(na * nb), 0.99);
  EXPECT_GT(max_diff, 1e-4);
}

TEST(Fp8Checkpoint, StaticActivationScalesAreValidatedAndNotUsed) {
  const auto with_input_scales = [](std::map<std::string, RawTensor>& t) {
    t["model.layers.0.self_attn.q_proj.input_scale"] = f32_tensor({0.05f}, {});
    t["model.layers.0.mlp.down_proj.input_scale"] = f32_tensor({0.02f}, {1});
  };
  const auto static_scheme = [](json& c) {
    c["quantization_config"]["activation_scheme"] = "static";
  };
  expect_same_forward(
      write_fp8_folders("static", all(Scales::kTensor), with_input_scales, static_scheme));
  const Folders bad = write_fp8_folders(
      "static_bad", all(Scales::kTensor),
      [](auto& t) {
        t["model.layers.0.self_attn.q_proj.input_scale"] = f32_tensor({1, 2}, {2});
      },
      static_scheme);
  expect_error([&] { Model::load(bad.fp8.string()); },
               {"layers.0.self_attn.q_proj.input_scale", "one value"});
}

// A backend that only records uploads: what write_fp8 hands to the device for --dtype fp8.
class UploadRecorder final : public Backend {
 public:
  struct Upload {
    DType dst, host;
    std::string bytes;
  };
  std::vector<Upload> uploads;
  std::string name() const override { return "recorder"; }
  DType weight_dtype() const override { return DType::kBF16; }
  DType activation_dtype() const override { return DType::kBF16; }
  DType residual_dtype() const override { return DType::kF32; }
  Buffer alloc(DType, int64_t, int64_t) override { throw BackendError("alloc"); }
  void upload(const Tensor& dst, const void* host, DType host_dtype) override {
    const auto* p = static_cast<const char*>(host);
    uploads.push_back(
        {dst.dtype, host_dtype, std::string(p, p + dst.numel() * dtype_size(host_dtype))});
  }
  void download(const Tensor&, float*) override { none(); }
  void fill_random_normal(const Tensor&, uint64_t, float, uint64_t) override { none(); }
  void fill_constant(const Tensor&, float) override { none(); }
  void synchronize() override {}
  void embedding(const Tensor&, const Tensor&, const Tensor&, float) override { none(); }
  void rms_norm(const Tensor&, const Tensor&, float, const Tensor&, NormWeight,
                const Tensor&) override {
    none();
  }
  void add_rms_norm(const Tensor&, const Tensor&, const Tensor&, float, const Tensor&, NormWeight,
                    const Tensor&) override {
    none();
  }
  void linear(const Tensor&, const Tensor&, const Tensor&, bool, const Tensor&) override { none(); }
  void qk_norm_rope(const Tensor&, const AttentionShape&, const Tensor&, const Tensor&,
                    const Tensor&, float, float) override {
    none();
  }
  void rope(const Tensor&, const AttentionShape&, const Tensor&, const Tensor&) override { none(); }
  void attention(const Tensor&, const AttentionShape&, const AttentionMask&,
                 const Tensor&) override {
    none();
  }
  void gated_activation(const Tensor&, Activation, const Tensor&, const Tensor&) override {
    none();
  }
  void gather_rows(const Tensor&, const Tensor&, const Tensor&) override { none(); }

 private:
  [[noreturn]] static void none() { throw BackendError("not recorded"); }
};

std::vector<float> floats(const std::string& bytes) {
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), bytes.size());
  return v;
}

// --dtype fp8 takes per-tensor and per-channel weights as stored: the e4m3 bytes unchanged and
// one scale per output channel (a per-tensor scale repeated). Block scales are not handed over.
TEST(Fp8Checkpoint, WriteFp8HandsOverTheStoredBytesAndPerChannelScales) {
  const Qwen3Config c = small_fp8_config();
  const Folders f = write_fp8_folders("as_stored", [](const std::string& name) {
    return std::optional<Scales>(name.find("q_proj") != std::string::npos ? Scales::kTensor
                                                                          : Scales::kChannel);
  });
  SafetensorsWeights weights(f.fp8.string(), c);
  SafetensorsSet stored(f.fp8.string());
  UploadRecorder rec;
  uint8_t q_bytes[1], s_bytes[1];  // never dereferenced by the recorder
  for (const std::string name :
       {"layers.0.self_attn.q_proj.weight", "layers.1.mlp.down_proj.weight"}) {
    ASSERT_TRUE(weights.stored_fp8(name));
    const auto shape = weights.shape(name);
    rec.uploads.clear();
    ASSERT_TRUE(weights.write_fp8(name, rec,
                                  Tensor{q_bytes, DType::kF8E4M3, shape[0], shape[1], shape[1]},
                                  Tensor{s_bytes, DType::kF32, 1, shape[0], shape[0]}));
    ASSERT_EQ(rec.uploads.size(), 2u);
    const SafetensorsTensor* w = stored.find("model." + name);
    EXPECT_EQ(rec.uploads[0].host, DType::kF8E4M3);
    EXPECT_EQ(rec.uploads[0].bytes, std::string(static_cast<const char*>(w->data), w->nbytes));
    const std::string base = "model." + name.substr(0, name.size() - 7);
    const std::vector<float> file_scales =
        floats(std::string(static_cast<const char*>(stored.find(base + ".weight_scale")->data),
                           stored.find(base + ".weight_scale")->nbytes));
    const std::vector<float> sent = floats(rec.uploads[1].bytes);
    ASSERT_EQ(sent.size(), static_cast<size_t>(shape[0]));
    for (size_t r = 0; r < sent.size(); ++r) {
      EXPECT_EQ(sent[r], file_scales[file_scales.size() == 1 ? 0 : r]) << name << " row " << r;
    }
  }
  EXPECT_FALSE(weights.stored_fp8("layers.0.input_layernorm.weight"));
  const Folders block = write_fp8_folders("as_stored_block", all(Scales::kBlock));
  SafetensorsWeights block_weights(block.fp8.string(), c);
  EXPECT_TRUE(block_weights.stored_fp8("layers.0.mlp.up_proj.weight"));
  EXPECT_FALSE(block_weights.write_fp8("layers.0.mlp.up_proj.weight", rec, Tensor{}, Tensor{}));
}

TEST(Fp8Checkpoint, CpuRefusesDtypeFp8) {
  const Folders f = write_fp8_folders("cpu_fp8", all(Scales::kTensor));
  LoadOptions options;
  options.backend.fp8 = true;
  expect_error([&] { Model::load(f.fp8.string(), options); }, {"fp8"});
}

const char kQ[] = "model.layers.0.self_attn.q_proj";

TEST(Fp8Checkpoint, MalformedScalesNameTheTensor) {
  auto load = [](const std::string& name,
                 const std::function<void(std::map<std::string, RawTensor>&)>& edit,
                 Scales kind = Scales::kChannel) {
    return [=] { Model::load(write_fp8_folders(name, all(kind), edit).fp8.string()); };
  };
  const std::string q = kQ;
  expect_error(load("wrong_shape",
                    [&](auto& t) {
                      t[q + ".weight_scale"] = f32_tensor({1, 2, 3}, {3});
                    }),
               {q + ".weight_scale", "[3]", "[32, 32]"});
  expect_error(load("wrong_rank",
                    [&](auto& t) {
                      t[q + ".weight_scale"] = f32_tensor(std::vector<float>(32, 0.1f), {1, 32});
                    }),
               {q + ".weight_scale", "[1, 32]"});
  expect_error(load("missing", [&](auto& t) { t.erase(q + ".weight_scale"); }),
               {q + ".weight", "no weight_scale"});
  expect_error(load(
                   "nan",
                   [&](auto& t) {
                     t[q + ".weight_scale"] =
                         f32_tensor({std::numeric_limits<float>::quiet_NaN()}, {});
                   },
                   Scales::kTensor),
               {q + ".weight_scale", "finite"});
  expect_error(load(
                   "negative", [&](auto& t) { t[q + ".weight_scale"] = f32_tensor({-1.0f}, {}); },
                   Scales::kTensor),
               {q + ".weight_scale", "non-negative"});
  expect_error(load(
                   "i32",
                   [&](auto& t) {
                     t[q + ".weight_scale"] = RawTensor{"I32", {}, std::string(4, '\0')};
                   },
                   Scales::kTensor),
               {q + ".weight_scale", "I32"});
  expect_error(load("nan_weight", [&](auto& t) { t[q + ".weight"].bytes[5] = '\x7F'; }),
               {"q_proj.weight", "non-finite", "element 5"});
  expect_error(load(
                   "block_shape",
                   [&](auto& t) {
                     t[q + ".weight_scale_inv"] = f32_tensor({1, 2}, {1, 2});
                   },
                   Scales::kBlock),
               {q + ".weight_scale_inv", "weight_block_size [16, 16]", "[2, 2]"});
  expect_error(
      load("two_scales", [&](auto& t) { t[q + ".weight_scale_inv"] = f32_tensor({1}, {}); }),
      {q, "two scale tensors"});
  // A scale beside a weight that is not fp8, and fp8 where radix reads none.
  expect_error(load("scale_of_bf16",
                    [&](auto& t) {
                      t[q + ".weight"] = f32_tensor(std::vector<float>(32 * 32, 0.0f), {32, 32});
                    }),
               {q + ".weight_scale", "F32, not F8_E4M3"});
  expect_error(load("fp8_norm",
                    [&](auto& t) {
                      t["model.norm.weight"] = RawTensor{"F8_E4M3", {32}, std::string(32, '\x38')};
                    }),
               {"model.norm.weight", "only for the q/k/v/o/gate/up/down"});
}

TEST(Fp8Checkpoint, UnsupportedQuantizationConfigsAreRefused) {
  auto load_with = [](const std::string& name, const std::function<void(json&)>& edit_config) {
    return [=] {
      Model::load(write_fp8_folders(name, all(Scales::kTensor), {}, edit_config).fp8.string());
    };
  };
  expect_error(load_with("gptq",
                         [](json& c) {
                           c["quantization_config"] = {{"quant_method", "gptq"}};
                         }),
               {"config.json", "quant_method 'gptq'"});
  expect_error(load_with("compressed",
                         [](json& c) {
                           c["quantization_config"] = {{"quant_method", "compressed-tensors"}};
                         }),
               {"quant_method 'compressed-tensors'"});
  expect_error(load_with("e5m2", [](json& c) { c["quantization_config"]["fmt"] = "e5m2"; }),
               {"fmt 'e5m2'"});
  expect_error(load_with("block_bad",
                         [](json& c) { c["quantization_config"]["weight_block_size"] = {128}; }),
               {"weight_block_size"});
  expect_error(
      load_with("scheme_bad",
                [](json& c) { c["quantization_config"]["activation_scheme"] = "per-token"; }),
      {"activation_scheme 'per-token'"});
  // F8_E4M3 tensors without any quantization_config: no scale can be trusted.
  expect_error(load_with("no_config", [](json& c) { c.erase("quantization_config"); }),
               {"F8_E4M3", "quant_method"});
}

}  // namespace
}  // namespace radix::testing
