// radix's one tokenizer loader, for every front end (serve, embed, rerank, tokenize, Python).
#pragma once

#include <string>

#include "tokenizer/tokenizer.h"

namespace radix {

struct ModelInfo;

// `source` names the tokenizer: "demo" (the demo model's), a tokenizer.json file, or a folder
// holding one (or vocab.json + merges.txt). Empty: the model's own (inline JSON for demo, the
// folder's tokenizer.json). Throws std::runtime_error naming what is missing: a random:* model
// has no tokenizer of its own.
Tokenizer load_tokenizer(const std::string& source, const ModelInfo* model = nullptr);

}  // namespace radix
