// The run that the text commands (embed, rerank) share: build a runtime (service/runtime.h) for
// the model on one device, hand the request to the library core, print the command's JSON on
// stdout and the stage timings on stderr. The requests' semantics (prompts, the reranker
// template, truncation, normalisation) are the core's, as for the server and Python.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "model_options.h"
#include "service/runtime.h"

namespace radix::cli {

struct TextCommand {
  const char* name = "";  // names the timings line: "radix embed: load ..."
  std::string head;       // "": the folder's default head
  service::ServiceOptions service;
  // Runs the command's request on the core and fills its own fields of the JSON (which already
  // holds "model" and "mode").
  std::function<void(service::Service& core, nlohmann::json& out)> run;
};

void run_text_command(const ModelArgs& args, const TextCommand& command);

// --tokenizer and --dtype, for the commands that run text through the core.
void add_tokenizer_option(CLI::App& cmd, ModelArgs& args);

}  // namespace radix::cli
