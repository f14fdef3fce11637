// Qwen2 (Qwen2Model / Qwen2ForCausalLM): the Llama layer with q/k/v biases, an optional sliding
// window (use_sliding_window: layers from max_window_layers on). mxbai-rerank-v2 (causal) and
// gte-Qwen2-*-instruct, which is bidirectional: is_causal false in its config, or recognised by
// its remote code (auto_map naming gte-Qwen2).
#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "model/family.h"

namespace radix {
namespace {

using namespace config_json;

bool mentions_gte_qwen2(const nlohmann::json& j) {
  std::string text;
  if (j.contains("auto_map")) text += j["auto_map"].dump();
  text += get_string(j, "_name_or_path", "");
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return text.find("gte-qwen2") != std::string::npos;
}

void parse(const nlohmann::json& j, DecoderConfig& c) {
  c.tie_word_embeddings = false;
  parse_common(j, c);
  c.qkv_bias = true;
  const std::string act = get_string(j, "hidden_act", "silu");
  if (act != "silu") fail("hidden_act \"" + act + "\" is not supported (only silu)");
  if (get_bool(j, "use_sliding_window", false)) {
    c.sliding_window = get_int(j, "sliding_window");
    const int32_t first = get_int(j, "max_window_layers", false, 0);
    parse_layer_types(j, c, [&](int32_t l) { return l >= first; });
  }
  if (mentions_gte_qwen2(j)) c.causal = false;
}

constexpr const char* kPresets[] = {"qwen2-7b", nullptr};

// Qwen2-7B (gte-Qwen2-7B-instruct's shape), run causal here so that dedup applies.
DecoderConfig preset(const std::string&) {
  DecoderConfig c;
  c.hidden_size = 3584, c.intermediate_size = 18944, c.num_hidden_layers = 28;
  c.num_attention_heads = 28, c.num_key_value_heads = 4, c.head_dim = 128;
  c.vocab_size = 152064, c.max_position_embeddings = 32768, c.rms_norm_eps = 1e-6;
  c.rope_theta = 1e6, c.tie_word_embeddings = false, c.qkv_bias = true;
  c.architectures = {"Qwen2ForCausalLM"};
  return c;
}

}  // namespace

extern const Family kQwen2Family{"qwen2", "qwen2", parse, &kPreNormRopeLayer, kPresets, preset};

}  // namespace radix
