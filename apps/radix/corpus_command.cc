#include "corpus_command.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "service/runtime.h"

namespace radix::cli {
namespace {

// What identifies a run for --input's resume: the input file as it was, the model and every
// option that changes the results. A resumed run must match it whole.
std::string fingerprint_of(const ModelArgs& model, const CorpusArgs& args,
                           const CorpusCommand& command) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto size = fs::file_size(args.input, ec);
  const auto mtime = fs::last_write_time(args.input, ec).time_since_epoch().count();
  return std::string(command.name) + " " + fs::absolute(args.input).string() + " (" +
         std::to_string(size) + " bytes, mtime " + std::to_string(mtime) + ") model " +
         model.model + " tokenizer '" + model.tokenizer + "' truncate " +
         std::to_string(model.truncate) + " pooling '" + model.pooling + "' reranker tokens '" +
         model.reranker_tokens + "' rerank template '" + model.rerank_template + "' dtype '" +
         model.dtype + "' " + command.fingerprint;
}

}  // namespace

CLI::Option* add_corpus_options(CLI::App& cmd, CorpusArgs& args) {
  CLI::Option* input = cmd.add_option(
      "--input", args.input,
      "A corpus file (.jsonl, or .txt with one text per line) to run instead of the arguments");
  cmd.add_option("--output", args.output,
                 "With --input: the results file, .npy or .jsonl (an interrupted run resumes "
                 "from OUTPUT.progress)")
      ->needs(input);
  cmd.add_option("--batch-tokens", args.batch_tokens, "With --input: tokens per engine batch")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd.add_option("--chunk-items", args.chunk_items,
                 "With --input: items read, ordered by prefix and committed together")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd.add_flag("--file-order", args.file_order,
               "With --input: batch in file order instead of by shared prefix (comparisons)");
  cmd.add_flag("--restart", args.restart, "With --input: ignore OUTPUT.progress and start over");
  cmd.add_option("--progress-every", args.progress_every,
                 "Seconds between progress lines when stderr is not a terminal")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  return input;
}

void run_corpus_command(const ModelArgs& model, const CorpusArgs& args, CorpusCommand command) {
  if (args.output.empty()) throw std::invalid_argument("--input needs --output (.npy or .jsonl)");
  const service::CorpusTask task = command.options.task;
  // Checked before the model loads (a wrong file name should not cost a load), and the input
  // before the output is opened (which truncates an existing file).
  service::open_corpus_file(args.input, task);
  auto output = service::CorpusOutput::open(args.output, task, fingerprint_of(model, args, command),
                                            args.restart);
  auto source = service::open_corpus_file(args.input, task, output->resumed());

  service::RuntimeOptions options = runtime_options(model, command.head);
  options.max_batch_tokens = args.batch_tokens;
  options.service = command.service;
  options.service.auto_truncate = model.truncate;
  options.service.tokenization_workers = std::max(1u, std::thread::hardware_concurrency());
  std::mutex mu;
  service::BatchReport totals;
  double forward_seconds = 0;
  int64_t batches = 0;
  options.on_batch = [&](const service::BatchReport& r) {
    std::lock_guard<std::mutex> lock(mu);
    totals.tokens += r.tokens;
    totals.rows += r.rows;
    forward_seconds += r.run_seconds;
    ++batches;
  };
  std::unique_ptr<service::Runtime> runtime = service::Runtime::build(options);

  const bool tty = isatty(STDERR_FILENO) != 0;
  double last_line = -1e9;
  service::CorpusOptions& o = command.options;
  o.batch_tokens = args.batch_tokens;
  o.chunk_items = args.chunk_items;
  o.order_by_prefix = !args.file_order;
  o.resumed = output->resumed();
  o.on_progress = [&](const service::CorpusProgress& p) {
    double compression = 0;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (totals.rows > 0) compression = static_cast<double>(totals.tokens) / totals.rows;
    }
    const std::string line = service::format_corpus_progress(p, compression, tty);
    if (tty) {
      std::fprintf(stderr, "\r%s\x1b[K%s", line.c_str(), p.done ? "\n" : "");
    } else if (p.done || p.seconds - last_line >= args.progress_every) {
      last_line = p.seconds;
      std::fprintf(stderr, "radix %s: %s\n", command.name, line.c_str());
    }
    std::fflush(stderr);
  };
  if (o.resumed > 0) {
    std::fprintf(stderr, "radix %s: resuming after %lld items (%s)\n", command.name,
                 static_cast<long long>(o.resumed),
                 service::CorpusOutput::state_path(args.output).c_str());
  }
  service::CorpusStats stats;
  try {
    stats = service::run_corpus(runtime->service(), *source, *output, o);
  } catch (const service::ServiceError& e) {
    throw std::runtime_error(e.what());
  }
  runtime->shutdown();

  std::lock_guard<std::mutex> lock(mu);
  nlohmann::json out;
  out["model"] = model.model;
  out["mode"] = model.mode;
  out["input"] = args.input;
  out["output"] = args.output;
  out["order"] = args.file_order ? "file" : "prefix";
  out["items"] = stats.items;
  out["resumed"] = o.resumed;
  out["tokens"] = stats.tokens;
  out["rows"] = totals.rows;
  out["compression"] = totals.rows > 0 ? static_cast<double>(totals.tokens) / totals.rows : 0.0;
  out["batches"] = batches;
  out["seconds"] = stats.seconds;
  out["tokens_per_s"] = stats.seconds > 0 ? stats.tokens / stats.seconds : 0.0;
  // The engine's time in its batches (fold plan and forward), back to back: what the same
  // batches cost without the pipeline's reading, tokenizing and writing.
  out["forward_seconds"] = forward_seconds;
  out["forward_tokens_per_s"] = forward_seconds > 0 ? totals.tokens / forward_seconds : 0.0;
  out["load_seconds"] = runtime->info().load_seconds;
  out["backend"] = runtime->info().backend;
  std::printf("%s\n", out.dump().c_str());
}

}  // namespace radix::cli
