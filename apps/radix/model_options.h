// Options shared by the commands that run a model (embed, rerank, bench model).
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace radix::cli {

struct ModelArgs {
  std::string model = "demo";
  std::string device = "cpu";
  std::string mode = "tree";
  int threads = 0;
  bool truncate = false;
  std::string pooling;          // override 1_Pooling: lasttoken or mean
  std::string reranker_tokens;  // "yes,no" or "Yes": words (or ids) whose logits score
};

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
      ->check(CLI::IsMember({"lasttoken", "mean"}));
  cmd.add_option("--reranker-tokens", args.reranker_tokens,
                 "The reranker's answer tokens, as words of the model's vocabulary or ids: "
                 "yes,no scores sigmoid(yes - no); one token (e.g. Yes for "
                 "bge-reranker-v2-gemma) scores sigmoid(logit). Qwen3 default: yes,no");
  cmd.add_flag("--truncate", args.truncate,
               "Cut inputs longer than the model's maximum positions (default: refuse them)");
  if (with_mode) {
    cmd.add_option("--mode", args.mode, "Attention mode: off, scatter or tree")
        ->check(CLI::IsMember({"off", "scatter", "tree"}))
        ->capture_default_str();
  }
}

// --reranker-tokens: each comma-separated item is a token id, or a word the folder's tokenizer
// encodes to exactly one token (without special tokens).
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
    if (!tokenizer) tokenizer = Tokenizer::from_directory(args.model);
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
  options.pooling = args.pooling;
  options.reranker_tokens = reranker_token_ids(args);
  return options;
}

inline double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// The stage timings of a text command, on stderr (stdout holds the JSON alone).
struct StageTimes {
  double load_ms = 0, tokenize_ms = 0, forward_ms = 0;
};
inline void print_stage_times(const char* command, const StageTimes& t, const ForwardResult& r,
                              const std::string& mode, Model& model) {
  std::fprintf(stderr,
               "radix %s: load %.1f ms, tokenize %.2f ms, forward %.2f ms (%lld tokens, %lld rows, "
               "mode %s, %s)\n",
               command, t.load_ms, t.tokenize_ms, t.forward_ms,
               static_cast<long long>(r.num_tokens), static_cast<long long>(r.num_rows),
               mode.c_str(), model.backend().name().c_str());
}

// Text commands need a tokenizer, which random models lack: say so before loading any weights.
inline void require_tokenizer(const std::string& spec) {
  if (spec.rfind("random:", 0) == 0) {
    throw std::runtime_error("model " + spec +
                             " has random weights and no tokenizer; use demo or a model folder");
  }
}

// Token ids of input `index`: cut to the model's maximum positions when `truncate` is set (the
// post-processor's tokens are kept), otherwise an over-long input is an error, never cut silently.
inline std::vector<int32_t> encode_input(const Tokenizer& tokenizer, const std::string& text,
                                         bool add_special_tokens, int64_t max_positions,
                                         bool truncate, size_t index) {
  const Truncation truncation{truncate ? static_cast<size_t>(max_positions) : 0};
  std::vector<int32_t> ids = tokenizer.encode(text, add_special_tokens, truncation).ids;
  if (static_cast<int64_t>(ids.size()) > max_positions) {
    throw std::runtime_error("input " + std::to_string(index) + " has " +
                             std::to_string(ids.size()) + " tokens, more than the model's " +
                             std::to_string(max_positions) + "; pass --truncate to cut it");
  }
  return ids;
}

// The model's tokenizer: inline JSON (demo), its tokenizer.json, or vocab.json + merges.txt.
inline Tokenizer load_tokenizer(const ModelInfo& info) {
  if (!info.tokenizer_json.empty()) return Tokenizer::from_json(info.tokenizer_json);
  if (!info.tokenizer_path.empty()) return Tokenizer::from_file(info.tokenizer_path);
  if (info.spec.rfind("random:", 0) == 0) {
    throw std::runtime_error("model " + info.spec +
                             " has random weights and no tokenizer; use demo or a model folder");
  }
  return Tokenizer::from_directory(info.spec);
}

}  // namespace radix::cli
