// The built-in `demo` model: a tiny Qwen3 with deterministic random weights and a byte-level
// tokenizer defined here (256 byte tokens, no merges, Qwen's special tokens), so radix works on a
// fresh machine with nothing downloaded. Its vocabulary (10240 rows) includes the reranker's
// yes/no ids 9693 and 2152.
#pragma once

#include <string>

#include "model/model.h"

namespace radix {

inline constexpr uint64_t kDemoSeed = 20240601;

ModelInfo demo_model_info();
// tokenizer.json text: NFC, Qwen's split regex, byte-level, BPE with the 256 byte tokens and no
// merges, added tokens <|endoftext|> (256), <|im_start|> (257), <|im_end|> (258), and a template
// appending <|endoftext|> (as Qwen3-Embedding's tokenizer does).
std::string demo_tokenizer_json();

}  // namespace radix
