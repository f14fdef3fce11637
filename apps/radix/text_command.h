// The run that the text commands (embed, rerank) share: load the model and its tokenizer, encode
// every input into one batch, run the forward, print the command's JSON on stdout and the stage
// timings on stderr.
#pragma once

#include <cstddef>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "model/model.h"
#include "model_options.h"

namespace radix::cli {

struct TextCommand {
  const char* name = "";              // names the timings line: "radix embed: load ..."
  std::optional<HeadKind> load_head;  // unset: the folder's default head
  ForwardOptions forward;             // its mode is set from --mode
  bool add_special_tokens = true;     // whether the tokenizer adds its post-processor's tokens
  size_t num_inputs = 0;
  // The text of input i; the model's info is loaded by then (prompts, for instance).
  std::function<std::string(const ModelInfo& info, size_t i)> input_text;
  // The command's own fields of the JSON, which already holds "model" and "mode".
  std::function<void(const ForwardResult& r, nlohmann::json& out)> write_result;
};

void run_text_command(const ModelArgs& args, const TextCommand& command);

}  // namespace radix::cli
