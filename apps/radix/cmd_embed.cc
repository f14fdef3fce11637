#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "commands.h"
#include "model/prompts.h"
#include "model_options.h"
#include "text_command.h"

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
  TextCommand command;
  command.name = "embed";
  command.forward.head = HeadKind::kEmbedding;
  command.forward.normalize = !args.no_normalize;
  command.forward.dimensions = args.dimensions;
  command.num_inputs = args.texts.size();
  command.input_text = [&args](const ModelInfo& info, size_t i) {
    const std::string& text = args.texts[i];
    if (!args.query_instruction.empty()) {
      return format_embedding_query(args.query_instruction, text);
    }
    if (args.query) {
      const auto it = info.prompts.find("query");
      if (it == info.prompts.end()) {
        throw std::runtime_error(
            "--query: the model has no \"query\" prompt; pass "
            "--query-instruction");
      }
      return it->second + text;
    }
    return text;
  };
  command.write_result = [](const ForwardResult& r, nlohmann::json& out) {
    out["dim"] = r.dim;
    out["embeddings"] = nlohmann::json::array();
    for (int32_t s = 0; s < r.num_sequences; ++s) {
      out["embeddings"].push_back(
          std::vector<float>(r.values.begin() + s * r.dim, r.values.begin() + (s + 1) * r.dim));
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
