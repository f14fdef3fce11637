#include "text_command.h"

#include <chrono>
#include <cstdio>
#include <limits>
#include <memory>
#include <mutex>

namespace radix::cli {
namespace {

// The CLI's wording of the core's errors that name a flag.
[[noreturn]] void rethrow_for_cli(const service::ServiceError& e) {
  if (e.kind() == service::ServiceError::Kind::kTooLong) {
    throw std::runtime_error("input " + std::to_string(e.input_index) + " has " +
                             std::to_string(e.tokens) + " tokens, more than the model's " +
                             std::to_string(e.max_tokens) + "; pass --truncate to cut it");
  }
  throw std::runtime_error(e.what());
}

}  // namespace

void add_tokenizer_option(CLI::App& cmd, ModelArgs& args) {
  cmd.add_option("--tokenizer", args.tokenizer,
                 "tokenizer.json, a folder with one, or demo (default: the model's own)");
  cmd.add_option("--dtype", args.dtype,
                 "Weights' dtype; what the device runs (cpu: float32, cuda: bfloat16), or fp8 on "
                 "cuda (e4m3 projections with per-channel scales, the rest bfloat16)")
      ->check(CLI::IsMember({"float32", "bfloat16", "float16", "fp8"}));
}

void run_text_command(const ModelArgs& args, const TextCommand& command) {
  service::RuntimeOptions options = runtime_options(args, command.head);
  options.radix_threshold = 1.0;  // fold whenever the mode can (the mode is the user's choice)
  // One batch for all inputs, as the user gave them; activations grow to what it needs.
  options.max_batch_tokens = std::numeric_limits<int32_t>::max();
  options.preallocate = false;
  options.service = command.service;
  options.service.auto_truncate = args.truncate;
  options.service.tokenization_workers = 1;
  double tokenize_seconds = 0;
  options.service.on_tokenization = [&tokenize_seconds](double s) { tokenize_seconds += s; };
  std::mutex mu;
  service::BatchReport totals;
  double forward_seconds = 0;
  options.on_batch = [&](const service::BatchReport& r) {
    std::lock_guard<std::mutex> lock(mu);
    totals.tokens += r.tokens;
    totals.rows += r.rows;
    forward_seconds += r.run_seconds;
  };
  std::unique_ptr<service::Runtime> runtime = service::Runtime::build(options);

  nlohmann::json out;
  out["model"] = args.model;
  out["mode"] = args.mode;
  try {
    command.run(runtime->service(), out);
  } catch (const service::ServiceError& e) {
    rethrow_for_cli(e);
  }
  runtime->shutdown();
  std::printf("%s\n", out.dump().c_str());
  std::lock_guard<std::mutex> lock(mu);
  std::fprintf(stderr,
               "radix %s: load %.1f ms, tokenize %.2f ms, forward %.2f ms (%lld tokens, %lld rows, "
               "mode %s, %s)\n",
               command.name, runtime->info().load_seconds * 1e3, tokenize_seconds * 1e3,
               forward_seconds * 1e3, static_cast<long long>(totals.tokens),
               static_cast<long long>(totals.rows), args.mode.c_str(),
               runtime->info().backend.c_str());
}

}  // namespace radix::cli
