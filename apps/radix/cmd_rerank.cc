#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "model/prompts.h"
#include "model_options.h"
#include "text_command.h"

namespace radix::cli {
namespace {

struct RerankArgs {
  ModelArgs model;
  std::string query;
  std::string instruction{kDefaultRerankInstruction};
  std::vector<std::string> documents;
};

void run_rerank(const RerankArgs& args) {
  TextCommand command;
  command.name = "rerank";
  command.load_head = HeadKind::kReranker;
  command.forward.head = HeadKind::kReranker;
  // The template carries its own special tokens; the reranker adds none of its own.
  command.add_special_tokens = false;
  command.num_inputs = args.documents.size();
  command.input_text = [&args](const ModelInfo&, size_t i) {
    return format_rerank_prompt(args.instruction, args.query, args.documents[i]);
  };
  command.write_result = [&args](const ForwardResult& r, nlohmann::json& out) {
    out["query"] = args.query;
    out["results"] = nlohmann::json::array();
    for (int32_t s = 0; s < r.num_sequences; ++s) {
      out["results"].push_back({{"index", s},
                                {"score", r.values[s]},
                                {"yes_logit", r.yes_no_logits[2 * s]},
                                {"no_logit", r.yes_no_logits[2 * s + 1]}});
    }
  };
  run_text_command(args.model, command);
}

}  // namespace

void add_rerank(CLI::App& app) {
  auto args = std::make_shared<RerankArgs>();
  CLI::App* cmd =
      app.add_subcommand("rerank", "Score documents against a query (Qwen3-Reranker); prints JSON");
  add_model_options(*cmd, args->model);
  cmd->add_option("--query", args->query, "The query")->required();
  cmd->add_option("--instruction", args->instruction, "The task instruction")
      ->capture_default_str();
  cmd->add_option("documents", args->documents, "Documents to score")->required();
  cmd->callback([args] { run_rerank(*args); });
}

}  // namespace radix::cli
