#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "corpus_command.h"
#include "model_options.h"
#include "server/json_floats.h"
#include "text_command.h"

namespace radix::cli {
namespace {

struct EmbedArgs {
  ModelArgs model;
  std::vector<std::string> texts;
  std::string query_instruction;
  std::string prompt_name;
  std::string default_prompt_name;
  std::string default_prompt;
  bool query = false;
  bool no_normalize = false;
  int dimensions = 0;
  CorpusArgs corpus;
};

// `radix embed --input`: the corpus pipeline with the same request options.
void run_embed_corpus(const EmbedArgs& args, service::ServiceOptions service_options) {
  CorpusCommand command;
  command.name = "embed";
  command.head = "embedding";
  command.service = std::move(service_options);
  service::CorpusOptions& o = command.options;
  o.task = service::CorpusTask::kEmbed;
  if (!args.query_instruction.empty()) o.instruction = args.query_instruction;
  if (args.query) o.prompt_name = "query";
  if (!args.prompt_name.empty()) o.prompt_name = args.prompt_name;
  o.normalize = !args.no_normalize;
  if (args.dimensions > 0) o.dimensions = args.dimensions;
  command.fingerprint =
      "instruction '" + args.query_instruction + "' prompt '" + o.prompt_name.value_or("") +
      "' default prompt '" + args.default_prompt_name + "|" + args.default_prompt + "' normalize " +
      std::to_string(o.normalize) + " dimensions " + std::to_string(args.dimensions);
  run_corpus_command(args.model, args.corpus, std::move(command));
}

void run_embed(const EmbedArgs& args) {
  if (args.query && !args.prompt_name.empty()) {
    throw std::invalid_argument("--query is --prompt-name query: give one of them");
  }
  TextCommand command;
  command.name = "embed";
  command.head = "embedding";
  if (!args.default_prompt_name.empty()) {
    command.service.default_prompt_name = args.default_prompt_name;
  }
  if (!args.default_prompt.empty()) command.service.default_prompt = args.default_prompt;
  if (!args.corpus.input.empty()) return run_embed_corpus(args, command.service);
  if (args.texts.empty()) throw std::invalid_argument("give texts to embed, or --input FILE");
  command.run = [&args](service::Service& core, nlohmann::json& out) {
    service::EmbedRequest r;
    for (const std::string& text : args.texts) r.inputs.push_back(service::Input::of_text(text));
    if (!args.query_instruction.empty()) r.instruction = args.query_instruction;
    if (args.query) r.prompt_name = "query";
    if (!args.prompt_name.empty()) r.prompt_name = args.prompt_name;
    r.normalize = !args.no_normalize;
    if (args.dimensions > 0) r.dimensions = args.dimensions;
    const service::EmbedResult result = core.embed(r);
    out["dim"] = result.embeddings.empty() ? 0 : result.embeddings[0].values.size();
    out["embeddings"] = nlohmann::json::array();
    for (const service::Embedding& e : result.embeddings) {
      nlohmann::json row = nlohmann::json::array();
      for (const float v : e.values) row.push_back(server::json_number(v));  // as radix serve
      out["embeddings"].push_back(std::move(row));
    }
  };
  run_text_command(args.model, command);
}

}  // namespace

void add_embed(CLI::App& app) {
  auto args = std::make_shared<EmbedArgs>();
  CLI::App* cmd =
      app.add_subcommand("embed", "Embed texts; prints {\"embeddings\": [...]} as JSON");
  add_model_options(*cmd, args->model);
  add_tokenizer_option(*cmd, args->model);
  CLI::Option* input = add_corpus_options(*cmd, args->corpus);
  cmd->add_option("texts", args->texts, "Texts to embed (or --input)")->excludes(input);
  cmd->add_option("--query-instruction", args->query_instruction,
                  "Embed the texts as queries: \"Instruct: {instruction}\\nQuery:{text}\"");
  cmd->add_flag("--query", args->query, "Embed the texts with the model's \"query\" prompt");
  cmd->add_option("--prompt-name", args->prompt_name,
                  "Embed the texts with this prompt of the model (config_sentence_transformers)");
  auto* name = cmd->add_option(
      "--default-prompt-name", args->default_prompt_name,
      "The prompt used when none is named, instead of the model's default_prompt_name");
  cmd->add_option("--default-prompt", args->default_prompt,
                  "Text put before inputs when no prompt is named (instead of a named prompt)")
      ->excludes(name);
  cmd->add_flag("--no-normalize", args->no_normalize, "Do not L2-normalise the embeddings");
  cmd->add_option("--dimensions", args->dimensions,
                  "Keep the first N dimensions (Matryoshka), then normalise")
      ->check(CLI::PositiveNumber);
  cmd->callback([args] { run_embed(*args); });
}

}  // namespace radix::cli
