#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "corpus_command.h"
#include "model/prompts.h"
#include "model_options.h"
#include "server/json_floats.h"
#include "text_command.h"

namespace radix::cli {
namespace {

struct RerankArgs {
  ModelArgs model;
  std::string query;
  std::string instruction;  // "": the template's default
  std::vector<std::string> documents;
  CorpusArgs corpus;
};

// `radix rerank --input`: query/document pairs from a .jsonl file (an item's own "instruction"
// wins over --instruction).
void run_rerank_corpus(const RerankArgs& args) {
  CorpusCommand command;
  command.name = "rerank";
  command.head = "reranker";
  command.options.task = service::CorpusTask::kRerank;
  if (!args.instruction.empty()) command.options.instruction = args.instruction;
  command.fingerprint = "instruction '" + args.instruction + "'";
  run_corpus_command(args.model, args.corpus, std::move(command));
}

void run_rerank(const RerankArgs& args) {
  if (!args.corpus.input.empty()) return run_rerank_corpus(args);
  if (args.query.empty() || args.documents.empty()) {
    throw std::invalid_argument("give --query and documents, or --input FILE");
  }
  TextCommand command;
  command.name = "rerank";
  command.head = "reranker";
  command.run = [&args](service::Service& core, nlohmann::json& out) {
    // The core fills the rerank template and tokenizes its segments one by one.
    service::RerankRequest r;
    r.query = args.query;
    r.documents = args.documents;
    if (!args.instruction.empty()) r.instruction = args.instruction;
    const service::RerankResult result = core.rerank(r);
    out["query"] = args.query;
    out["results"] = nlohmann::json::array();
    for (size_t i = 0; i < result.scores.size(); ++i) {
      out["results"].push_back({{"index", i},
                                {"score", server::json_number(result.scores[i].score)},
                                {"logit", server::json_number(result.scores[i].logit)}});
    }
  };
  run_text_command(args.model, command);
}

}  // namespace

void add_rerank(CLI::App& app) {
  auto args = std::make_shared<RerankArgs>();
  CLI::App* cmd = app.add_subcommand(
      "rerank", "Score documents against a query (an LLM reranker); prints JSON");
  add_model_options(*cmd, args->model);
  add_tokenizer_option(*cmd, args->model);
  CLI::Option* input = add_corpus_options(*cmd, args->corpus);
  cmd->add_option("--query", args->query, "The query")->excludes(input);
  cmd->add_option("--instruction", args->instruction,
                  "The task instruction, for a template with {instruction} (default: the "
                  "template's; Qwen3-Reranker: \"" +
                      std::string(kDefaultRerankInstruction) + "\")");
  cmd->add_option("--rerank-template", args->model.rerank_template,
                  "The prompt template: a JSON file or inline JSON {\"segments\": [...], "
                  "\"default_instruction\"?: ...} (default: the folder's "
                  "radix_rerank_template.json, else Qwen3-Reranker's for Qwen3; docs/models.md)");
  cmd->add_option("documents", args->documents, "Documents to score (or --input)")->excludes(input);
  cmd->callback([args] { run_rerank(*args); });
}

}  // namespace radix::cli
