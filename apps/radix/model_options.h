// Options shared by the commands that run a model (embed, rerank, bench model).
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/model.h"

namespace radix::cli {

struct ModelArgs {
  std::string model = "demo";
  std::string device = "cpu";
  std::string mode = "tree";
  int threads = 0;
  bool truncate = false;
  std::string tokenizer;  // text commands: "" (the model's own), demo, a file or a folder
};

inline void add_model_options(CLI::App& cmd, ModelArgs& args, bool with_mode = true) {
  cmd.add_option("--model", args.model,
                 "A Hugging Face model folder, demo (built in), or random:qwen3-0.6b|4b|8b")
      ->capture_default_str();
  cmd.add_option("--device", args.device, "cpu, or cuda / cuda:N in a CUDA build")
      ->capture_default_str();
  cmd.add_option("--threads", args.threads, "CPU threads (0: all)")->check(CLI::NonNegativeNumber);
  cmd.add_flag("--truncate", args.truncate,
               "Cut inputs longer than the model's maximum positions (default: refuse them)");
  if (with_mode) {
    cmd.add_option("--mode", args.mode, "Attention mode: off, scatter or tree")
        ->check(CLI::IsMember({"off", "scatter", "tree"}))
        ->capture_default_str();
  }
}

inline LoadOptions load_options(const ModelArgs& args) {
  LoadOptions options;
  options.backend.device = args.device;
  options.backend.threads = args.threads;
  return options;
}

inline double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace radix::cli
