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

// `radix embed`: embeddings of texts as JSON (cmd_embed.cc).
void add_embed(CLI::App& app);
// `radix rerank`: reranker scores of documents against a query as JSON (cmd_rerank.cc).
void add_rerank(CLI::App& app);
// `radix bench model`: forward time per workload and attention mode (cmd_bench_model.cc).
void add_bench_model(CLI::App& bench);

// `radix serve`: the HTTP API over the engine (cmd_serve.cc).
void add_serve(CLI::App& app);

}  // namespace radix::cli
