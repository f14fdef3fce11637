// Options shared by the commands that run a model (embed, rerank, bench model; serve reads
// --reranker-tokens through reranker_token_ids too).
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/model.h"
#include "service/runtime.h"
#include "service/tokenizer_loader.h"

namespace radix::cli {

struct ModelArgs {
  std::string model = "demo";
  std::string device = "cpu";
  std::string mode = "tree";
  int threads = 0;
  bool truncate = false;
  std::string tokenizer;        // text commands: "" (the model's own), demo, a file or a folder
  std::string pooling;          // override 1_Pooling: lasttoken or mean
  std::string reranker_tokens;  // "yes,no" or "Yes": words (or ids) whose logits score
  std::string rerank_template;  // rerank: a JSON file or inline JSON (model/rerank_template.h)
  std::string dtype;           // "": the device's; bench model: bf16 (CUDA's default) or fp8 (CUDA)
  bool enforce_eager = false;  // CUDA: no recorded forwards
};

// vLLM's flag: never replay forwards as CUDA graphs.
inline void add_enforce_eager_option(CLI::App& cmd, bool& enforce_eager) {
  cmd.add_flag("--enforce-eager", enforce_eager,
               "CUDA: queue every forward op by op, never as a recorded CUDA graph (by default a "
               "small batch replays its bucket's graph; docs/cuda.md)");
}

inline void add_model_options(CLI::App& cmd, ModelArgs& args, bool with_mode = true) {
  cmd.add_option(
         "--model", args.model,
         "A Hugging Face model folder (Qwen3, Mistral, Qwen2, Llama, Gemma, Gemma2), demo (built "
         "in), or random:qwen3-0.6b|4b|8b, random:mistral-7b, qwen2-7b, llama3-8b, gemma2-9b")
      ->capture_default_str();
  cmd.add_option("--device", args.device, "cpu, or cuda / cuda:N in a CUDA build")
      ->capture_default_str();
  cmd.add_option("--threads", args.threads, "CPU threads (0: all)")->check(CLI::NonNegativeNumber);
  cmd.add_option("--pooling", args.pooling,
                 "Embedding pooling, overriding 1_Pooling/config.json: lasttoken or mean")
      ->check(CLI::IsMember({"lasttoken", "last_token", "mean"}));
  cmd.add_option("--reranker-tokens", args.reranker_tokens,
                 "The reranker's answer tokens, as words of the model's vocabulary or ids: "
                 "yes,no scores sigmoid(yes - no); one token (e.g. Yes for "
                 "bge-reranker-v2-gemma) scores sigmoid(logit). Qwen3 default: yes,no");
  cmd.add_flag("--truncate", args.truncate,
               "Cut inputs longer than the model's maximum positions (default: refuse them)");
  add_enforce_eager_option(cmd, args.enforce_eager);
  if (with_mode) {
    cmd.add_option("--mode", args.mode, "Attention mode: off, scatter or tree")
        ->check(CLI::IsMember({"off", "scatter", "tree"}))
        ->capture_default_str();
  }
}

// --reranker-tokens: each comma-separated item is a token id, or a word the tokenizer (--tokenizer,
// else the model folder's) encodes to exactly one token (without special tokens).
inline std::vector<int32_t> reranker_token_ids(const ModelArgs& args) {
  std::vector<int32_t> ids;
  if (args.reranker_tokens.empty()) return ids;
  std::optional<Tokenizer> tokenizer;
  size_t begin = 0;
  while (begin <= args.reranker_tokens.size()) {
    size_t end = args.reranker_tokens.find(',', begin);
    if (end == std::string::npos) end = args.reranker_tokens.size();
    const std::string item = args.reranker_tokens.substr(begin, end - begin);
    begin = end + 1;
    if (item.empty()) throw std::runtime_error("--reranker-tokens: an empty token");
    if (item.find_first_not_of("0123456789") == std::string::npos) {
      ids.push_back(std::stoi(item));
      continue;
    }
    if (!tokenizer)
      tokenizer = load_tokenizer(args.tokenizer.empty() ? args.model : args.tokenizer);
    const std::vector<int32_t> enc = tokenizer->encode(item, false).ids;
    if (enc.size() != 1) {
      throw std::runtime_error("--reranker-tokens: '" + item + "' is " +
                               std::to_string(enc.size()) +
                               " tokens in this vocabulary, not one (pass its id instead)");
    }
    ids.push_back(enc[0]);
  }
  return ids;
}

inline LoadOptions load_options(const ModelArgs& args) {
  LoadOptions options;
  options.backend.device = args.device;
  options.backend.threads = args.threads;
  if ((args.dtype == "bf16" || args.dtype == "bfloat16") && args.device == "cpu") {
    throw std::invalid_argument("--dtype bf16: the cpu backend runs float32 weights");
  }
  options.backend.fp8 = args.dtype == "fp8";
  options.backend.cuda_graphs = !args.enforce_eager;
  options.pooling = args.pooling;
  options.reranker_tokens = reranker_token_ids(args);
  return options;
}

// The runtime options the model flags give (the CLI's text and corpus commands); each command
// adds its batching and service settings.
inline service::RuntimeOptions runtime_options(const ModelArgs& args, const std::string& head) {
  service::RuntimeOptions options;
  options.model = args.model;
  options.tokenizer = args.tokenizer;
  options.devices = {args.device};
  options.threads = args.threads;
  options.cuda_graphs = !args.enforce_eager;
  options.head = head;
  options.pooling = args.pooling;
  options.reranker_tokens = reranker_token_ids(args);
  options.rerank_template = args.rerank_template;
  options.dtype = args.dtype;
  options.attention_mode = args.mode;
  return options;
}

inline double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace radix::cli
