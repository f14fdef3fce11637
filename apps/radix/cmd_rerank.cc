#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "model/prompts.h"
#include "model_options.h"

namespace radix::cli {
namespace {

struct RerankArgs {
  ModelArgs model;
  std::string query;
  std::string instruction{kDefaultRerankInstruction};
  std::vector<std::string> documents;
};

void run_rerank(const RerankArgs& args) {
  require_tokenizer(args.model.model);
  auto t0 = std::chrono::steady_clock::now();
  LoadOptions load = load_options(args.model);
  load.head = HeadKind::kReranker;
  std::unique_ptr<Model> model = Model::load(args.model.model, load);
  const ModelInfo& info = model->info();
  const Tokenizer tokenizer = load_tokenizer(info);
  StageTimes times;
  times.load_ms = ms_since(t0);

  t0 = std::chrono::steady_clock::now();
  RaggedBatch batch;
  for (size_t i = 0; i < args.documents.size(); ++i) {
    // The template carries its own special tokens; the reranker adds none of its own.
    const std::string prompt =
        format_rerank_prompt(args.instruction, args.query, args.documents[i]);
    batch.add_sequence(
        encode_input(tokenizer, prompt, false, info.max_positions(), args.model.truncate, i));
  }
  times.tokenize_ms = ms_since(t0);

  ForwardOptions options;
  options.mode = parse_attention_mode(args.model.mode);
  options.head = HeadKind::kReranker;
  t0 = std::chrono::steady_clock::now();
  const ForwardResult r = model->forward(batch, options);
  times.forward_ms = ms_since(t0);

  nlohmann::json out;
  out["model"] = info.spec;
  out["mode"] = args.model.mode;
  out["query"] = args.query;
  out["results"] = nlohmann::json::array();
  for (int32_t s = 0; s < r.num_sequences; ++s) {
    out["results"].push_back({{"index", s},
                              {"score", r.values[s]},
                              {"yes_logit", r.yes_no_logits[2 * s]},
                              {"no_logit", r.yes_no_logits[2 * s + 1]}});
  }
  std::printf("%s\n", out.dump().c_str());
  print_stage_times("rerank", times, r, args.model.mode, *model);
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
