// A decoder family: how its config.json reads, its real shapes for random:<name>, and its layer
// function. One file per family in src/model/families/; the list lives in family_registry.cc.
// Adding a family = one new file + one line in the registry.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "model/decoder_config.h"
#include "model/decoder_layer.h"

namespace radix {

struct Family {
  const char* name;        // "mistral": DecoderConfig::family, logs, /info
  const char* model_type;  // config.json model_type
  // Fills `c` from config.json: defaults, config_json::parse_common, then the family's fields.
  void (*parse)(const nlohmann::json& j, DecoderConfig& c);
  const FamilyLayer* layer;
  const char* const* presets;  // nullptr-terminated names for random:<name>, or nullptr
  DecoderConfig (*preset)(const std::string& name);
};

// Every family, in registry order.
const std::vector<const Family*>& families();
// Throws std::runtime_error("config.json: model_type ... (supported: ...)") for an unknown type.
const Family& family_for_model_type(const std::string& model_type);
const Family& family_named(const std::string& name);

}  // namespace radix
