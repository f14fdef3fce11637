#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"
#include "core/fold_plan.h"
#include "workloads.h"

namespace radix::cli {
namespace {

struct FoldBenchArgs {
  std::vector<std::string> workloads = {"syn:B=32,P=2048,S=256", "rerank-like:G=40,D=10",
                                        "wide:B=2048,L=512,P=128"};
  int warmup = 5;
  int repetitions = 51;
  bool json = false;
};

void run_bench_fold(const FoldBenchArgs& args) {
  if (!args.json) {
    std::printf("%-28s %10s %10s %8s %12s %12s\n", "workload", "tokens", "unique", "ratio",
                "median_us", "ns_per_token");
  }
  for (const std::string& spec : args.workloads) {
    const bench::Workload w = bench::parse_workload(spec);
    const RaggedBatch& b = w.batch;
    FoldPlan plan;
    std::vector<double> seconds;
    for (int rep = 0; rep < args.warmup + args.repetitions; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      build_fold_plan(b.ids, b.positions, b.cu_seqlens, FoldOptions{}, plan);
      const auto t1 = std::chrono::steady_clock::now();
      if (rep >= args.warmup) seconds.push_back(std::chrono::duration<double>(t1 - t0).count());
    }
    std::nth_element(seconds.begin(), seconds.begin() + seconds.size() / 2, seconds.end());
    const double median = seconds[seconds.size() / 2];
    const double ns_per_token = median * 1e9 / static_cast<double>(b.num_tokens());
    if (args.json) {
      std::printf(
          "{\"workload\": \"%s\", \"tokens\": %lld, \"unique\": %lld, \"ratio\": %.4f, "
          "\"median_us\": %.2f, \"ns_per_token\": %.3f, \"repetitions\": %d}\n",
          w.name.c_str(), static_cast<long long>(b.num_tokens()),
          static_cast<long long>(plan.num_unique), plan.compression_ratio(), median * 1e6,
          ns_per_token, args.repetitions);
    } else {
      std::printf("%-28s %10lld %10lld %8.4f %12.2f %12.3f\n", w.name.c_str(),
                  static_cast<long long>(b.num_tokens()), static_cast<long long>(plan.num_unique),
                  plan.compression_ratio(), median * 1e6, ns_per_token);
    }
    std::fflush(stdout);
  }
}

}  // namespace

void add_bench_fold(CLI::App& bench) {
  auto args = std::make_shared<FoldBenchArgs>();
  CLI::App* cmd = bench.add_subcommand(
      "fold", "Fold the fold-plan workloads on one thread; print compression and ns per token");
  cmd->add_option("--workload", args->workloads,
                  "Workload specs (default: the three of docs/benchmarks.md)");
  cmd->add_option("--warmup", args->warmup, "Untimed runs per workload")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--repetitions", args->repetitions, "Timed runs per workload (median reported)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--json", args->json, "One JSON object per workload");
  cmd->callback([args] { run_bench_fold(*args); });
}

}  // namespace radix::cli
