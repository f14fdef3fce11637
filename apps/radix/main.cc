#include <cstdio>
#include <exception>

#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"radix: prefill inference (embeddings, reranking) with intra-batch prefix dedup"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "radix 0.1.0");

  CLI::App* bench = app.add_subcommand("bench", "Benchmarks that print numbers");
  bench->require_subcommand(1);
  radix::cli::add_bench_fold(*bench);
  radix::cli::add_bench_tokenize(*bench);
  radix::cli::add_tokenize(app);
  radix::cli::add_embed(app);
  radix::cli::add_rerank(app);
  radix::cli::add_bench_model(*bench);

  radix::cli::add_serve(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "radix: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
