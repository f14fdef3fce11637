// Loading: config.json, safetensors headers, model folders (single file, sharded, with and
// without the "model." prefix), and clear errors for every corrupt or inconsistent folder.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>

#include "common/expect_error.h"
#include "fixture_util.h"
#include "model/model.h"
#include "model/model_folder.h"
#include "model/safetensors.h"
#include "safetensors_writer.h"

namespace radix::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

Qwen3Config small_config() { return small_decoder("qwen3-0.6b", 16, /*smaller=*/true); }

// A complete small model folder with formula weights; returns its path.
fs::path write_folder(const std::string& name, bool prefix = true,
                      const std::function<void(std::map<std::string, RawTensor>&)>& edit = {},
                      const std::function<void(json&)>& edit_config = {}) {
  const fs::path dir = temp_folder(name);
  json cfg = config_json(small_config());
  if (edit_config) edit_config(cfg);
  write_text(dir / "config.json", cfg.dump());
  auto tensors = formula_checkpoint(small_config(), prefix);
  if (edit) edit(tensors);
  write_safetensors((dir / "model.safetensors").string(), tensors);
  return dir;
}

std::vector<float> embed(Model& model, AttentionMode mode = AttentionMode::kTree) {
  RaggedBatch batch;
  batch.add_sequence(std::vector<int32_t>{1, 2, 3, 4});
  batch.add_sequence(std::vector<int32_t>{1, 2, 9});
  ForwardOptions options;
  options.mode = mode;
  return model.forward(batch, options).values;
}

// ---- config.json -------------------------------------------------------------------------

TEST(Config, ParsesTransformers4And5Files) {
  Qwen3Config c = parse_decoder_config(config_json(small_config()));
  EXPECT_EQ(c.hidden_size, 32);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.rope_theta, 10000);
  // transformers 5 writes rope_parameters (this file was saved by transformers 5.17).
  c = load_decoder_config(fixture_path("hf_tiny_bf16/config.json"));
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.head_dim, 32);
  EXPECT_TRUE(c.tie_word_embeddings);
}

TEST(Config, RejectsOtherModelsAndUnsupportedOptions) {
  auto with = [](const std::function<void(json&)>& edit) {
    json j = config_json(small_config());
    edit(j);
    return [j] { parse_decoder_config(j); };
  };
  expect_error(with([](json& j) { j["model_type"] = "gpt2"; }), {"model_type", "gpt2"});
  expect_error(with([](json& j) { j["rope_scaling"] = {{"type", "yarn"}}; }), {"rope_scaling"});
  expect_error(with([](json& j) {
                 j["rope_parameters"] = {{"rope_type", "yarn"}};
               }),
               {"rope_type", "yarn"});
  expect_error(with([](json& j) { j["use_sliding_window"] = true; }), {"sliding"});
  expect_error(with([](json& j) { j["attention_bias"] = true; }), {"attention_bias"});
  expect_error(with([](json& j) { j["hidden_act"] = "gelu"; }), {"hidden_act", "gelu"});
  expect_error(with([](json& j) { j.erase("hidden_size"); }), {"hidden_size"});
  expect_error(with([](json& j) { j["hidden_size"] = "big"; }), {"hidden_size"});
  expect_error(with([](json& j) { j["num_key_value_heads"] = 3; }), {"num_key_value_heads"});
  expect_error(with([](json& j) { j["head_dim"] = 15; }), {"head_dim"});
  expect_error(with([](json& j) { j["vocab_size"] = -5; }), {"vocab_size"});
  const fs::path dir = temp_folder("bad_json");
  write_text(dir / "config.json", "{\"model_type\": ");
  expect_error([&] { load_decoder_config((dir / "config.json").string()); }, {"not valid JSON"});
}

TEST(Config, ReadsTheRealQwen3EmbeddingFolderExtras) {
  const std::string folder =
      std::string(RADIX_SOURCE_DIR) + "/../shared/assets/qwen3-embedding-0.6b";
  if (!fs::exists(folder)) GTEST_SKIP() << "../shared/assets/qwen3-embedding-0.6b is absent";
  const ModelInfo info = read_model_folder(folder);
  const Qwen3Config preset = decoder_preset("qwen3-0.6b");
  EXPECT_EQ(info.config.hidden_size, preset.hidden_size);
  EXPECT_EQ(info.config.num_hidden_layers, preset.num_hidden_layers);
  EXPECT_EQ(info.config.intermediate_size, preset.intermediate_size);
  EXPECT_EQ(info.config.vocab_size, preset.vocab_size);
  EXPECT_EQ(info.head, HeadKind::kEmbedding);
  EXPECT_EQ(info.pooling, "lasttoken");
  EXPECT_EQ(info.prompts.at("query"),
            "Instruct: Given a web search query, retrieve relevant passages that answer the "
            "query\nQuery:");
  EXPECT_FALSE(info.tokenizer_path.empty());
  // It has no weights: loading the model says so.
  expect_error([&] { Model::load(folder); }, {"no weights"});
}

// ---- safetensors -------------------------------------------------------------------------

TEST(Safetensors, ReadsF32Bf16AndF16) {
  const fs::path dir = temp_folder("st_ok");
  const std::string path = (dir / "a.safetensors").string();
  RawTensor f16{"F16", {2}, std::string("\x00\x3c\x00\xc0", 4)};  // 1, -2
  write_safetensors(path, {{"a", f32_tensor({1, 2, 3, 4, 5, 6}, {2, 3})},
                           {"b", bf16_tensor({1.5f, -2.0f}, {2})},
                           {"c", f16}});
  SafetensorsFile file(path);
  ASSERT_EQ(file.tensors().size(), 3u);
  EXPECT_EQ(file.tensors().at("a").shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(file.tensors().at("a").nbytes, 24u);
  EXPECT_EQ(file.tensors().at("b").dtype, DType::kBF16);
  EXPECT_EQ(file.tensors().at("c").dtype, DType::kF16);
}

TEST(Safetensors, RejectsCorruptHeaders) {
  const fs::path dir = temp_folder("st_bad");
  const std::string path = (dir / "bad.safetensors").string();
  const std::map<std::string, RawTensor> one = {{"a", f32_tensor({1, 2, 3, 4}, {2, 2})}};
  auto with = [&](const std::function<void(json&)>& edit) {
    write_safetensors(path, one, edit);
    return [&] { SafetensorsFile f(path); };
  };
  expect_error(with([](json& h) { h["a"]["data_offsets"] = {0, 64}; }), {"'a'", "outside"});
  expect_error(with([](json& h) { h["a"]["data_offsets"] = {8, 4}; }), {"'a'", "outside"});
  expect_error(with([](json& h) { h["a"]["shape"] = {3, 2}; }), {"'a'", "bytes"});
  expect_error(with([](json& h) { h["a"]["dtype"] = "Q4"; }), {"unknown dtype"});
  expect_error(with([](json& h) { h["a"].erase("shape"); }), {"'a'", "shape"});
  expect_error(with([](json& h) { h["a"]["shape"] = {2, -2}; }), {"'a'", "shape"});
  expect_error(with([](json& h) { h["a"]["data_offsets"] = {0}; }), {"data_offsets"});
  expect_error(with([](json& h) {
                 h["b"] = {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {4, 12}}};
               }),
               {"overlap"});
  expect_error(with([](json& h) { h = json::array(); }), {"not a JSON object"});

  // Broken framing: too short, header length beyond the file, header not JSON.
  std::ofstream(path, std::ios::binary) << "abc";
  expect_error([&] { SafetensorsFile f(path); }, {"too short"});
  {
    std::ofstream out(path, std::ios::binary);
    const char len[8] = {'\xff', '\xff', 0, 0, 0, 0, 0, 0};
    out.write(len, 8);
    out << "{}";
  }
  expect_error([&] { SafetensorsFile f(path); }, {"exceeds the file"});
  {
    std::ofstream out(path, std::ios::binary);
    const char len[8] = {4, 0, 0, 0, 0, 0, 0, 0};
    out.write(len, 8);
    out << "{{{{";
  }
  expect_error([&] { SafetensorsFile f(path); }, {"not valid JSON"});
  expect_error([&] { SafetensorsFile f((dir / "missing.safetensors").string()); }, {"cannot open"});
}

// ---- model folders -----------------------------------------------------------------------

TEST(ModelFolder, TransformersBf16ShardedCheckpointMatchesItsReference) {
  const std::string folder = fixture_path("hf_tiny_bf16");
  const json ref = read_fixture("hf_tiny_bf16/reference.json");
  auto model = Model::load(folder);
  EXPECT_EQ(model->info().head, HeadKind::kEmbedding);  // 1_Pooling is present
  EXPECT_EQ(model->info().prompts.at("query"), "Instruct: test\nQuery:");
  const int h = model->info().hidden_size();
  for (const AttentionMode mode :
       {AttentionMode::kOff, AttentionMode::kScatter, AttentionMode::kTree}) {
    RaggedBatch batch;
    for (const auto& s : ref.at("sequences")) batch.add_sequence(s.get<std::vector<int32_t>>());
    ForwardOptions options;
    options.mode = mode;
    options.return_hidden_states = true;
    const ForwardResult r = model->forward(batch, options);
    for (int s = 0; s < batch.num_sequences(); ++s) {
      const auto want = ref.at("hidden_states")[s].get<std::vector<float>>();
      for (size_t t = 0; t < want.size() / h; ++t) {
        EXPECT_LE(
            rel_err(r.hidden_states.data() + (batch.cu_seqlens[s] + t) * h, want.data() + t * h, h),
            1e-4)
            << attention_mode_name(mode) << " sequence " << s << " token " << t;
      }
      const auto emb = ref.at("embeddings")[s].get<std::vector<float>>();
      for (int c = 0; c < h; ++c) EXPECT_NEAR(r.values[s * h + c], emb[c], 1e-5);
    }
  }
}

TEST(ModelFolder, SingleFileWithOrWithoutPrefixEqualsTheFormulaModel) {
  ModelInfo info;
  info.config = small_config();
  auto reference = Model::create(info, FormulaWeights(info.config));
  const std::vector<float> want = embed(*reference);
  for (const bool prefix : {true, false}) {
    auto model = Model::load(write_folder(prefix ? "prefixed" : "plain", prefix).string());
    // A causal LM without sentence-transformers files, too small a vocabulary for the reranker.
    EXPECT_EQ(model->info().head, HeadKind::kEmbedding);
    EXPECT_EQ(embed(*model), want) << (prefix ? "model. prefix" : "no prefix");
  }
}

TEST(ModelFolder, RejectsMissingUnexpectedMisshapenAndMistypedTensors) {
  expect_error(
      [] {
        Model::load(write_folder("missing", true, [](auto& t) {
                      t.erase("model.layers.1.mlp.up_proj.weight");
                    }).string());
      },
      {"missing tensor", "layers.1.mlp.up_proj.weight"});
  expect_error(
      [] {
        Model::load(write_folder("unexpected", true, [](auto& t) {
                      t["model.layers.0.mlp.extra.weight"] = f32_tensor({1, 2}, {2});
                    }).string());
      },
      {"unexpected tensor", "model.layers.0.mlp.extra.weight"});
  expect_error(
      [] {
        Model::load(write_folder("layer2", true, [](auto& t) {
                      t["model.layers.2.input_layernorm.weight"] = f32_tensor({1, 2}, {2});
                    }).string());
      },
      {"unexpected tensor", "layers.2"});
  expect_error(
      [] {
        Model::load(write_folder("shape", true, [](auto& t) {
                      t["model.norm.weight"] = f32_tensor(std::vector<float>(31, 1.0f), {31});
                    }).string());
      },
      {"model.norm.weight", "shape"});
  expect_error(
      [] {
        Model::load(write_folder("dtype", true, [](auto& t) {
                      t["model.norm.weight"] = RawTensor{"I64", {32}, std::string(256, '\0')};
                    }).string());
      },
      {"model.norm.weight", "I64"});
  expect_error(
      [] {
        Model::load(write_folder("twice", true, [](auto& t) {
                      t["norm.weight"] = t["model.norm.weight"];
                    }).string());
      },
      {"twice"});
  expect_error(
      [] {
        Model::load(write_folder("config", true, {}, [](json& c) {
                      c["intermediate_size"] = 64;
                    }).string());
      },
      {"shape", "config.json"});
}

// NaN or Inf in any weight is reported when the folder loads, naming the tensor and element.
TEST(ModelFolder, RejectsNonFiniteWeights) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  expect_error(
      [&] {
        Model::load(write_folder("nan_f32", true, [&](auto& t) {
                      auto& w = t["model.layers.1.mlp.down_proj.weight"];
                      std::memcpy(w.bytes.data() + 4 * 7, &nan, 4);
                    }).string());
      },
      {"layers.1.mlp.down_proj.weight", "non-finite", "element 7"});
  expect_error(
      [&] {
        Model::load(write_folder("inf_bf16", true, [&](auto& t) {
                      const auto shape = t["model.norm.weight"].shape;
                      std::vector<float> v(static_cast<size_t>(shape[0]), 1.0f);
                      v[3] = -inf;
                      t["model.norm.weight"] = bf16_tensor(v, shape);
                    }).string());
      },
      {"norm.weight", "non-finite", "element 3"});
}

TEST(ModelFolder, RejectsBrokenShardIndexesAndExtras) {
  const fs::path dir = write_folder("sharded");
  auto tensors = formula_checkpoint(small_config(), true);
  std::map<std::string, RawTensor> first, second;
  json map = json::object();
  for (auto& [name, t] : tensors) {
    (name.find("layers.1.") == std::string::npos ? first : second)[name] = t;
    map[name] = name.find("layers.1.") == std::string::npos ? "a.safetensors" : "b.safetensors";
  }
  fs::remove(dir / "model.safetensors");
  write_safetensors((dir / "a.safetensors").string(), first);
  write_safetensors((dir / "b.safetensors").string(), second);
  write_text(dir / "model.safetensors.index.json", json{{"weight_map", map}}.dump());
  ModelInfo info;
  info.config = small_config();
  EXPECT_EQ(embed(*Model::load(dir.string())),
            embed(*Model::create(info, FormulaWeights(info.config))));

  json bad = map;
  bad["model.norm.weight"] = "b.safetensors";
  write_text(dir / "model.safetensors.index.json", json{{"weight_map", bad}}.dump());
  expect_error([&] { Model::load(dir.string()); }, {"model.norm.weight", "does not contain"});
  bad = map;
  bad.erase("model.norm.weight");
  write_text(dir / "model.safetensors.index.json", json{{"weight_map", bad}}.dump());
  expect_error([&] { Model::load(dir.string()); }, {"model.norm.weight", "not mapped"});
  bad = map;
  bad["model.norm.weight"] = "c.safetensors";
  write_text(dir / "model.safetensors.index.json", json{{"weight_map", bad}}.dump());
  expect_error([&] { Model::load(dir.string()); }, {"c.safetensors", "cannot open"});
  bad["model.norm.weight"] = "../a.safetensors";
  write_text(dir / "model.safetensors.index.json", json{{"weight_map", bad}}.dump());
  expect_error([&] { Model::load(dir.string()); }, {"not a file in the folder"});
  write_text(dir / "model.safetensors.index.json", "{\"metadata\": {}}");
  expect_error([&] { Model::load(dir.string()); }, {"weight_map"});
  fs::remove(dir / "model.safetensors.index.json");
  expect_error([&] { Model::load(dir.string()); }, {"no weights"});

  const fs::path pooled = write_folder("pooling");
  write_text(pooled / "1_Pooling" / "config.json", R"({"pooling_mode_cls_token": true})");
  expect_error([&] { Model::load(pooled.string()); }, {"pooling_mode_cls_token", "not supported"});
  write_text(pooled / "1_Pooling" / "config.json",
             R"({"pooling_mode_mean_tokens": true, "pooling_mode_lasttoken": true})");
  expect_error([&] { Model::load(pooled.string()); }, {"pooling_mode_mean_tokens", "lasttoken"});
  write_text(pooled / "1_Pooling" / "config.json", R"({"pooling_mode_mean_tokens": true})");
  EXPECT_EQ(Model::load(pooled.string())->info().pooling, "mean");
  write_text(pooled / "1_Pooling" / "config.json", R"({"pooling_mode_lasttoken": true})");
  write_text(pooled / "config_sentence_transformers.json", R"({"prompts": {"query": 3}})");
  expect_error([&] { Model::load(pooled.string()); }, {"prompt", "query"});
  const fs::path no_config = temp_folder("no_config");
  expect_error([&] { Model::load(no_config.string()); }, {"config.json"});
}

TEST(ModelFolder, HeadsNeedTheirWeights) {
  // Untied embeddings without lm_head: no reranker rows. Vocab 96 < 9693 anyway, so use a
  // vocab that holds the ids.
  auto big_vocab = [](json& c) {
    c["vocab_size"] = 10240;
    c["tie_word_embeddings"] = false;
  };
  Qwen3Config cfg = small_config();
  cfg.vocab_size = 10240;
  cfg.tie_word_embeddings = false;
  auto untied = [&](bool with_head) {
    return [=](std::map<std::string, RawTensor>& t) {
      t = formula_checkpoint(cfg, true);
      if (with_head) {
        t["lm_head.weight"] = f32_tensor(formula_tensor("lm_head.weight", 10240, 32), {10240, 32});
      }
    };
  };
  LoadOptions rerank;
  rerank.head = HeadKind::kReranker;
  expect_error(
      [&] { Model::load(write_folder("nohead", true, untied(false), big_vocab).string(), rerank); },
      {"lm_head.weight"});
  auto model = Model::load(write_folder("head", true, untied(true), big_vocab).string(), rerank);
  RaggedBatch batch;
  batch.add_sequence(std::vector<int32_t>{5, 9693, 2152});
  const ForwardResult r = model->forward(batch);
  // The yes/no rows come from lm_head.weight, not from the embedding.
  ModelInfo info;
  info.config = cfg;
  info.head = HeadKind::kReranker;
  auto reference = Model::create(info, FormulaWeights(cfg, /*with_lm_head=*/true));
  EXPECT_EQ(r.yes_no_logits, reference->forward(batch).yes_no_logits);
  LoadOptions classify;
  classify.head = HeadKind::kClassifier;
  expect_error([&] { Model::load(write_folder("nocls", true).string(), classify); },
               {"score.weight"});
}

}  // namespace
}  // namespace radix::testing
