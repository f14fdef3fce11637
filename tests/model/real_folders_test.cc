// The folder layouts of the real models issue 11 names, one test each: config.json written from
// the model's public config (transformers 4 or 5 style, with the keys the real file carries) with
// small dimensions substituted, the sentence-transformers files where the real folder has them,
// and formula weights under the checkpoint's real tensor names. Each proves the folder loads,
// refuses none of those keys, and picks the right family options, head and pooling.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "fixture_util.h"
#include "model/model.h"
#include "model/random_weights.h"
#include "safetensors_writer.h"

namespace radix::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The small dimensions substituted into every real config.
void shrink(json& c, int heads = 4, int kv_heads = 2, int head_dim = 16) {
  c["hidden_size"] = 64;
  c["intermediate_size"] = 96;
  c["num_hidden_layers"] = 4;
  c["num_attention_heads"] = heads;
  c["num_key_value_heads"] = kv_heads;
  if (c.contains("head_dim")) c["head_dim"] = head_dim;
  c["vocab_size"] = 320;
}

struct Extras {
  const char* pooling = nullptr;  // 1_Pooling/config.json mode key, or none
  bool prefix = false;            // "model." names (a *ForCausalLM export)
  bool lm_head = false;           // an untied lm_head.weight
};

fs::path write_real_folder(const std::string& name, const json& config, const Extras& extras) {
  const fs::path dir = temp_folder("real_" + name);
  write_text(dir / "config.json", config.dump(2));
  const DecoderConfig c = parse_decoder_config(config);
  std::map<std::string, RawTensor> tensors;
  for (const ExpectedTensor& t : expected_decoder_tensors(c)) {
    if (!t.required && !(extras.lm_head && t.name == "lm_head.weight")) continue;
    const auto v = formula_tensor(t.name, t.shape[0], t.shape[1]);
    const bool vector = t.shape[0] == 1 && t.name != "embed_tokens.weight";
    const std::string key = (extras.prefix && t.name != "lm_head.weight" ? "model." : "") + t.name;
    tensors[key] = bf16_tensor(v, vector ? std::vector<int64_t>{t.shape[1]}
                                         : std::vector<int64_t>{t.shape[0], t.shape[1]});
  }
  write_safetensors((dir / "model.safetensors").string(), tensors);
  if (extras.pooling != nullptr) {
    write_text(dir / "1_Pooling" / "config.json",
               json{{"word_embedding_dimension", 64}, {extras.pooling, true}}.dump());
    write_text(dir / "modules.json", R"([{"idx": 0, "name": "0", "path": "",
      "type": "sentence_transformers.models.Transformer"}])");
  }
  write_text(dir / "generation_config.json", R"({"_from_model_config": true})");
  return dir;
}

std::unique_ptr<Model> load(const fs::path& dir, std::vector<int32_t> reranker_tokens = {}) {
  LoadOptions options;
  options.backend.threads = 2;
  options.reranker_tokens = std::move(reranker_tokens);
  return Model::load(dir.string(), options);
}

// Runs a small batch with shared prefixes in tree mode: the folder serves.
void expect_serves(Model& model) {
  RaggedBatch batch;
  batch.add_sequence(std::vector<int32_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  batch.add_sequence(std::vector<int32_t>{1, 2, 3, 11});
  const ForwardResult r = model.forward(batch);
  ASSERT_EQ(r.num_sequences, 2);
  for (const float v : r.values) ASSERT_TRUE(std::isfinite(v));
}

// intfloat/e5-mistral-7b-instruct (SFR-Embedding-Mistral and Linq-Embed-Mistral ship the same
// layout): MistralModel without the "model." prefix, transformers 4 keys, last-token pooling.
json mistral_embedder_config() {
  json c = {{"_name_or_path", "intfloat/e5-mistral-7b-instruct"},
            {"architectures", {"MistralModel"}},
            {"attention_dropout", 0.0},
            {"bos_token_id", 1},
            {"eos_token_id", 2},
            {"hidden_act", "silu"},
            {"initializer_range", 0.02},
            {"max_position_embeddings", 32768},
            {"model_type", "mistral"},
            {"pad_token_id", 2},
            {"rms_norm_eps", 1e-05},
            {"rope_theta", 10000.0},
            {"sliding_window", 4096},
            {"tie_word_embeddings", false},
            {"torch_dtype", "float16"},
            {"transformers_version", "4.34.0"},
            {"use_cache", false}};
  shrink(c);
  return c;
}

TEST(RealFolders, E5MistralAndItsSiblingsAreLastTokenEmbedders) {
  for (const char* name : {"intfloat/e5-mistral-7b-instruct", "Salesforce/SFR-Embedding-Mistral",
                           "Linq-AI-Research/Linq-Embed-Mistral"}) {
    json config = mistral_embedder_config();
    config["_name_or_path"] = name;
    const auto model = load(write_real_folder("mistral", config, {"pooling_mode_lasttoken"}));
    const ModelInfo& info = model->info();
    EXPECT_EQ(info.config.family, "mistral") << name;
    EXPECT_EQ(info.head, HeadKind::kEmbedding) << name;
    EXPECT_EQ(info.pooling, "lasttoken") << name;
    EXPECT_EQ(info.config.sliding_window, 4096) << name;
    EXPECT_TRUE(info.config.layer_is_sliding(3)) << name;
    EXPECT_TRUE(info.dedup()) << name;
    expect_serves(*model);
  }
}

// mixedbread-ai/mxbai-rerank-base-v2: Qwen2ForCausalLM with tied embeddings, no
// sentence-transformers files; its score is sigmoid(logit("1") - logit("0")), so it is a
// reranker once those two tokens are named.
TEST(RealFolders, MxbaiRerankV2IsACausalQwen2Reranker) {
  json c = {{"architectures", {"Qwen2ForCausalLM"}},
            {"attention_dropout", 0.0},
            {"bos_token_id", 151643},
            {"eos_token_id", 151645},
            {"hidden_act", "silu"},
            {"initializer_range", 0.02},
            {"max_position_embeddings", 32768},
            {"max_window_layers", 24},
            {"model_type", "qwen2"},
            {"rms_norm_eps", 1e-06},
            {"rope_scaling", nullptr},
            {"rope_theta", 1000000.0},
            {"sliding_window", 32768},
            {"tie_word_embeddings", true},
            {"torch_dtype", "bfloat16"},
            {"transformers_version", "4.49.0"},
            {"use_cache", true},
            {"use_sliding_window", false}};
  shrink(c);
  const fs::path dir = write_real_folder("mxbai", c, {nullptr, true});
  const auto plain = load(dir);
  EXPECT_EQ(plain->info().head, HeadKind::kEmbedding);  // no tokens named: nothing to read
  const auto model = load(dir, {16, 15});               // "1", "0" in the real vocabulary
  const ModelInfo& info = model->info();
  EXPECT_EQ(info.config.family, "qwen2");
  EXPECT_EQ(info.head, HeadKind::kReranker);
  EXPECT_EQ(info.reranker_tokens, (std::vector<int32_t>{16, 15}));
  EXPECT_TRUE(info.config.qkv_bias);
  EXPECT_EQ(info.config.sliding_window, 0);  // use_sliding_window false
  EXPECT_TRUE(info.dedup());
  expect_serves(*model);
}

// Alibaba-NLP/gte-Qwen2-7B-instruct: bidirectional (is_causal false; its remote code names the
// model), last-token pooling: served unfolded, never refused.
TEST(RealFolders, GteQwen2IsBidirectionalAndNeverFolded) {
  json c = {{"_name_or_path", "Alibaba-NLP/gte-Qwen2-7B-instruct"},
            {"architectures", {"Qwen2ForCausalLM"}},
            {"auto_map",
             {{"AutoModel", "Alibaba-NLP/gte-Qwen2-7B-instruct--modeling_qwen.Qwen2Model"},
              {"AutoModelForCausalLM",
               "Alibaba-NLP/gte-Qwen2-7B-instruct--modeling_qwen.Qwen2ForCausalLM"}}},
            {"attention_dropout", 0.0},
            {"bos_token_id", 151643},
            {"eos_token_id", 151643},
            {"hidden_act", "silu"},
            {"max_position_embeddings", 131072},
            {"max_window_layers", 28},
            {"model_type", "qwen2"},
            {"rms_norm_eps", 1e-06},
            {"rope_theta", 1000000.0},
            {"sliding_window", 131072},
            {"tie_word_embeddings", false},
            {"torch_dtype", "float32"},
            {"use_cache", true},
            {"use_sliding_window", false}};
  shrink(c);
  for (const bool flag : {false, true}) {
    json config = c;
    if (flag) config["is_causal"] = false;  // the flag alone also says it
    if (flag) config.erase("_name_or_path"), config.erase("auto_map");
    const auto model =
        load(write_real_folder("gte", config, {"pooling_mode_lasttoken", true, true}));
    const ModelInfo& info = model->info();
    EXPECT_EQ(info.config.family, "qwen2");
    EXPECT_FALSE(info.config.causal);
    EXPECT_FALSE(info.dedup());
    EXPECT_EQ(info.head, HeadKind::kEmbedding);
    RaggedBatch batch;
    batch.add_sequence(std::vector<int32_t>{1, 2, 3, 4});
    batch.add_sequence(std::vector<int32_t>{1, 2, 3});
    ForwardOptions options;
    options.mode = AttentionMode::kTree;
    const ForwardResult r = model->forward(batch, options);
    EXPECT_EQ(r.num_rows, r.num_tokens);  // not folded
    // Bidirectional: the shared prefix's last row differs between the two sequences.
    options.return_hidden_states = true;
    const ForwardResult h = model->forward(batch, options);
    const int hidden = info.hidden_size();
    EXPECT_GT(
        rel_err(h.hidden_states.data() + 2 * hidden, h.hidden_states.data() + 6 * hidden, hidden),
        1e-3);
  }
}

// A Llama-3.1-based embedder (e.g. LLM2Vec / NV-style conversions): LlamaModel, transformers 4
// rope_scaling of type llama3, mean pooling.
TEST(RealFolders, Llama31EmbedderWithLlama3RopeScalingAndMeanPooling) {
  json c = {{"architectures", {"LlamaModel"}},
            {"attention_bias", false},
            {"attention_dropout", 0.0},
            {"bos_token_id", 128000},
            {"eos_token_id", 128001},
            {"hidden_act", "silu"},
            {"initializer_range", 0.02},
            {"max_position_embeddings", 131072},
            {"mlp_bias", false},
            {"model_type", "llama"},
            {"pretraining_tp", 1},
            {"rms_norm_eps", 1e-05},
            {"rope_scaling",
             {{"factor", 8.0},
              {"low_freq_factor", 1.0},
              {"high_freq_factor", 4.0},
              {"original_max_position_embeddings", 8192},
              {"rope_type", "llama3"}}},
            {"rope_theta", 500000.0},
            {"tie_word_embeddings", false},
            {"torch_dtype", "bfloat16"},
            {"use_cache", true}};
  shrink(c);
  const auto model = load(write_real_folder("llama", c, {"pooling_mode_mean_tokens"}));
  const ModelInfo& info = model->info();
  EXPECT_EQ(info.config.family, "llama");
  EXPECT_EQ(info.config.rope_scaling.type, RopeScaling::Type::kLlama3);
  EXPECT_EQ(info.config.rope_theta, 500000.0);
  EXPECT_EQ(info.pooling, "mean");
  EXPECT_EQ(info.head, HeadKind::kEmbedding);
  expect_serves(*model);
}

// BAAI/bge-reranker-v2-gemma: GemmaForCausalLM (tied), hidden_act "gelu" with the tanh GELU
// Gemma means, head_dim 256, one KV head; the score is the "Yes" logit (one token: sigmoid).
TEST(RealFolders, BgeRerankerV2GemmaReadsOneYesLogit) {
  json c = {{"architectures", {"GemmaForCausalLM"}},
            {"attention_bias", false},
            {"attention_dropout", 0.0},
            {"bos_token_id", 2},
            {"eos_token_id", 1},
            {"head_dim", 256},
            {"hidden_act", "gelu"},
            {"initializer_range", 0.02},
            {"max_position_embeddings", 8192},
            {"model_type", "gemma"},
            {"pad_token_id", 0},
            {"rms_norm_eps", 1e-06},
            {"rope_scaling", nullptr},
            {"rope_theta", 10000.0},
            {"torch_dtype", "float32"},
            {"use_cache", true}};
  shrink(c, 4, 1, 32);
  const auto model = load(write_real_folder("bge_gemma", c, {nullptr, true}), {317});
  const ModelInfo& info = model->info();
  EXPECT_EQ(info.config.family, "gemma");
  EXPECT_EQ(info.head, HeadKind::kReranker);
  EXPECT_EQ(info.config.activation, Activation::kGeluTanh);
  EXPECT_EQ(info.config.norm_weight, NormWeight::kPlusOne);
  EXPECT_TRUE(info.config.scale_embeddings);
  EXPECT_TRUE(info.config.tie_word_embeddings);  // Gemma's default, absent from the file
  RaggedBatch batch;
  batch.add_sequence(std::vector<int32_t>{2, 5, 6, 7});
  const ForwardResult r = model->forward(batch);
  ASSERT_EQ(r.yes_no_logits.size(), 2u);
  EXPECT_EQ(r.yes_no_logits[1], 0.0f);  // one token: (logit, 0)
  EXPECT_NEAR(r.values[0], 1.0 / (1.0 + std::exp(-r.yes_no_logits[0])), 1e-6);
}

// BAAI/bge-multilingual-gemma2: Gemma2Model, transformers 4 keys (no layer_types: every other
// layer slides, from the first), soft-caps, query_pre_attn_scalar, last-token pooling.
TEST(RealFolders, BgeMultilingualGemma2) {
  json c = {{"architectures", {"Gemma2Model"}},
            {"attention_bias", false},
            {"attention_dropout", 0.0},
            {"attn_logit_softcapping", 50.0},
            {"bos_token_id", 2},
            {"cache_implementation", "hybrid"},
            {"eos_token_id", 1},
            {"final_logit_softcapping", 30.0},
            {"head_dim", 256},
            {"hidden_act", "gelu_pytorch_tanh"},
            {"hidden_activation", "gelu_pytorch_tanh"},
            {"initializer_range", 0.02},
            {"max_position_embeddings", 8192},
            {"model_type", "gemma2"},
            {"pad_token_id", 0},
            {"query_pre_attn_scalar", 256},
            {"rms_norm_eps", 1e-06},
            {"rope_theta", 10000.0},
            {"sliding_window", 4096},
            {"sliding_window_size", 4096},
            {"torch_dtype", "float32"},
            {"transformers_version", "4.42.4"},
            {"use_cache", true}};
  shrink(c, 4, 2, 32);
  const auto model = load(write_real_folder("bge_gemma2", c, {"pooling_mode_lasttoken"}));
  const ModelInfo& info = model->info();
  EXPECT_EQ(info.config.family, "gemma2");
  EXPECT_EQ(info.head, HeadKind::kEmbedding);
  EXPECT_EQ(info.pooling, "lasttoken");
  EXPECT_TRUE(info.config.sandwich_norms);
  EXPECT_EQ(info.config.attn_logit_softcap, 50.0);
  EXPECT_EQ(info.config.final_logit_softcap, 30.0);
  EXPECT_FLOAT_EQ(info.config.attention_scale(), 1.0f / 16.0f);
  EXPECT_TRUE(info.config.layer_is_sliding(0));
  EXPECT_FALSE(info.config.layer_is_sliding(1));
  EXPECT_TRUE(info.config.layer_is_sliding(2));
  expect_serves(*model);
}

TEST(RealFolders, UnsupportedOptionsAreRefusedByName) {
  json c = mistral_embedder_config();
  c["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  EXPECT_THROW(parse_decoder_config(c), std::runtime_error);
  c = mistral_embedder_config();
  c["hidden_act"] = "relu";
  EXPECT_THROW(parse_decoder_config(c), std::runtime_error);
  c = mistral_embedder_config();
  c["model_type"] = "phi3";
  try {
    parse_decoder_config(c);
    ADD_FAILURE() << "phi3 accepted";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("phi3"), std::string::npos) << what;
    EXPECT_NE(what.find("gemma2"), std::string::npos) << what;  // lists the supported ones
  }
}

}  // namespace
}  // namespace radix::testing

namespace radix::testing {
namespace {

// random:<shape> for `radix bench model`: the real shapes, checked by their parameter counts.
TEST(RandomShapes, PresetsHaveTheRealParameterCounts) {
  const std::vector<std::pair<std::string, double>> presets = {
      {"qwen3-0.6b", 0.60e9}, {"qwen3-8b", 8.19e9},  {"mistral-7b", 7.11e9},
      {"qwen2-7b", 7.62e9},   {"llama3-8b", 8.03e9}, {"gemma2-9b", 9.24e9}};
  for (const auto& [name, params] : presets) {
    const DecoderConfig c = decoder_preset(name);
    double total = 0;
    for (const ExpectedTensor& t : expected_decoder_tensors(c)) {
      if (t.name == "lm_head.weight" && c.tie_word_embeddings) continue;
      total += static_cast<double>(t.shape[0]) * t.shape[1];
    }
    EXPECT_NEAR(total / params, 1.0, 0.02) << name << " has " << total << " parameters";
  }
  EXPECT_EQ(decoder_preset("gemma2-9b").head_dim, 256);
  EXPECT_TRUE(decoder_preset("mistral-7b").layer_is_sliding(31));
  EXPECT_TRUE(decoder_preset("qwen2-7b").qkv_bias);
  EXPECT_EQ(decoder_preset("llama3-8b").rope_scaling.type, RopeScaling::Type::kLlama3);
  EXPECT_THROW(decoder_preset("mistral-8x7b"), std::invalid_argument);
}

}  // namespace
}  // namespace radix::testing

namespace radix::testing {
namespace {

// Random weights of each preset's family options (shrunk): they load and run in every mode, and
// the modes agree (the benchmarks' random:<name> models use exactly this path, on the device).
TEST(RandomShapes, ShrunkPresetsRunInEveryModeAndAgree) {
  for (const char* name : {"qwen3-0.6b", "mistral-7b", "qwen2-7b", "llama3-8b", "gemma2-9b"}) {
    ModelInfo info;
    info.spec = std::string("random:") + name + " (shrunk)";
    info.config = decoder_preset(name);
    DecoderConfig& c = info.config;
    c.hidden_size = 64, c.intermediate_size = 96, c.num_hidden_layers = 2, c.head_dim = 16;
    c.num_attention_heads = 4, c.num_key_value_heads = 2, c.vocab_size = 500;
    c.sliding_window = c.sliding_window > 0 ? 3 : 0;
    c.sliding_layers.resize(2);
    LoadOptions options;
    options.backend.threads = 2;
    const auto model = Model::create(info, RandomWeights(info.config, 7), options);
    RaggedBatch batch;
    batch.add_sequence(std::vector<int32_t>{1, 2, 3, 4, 5, 6, 7, 8});
    batch.add_sequence(std::vector<int32_t>{1, 2, 3, 4, 9});
    batch.add_sequence(std::vector<int32_t>{1, 2});
    ForwardOptions fo;
    fo.mode = AttentionMode::kOff;
    const ForwardResult off = model->forward(batch, fo);
    for (const float v : off.values) ASSERT_TRUE(std::isfinite(v)) << name;
    for (const AttentionMode mode : {AttentionMode::kScatter, AttentionMode::kTree}) {
      fo.mode = mode;
      const ForwardResult r = model->forward(batch, fo);
      EXPECT_LE(rel_err(r.values.data(), off.values.data(), off.values.size()), 1e-5) << name;
    }
  }
}

}  // namespace
}  // namespace radix::testing

namespace radix::testing {
namespace {

// A sequence-classification conversion of a non-Qwen3 family (vLLM's mxbai-rerank-v2 "-seq-cls"
// style: Qwen2ForSequenceClassification with score.weight) is served by the classifier head.
TEST(RealFolders, Qwen2SequenceClassificationUsesTheClassifierHead) {
  json c = {{"architectures", {"Qwen2ForSequenceClassification"}},
            {"hidden_act", "silu"},
            {"id2label", {{"0", "LABEL_0"}}},
            {"label2id", {{"LABEL_0", 0}}},
            {"max_position_embeddings", 32768},
            {"model_type", "qwen2"},
            {"rms_norm_eps", 1e-06},
            {"rope_theta", 1000000.0},
            {"tie_word_embeddings", true},
            {"use_sliding_window", false}};
  shrink(c);
  const fs::path dir = temp_folder("real_seq_cls");
  write_text(dir / "config.json", c.dump(2));
  const DecoderConfig config = parse_decoder_config(c);
  ASSERT_EQ(config.num_labels, 1);
  std::map<std::string, RawTensor> tensors;
  for (const ExpectedTensor& t : expected_decoder_tensors(config)) {
    if (t.name == "lm_head.weight") continue;
    const auto v = formula_tensor(t.name, t.shape[0], t.shape[1]);
    const bool vector = t.shape[0] == 1 && t.name != "score.weight";
    tensors[(t.name == "score.weight" ? "" : "model.") + t.name] =
        f32_tensor(v, vector ? std::vector<int64_t>{t.shape[1]}
                             : std::vector<int64_t>{t.shape[0], t.shape[1]});
  }
  write_safetensors((dir / "model.safetensors").string(), tensors);
  const auto model = load(dir);
  EXPECT_EQ(model->info().head, HeadKind::kClassifier);
  RaggedBatch batch;
  batch.add_sequence(std::vector<int32_t>{3, 4, 5});
  const ForwardResult r = model->forward(batch);
  ASSERT_EQ(r.dim, 1);
  EXPECT_TRUE(std::isfinite(r.values[0]));
}

}  // namespace
}  // namespace radix::testing
