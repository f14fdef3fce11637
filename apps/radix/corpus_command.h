// `radix embed --input` and `radix rerank --input`: a corpus file through the library core's
// corpus pipeline (service/corpus.h) into a .npy or .jsonl file, with a progress line on stderr
// and a JSON summary on stdout.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "model_options.h"
#include "service/corpus.h"

namespace radix::cli {

struct CorpusArgs {
  std::string input;
  std::string output;
  int64_t batch_tokens = 16384;
  size_t chunk_items = 16384;
  bool file_order = false;
  bool restart = false;
  double progress_every = 10;  // seconds between plain progress lines (not a terminal)
};

// --input and the options that go with it; `input` names the option for excludes().
CLI::Option* add_corpus_options(CLI::App& cmd, CorpusArgs& args);

struct CorpusCommand {
  const char* name = "";  // "embed" | "rerank"
  std::string head;
  service::ServiceOptions service;
  service::CorpusOptions options;  // the request's shape (prompt, instruction, normalize, ...)
  std::string fingerprint;         // the command's own options, for the resume check
};

void run_corpus_command(const ModelArgs& model, const CorpusArgs& args, CorpusCommand command);

}  // namespace radix::cli
