// Each subcommand of the `radix` binary lives in its own cmd_*.cc and registers itself here.
#pragma once

#include <CLI/CLI.hpp>

namespace radix::cli {

// `radix bench fold`: folds the fold-plan workloads and prints compression and ns/token.
void add_bench_fold(CLI::App& bench);

// `radix tokenize`: token ids of a text or of every line of a JSONL file, as JSON.
void add_tokenize(CLI::App& app);
// `radix bench tokenize`: encode throughput over the dl19 passages.
void add_bench_tokenize(CLI::App& bench);

}  // namespace radix::cli
