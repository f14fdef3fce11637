// A model folder without tokenizer.json: build the equivalent tokenizer.json document from
// vocab.json + merges.txt + tokenizer_config.json, the way transformers converts a Qwen2 (or
// GPT-2) slow tokenizer to a fast one.
#pragma once

#include <string>

#include "tokenizer/json_access.h"

namespace radix::tokenizer_detail {

json tokenizer_json_from_folder(const std::string& dir);

}  // namespace radix::tokenizer_detail
