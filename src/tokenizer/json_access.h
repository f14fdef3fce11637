// Reading tokenizer.json fields with errors that say which field was wrong and why.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "tokenizer/tokenizer.h"

namespace radix::tokenizer_detail {

using nlohmann::json;

[[noreturn]] inline void json_fail(const std::string& where, const std::string& what) {
  throw TokenizerError("tokenizer.json: " + where + ": " + what);
}

inline const json& json_require(const json& obj, const char* key, const std::string& where) {
  if (!obj.is_object()) json_fail(where, std::string("expected an object, got ") + obj.type_name());
  auto it = obj.find(key);
  if (it == obj.end()) json_fail(where, std::string("missing field \"") + key + "\"");
  return *it;
}

inline std::string json_string(const json& j, const std::string& where) {
  if (!j.is_string()) json_fail(where, std::string("expected a string, got ") + j.type_name());
  return j.get<std::string>();
}

inline std::string json_string_field(const json& obj, const char* key, const std::string& where) {
  return json_string(json_require(obj, key, where), where + "." + key);
}

// Optional boolean: absent or null gives `fallback`.
inline bool json_bool_field(const json& obj, const char* key, bool fallback,
                            const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) {
    json_fail(where + "." + key, std::string("expected a boolean, got ") + it->type_name());
  }
  return it->get<bool>();
}

inline int64_t json_int(const json& j, const std::string& where) {
  if (!j.is_number_integer()) {
    json_fail(where, std::string("expected an integer, got ") + j.type_name());
  }
  return j.get<int64_t>();
}

inline int32_t json_token_id(const json& j, const std::string& where) {
  const int64_t v = json_int(j, where);
  if (v < 0 || v > INT32_MAX) json_fail(where, "token id " + std::to_string(v) + " out of range");
  return static_cast<int32_t>(v);
}

}  // namespace radix::tokenizer_detail
