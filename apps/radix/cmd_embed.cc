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

struct EmbedArgs {
  ModelArgs model;
  std::vector<std::string> texts;
  std::string query_instruction;
  bool query = false;
  bool no_normalize = false;
  int dimensions = 0;
};

void run_embed(const EmbedArgs& args) {
  require_tokenizer(args.model.model);
  auto t0 = std::chrono::steady_clock::now();
  std::unique_ptr<Model> model = Model::load(args.model.model, load_options(args.model));
  const ModelInfo& info = model->info();
  const Tokenizer tokenizer = load_tokenizer(info);
  StageTimes times;
  times.load_ms = ms_since(t0);

  t0 = std::chrono::steady_clock::now();
  RaggedBatch batch;
  for (size_t i = 0; i < args.texts.size(); ++i) {
    const std::string& text = args.texts[i];
    std::string input = text;
    if (!args.query_instruction.empty()) {
      input = format_embedding_query(args.query_instruction, text);
    } else if (args.query) {
      const auto it = info.prompts.find("query");
      if (it == info.prompts.end()) {
        throw std::runtime_error(
            "--query: the model has no \"query\" prompt; pass "
            "--query-instruction");
      }
      input = it->second + text;
    }
    batch.add_sequence(
        encode_input(tokenizer, input, true, info.max_positions(), args.model.truncate, i));
  }
  times.tokenize_ms = ms_since(t0);

  ForwardOptions options;
  options.mode = parse_attention_mode(args.model.mode);
  options.head = HeadKind::kEmbedding;
  options.normalize = !args.no_normalize;
  options.dimensions = args.dimensions;
  t0 = std::chrono::steady_clock::now();
  const ForwardResult r = model->forward(batch, options);
  times.forward_ms = ms_since(t0);

  nlohmann::json out;
  out["model"] = info.spec;
  out["mode"] = args.model.mode;
  out["dim"] = r.dim;
  out["embeddings"] = nlohmann::json::array();
  for (int32_t s = 0; s < r.num_sequences; ++s) {
    out["embeddings"].push_back(
        std::vector<float>(r.values.begin() + s * r.dim, r.values.begin() + (s + 1) * r.dim));
  }
  std::printf("%s\n", out.dump().c_str());
  print_stage_times("embed", times, r, args.model.mode, *model);
}

}  // namespace

void add_embed(CLI::App& app) {
  auto args = std::make_shared<EmbedArgs>();
  CLI::App* cmd =
      app.add_subcommand("embed", "Embed texts; prints {\"embeddings\": [...]} as JSON");
  add_model_options(*cmd, args->model);
  cmd->add_option("texts", args->texts, "Texts to embed")->required();
  cmd->add_option("--query-instruction", args->query_instruction,
                  "Embed the texts as queries: \"Instruct: {instruction}\\nQuery:{text}\"");
  cmd->add_flag("--query", args->query, "Embed the texts with the model's \"query\" prompt");
  cmd->add_flag("--no-normalize", args->no_normalize, "Do not L2-normalise the embeddings");
  cmd->add_option("--dimensions", args->dimensions,
                  "Keep the first N dimensions (Matryoshka), then normalise")
      ->check(CLI::PositiveNumber);
  cmd->callback([args] { run_embed(*args); });
}

}  // namespace radix::cli
