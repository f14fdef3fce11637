// Mistral (MistralModel / MistralForCausalLM): the Llama layer without biases, with a sliding
// window on every layer when sliding_window is set. e5-mistral-7b-instruct, SFR-Embedding-Mistral,
// Linq-Embed-Mistral.
#include <nlohmann/json.hpp>

#include "model/family.h"

namespace radix {
namespace {

using namespace config_json;

void parse(const nlohmann::json& j, DecoderConfig& c) {
  c.tie_word_embeddings = false;
  c.rope_theta = 10000;
  c.rms_norm_eps = 1e-6;
  parse_common(j, c);
  const std::string act = get_string(j, "hidden_act", "silu");
  if (act != "silu") fail("hidden_act \"" + act + "\" is not supported (only silu)");
  c.sliding_window = get_int(j, "sliding_window", false, 0);
  parse_layer_types(j, c, [](int32_t) { return true; });
}

constexpr const char* kPresets[] = {"mistral-7b", nullptr};

// Mistral-7B as e5-mistral-7b-instruct ships it.
DecoderConfig preset(const std::string&) {
  DecoderConfig c;
  c.hidden_size = 4096, c.intermediate_size = 14336, c.num_hidden_layers = 32;
  c.num_attention_heads = 32, c.num_key_value_heads = 8, c.head_dim = 128;
  c.vocab_size = 32000, c.max_position_embeddings = 32768, c.rms_norm_eps = 1e-5;
  c.rope_theta = 10000, c.tie_word_embeddings = false;
  c.sliding_window = 4096;
  c.sliding_layers.assign(c.num_hidden_layers, true);
  c.architectures = {"MistralModel"};
  return c;
}

}  // namespace

extern const Family kMistralFamily{"mistral",          "mistral", parse,
                                   &kPreNormRopeLayer, kPresets,  preset};

}  // namespace radix
