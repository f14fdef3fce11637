#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cache/device_prefix_cache.h"
#include "commands.h"
#include "core/fold_plan.h"
#include "model/flops.h"
#include "model_options.h"
#include "workloads.h"
#if defined(RADIX_HAVE_CUDA)
#include "backend/cuda/cuda_backend.h"
#endif

namespace radix::cli {
namespace {

struct ModelBenchArgs {
  ModelArgs model;
  std::vector<std::string> workloads = {"syn:B=8,P=64,S=16", "syn:B=8,P=256,S=64"};
  std::string modes = "off,scatter,tree";
  int warmup = 2;
  int repetitions = 5;
  bool json = false;
  int64_t prefix_cache_mib = 2048;  // stream workloads: the cache's budget for the cache-on run
  int32_t prefix_cache_min_tokens = cache::kDefaultMinPrefixTokens;  // stream: shortest hit used
};

std::vector<AttentionMode> parse_modes(const std::string& text) {
  std::vector<AttentionMode> modes;
  std::stringstream in(text);
  std::string name;
  while (std::getline(in, name, ',')) modes.push_back(parse_attention_mode(name));
  if (modes.empty()) throw std::invalid_argument("--modes is empty");
  return modes;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#if defined(RADIX_HAVE_CUDA)
// GPU memory peak of the mode's timed runs (weights, arena and scratch) and, with
// RADIX_CUDA_PROFILE=1, the device time per forward by kind of op; host_and_gaps_ms is what the
// median leaves over (launches, uploads, fold plan, download: time the GPU was not running an op).
void add_cuda_fields(Model& model, int runs, double median_ms, nlohmann::json& row) {
  const std::optional<CudaProfile> p = take_cuda_profile(model.backend());
  if (!p) return;
  row["gpu_peak_mib"] = static_cast<double>(p->peak_bytes) / (1 << 20);
  if (!p->timed) return;
  const double gemm = p->gemm_ms / runs, attention = p->attention_ms / runs,
               other = p->other_ms / runs;
  row["gpu_gemm_ms"] = gemm;
  row["gpu_attention_ms"] = attention;
  row["gpu_other_ms"] = other;
  row["gpu_norm_ms"] = p->norm_ms / runs;
  row["gpu_rope_ms"] = p->rope_ms / runs;
  row["gpu_swiglu_ms"] = p->swiglu_ms / runs;
  row["gpu_gather_ms"] = p->gather_ms / runs;
  row["gpu_quantize_ms"] = p->quantize_ms / runs;  // fp8: the activations' per-row quantisation
  // The host's time queueing the ops (launches, cuBLASLt calls), by kind.
  row["host_gemm_ms"] = p->host_gemm_ms / runs;
  row["host_attention_ms"] = p->host_attention_ms / runs;
  row["host_other_ms"] = p->host_other_ms / runs;
  row["host_and_gaps_ms"] = median_ms - gemm - attention - other;
}
#endif

// A stream workload: its requests one at a time, with the prefix cache off and on (a fresh cache
// per mode). The first request is cold (it fills the cache) and timed apart; median_ms and
// requests_per_s are over the others.
void run_stream(Model& model, const ModelBenchArgs& args, const bench::Workload& w,
                AttentionMode mode) {
  double off_ms = 0;
  for (const bool cached : {false, true}) {
    std::unique_ptr<cache::DevicePrefixCache> cache;
    if (cached) {
      if (!model.backend().supports_prefix_cache()) {
        std::fprintf(stderr, "radix bench model: %s has no prefix cache yet; cache-on skipped\n",
                     model.backend().name().c_str());
        return;
      }
      const DecoderConfig& c = model.info().config;
      cache::DevicePrefixCacheOptions o;
      o.budget_bytes = args.prefix_cache_mib << 20;
      o.min_prefix_tokens = args.prefix_cache_min_tokens;
      o.results = false;  // every request is new: time the prefix reuse, not the result cache
      cache = std::make_unique<cache::DevicePrefixCache>(model.backend(), c.num_hidden_layers,
                                                         c.num_key_value_heads, c.head_dim, o);
    }
    FoldOptions fold;
    fold.threshold = mode == AttentionMode::kOff ? 0.0 : 1.0;
    auto forward = [&](const RaggedBatch& b, const FoldPlan& plan, PrefixHook* hook) {
      ForwardOptions options;
      options.mode = mode;
      options.head = HeadKind::kEmbedding;
      options.prefix = hook;
      const ForwardResult r = model.forward(b, plan, options);
      std::vector<std::vector<float>> out(r.num_sequences);
      for (int32_t s = 0; s < r.num_sequences; ++s) {
        out[s].assign(r.values.begin() + static_cast<ptrdiff_t>(s) * r.dim,
                      r.values.begin() + static_cast<ptrdiff_t>(s + 1) * r.dim);
      }
      return out;
    };
    std::vector<double> ms, cpu_ms;
    const RecordingCounters recorded_before = model.recording_counters();
    for (const RaggedBatch& one : w.stream) {
      const auto start = std::chrono::steady_clock::now();
      const std::clock_t cpu_start = std::clock();
      if (cache) {
        cache->run(one, fold, forward);
      } else {
        forward(one, build_fold_plan(one.ids, one.positions, one.cu_seqlens, fold), nullptr);
      }
      ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count());
#if defined(RADIX_HAVE_CUDA)
      if (ms.size() == 1) take_cuda_profile(model.backend());  // GPU op times of warm requests
#endif
      cpu_ms.push_back(1e3 * static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC);
    }
    const double cold = ms.front();
    std::vector<double> warm(ms.begin() + (ms.size() > 1 ? 1 : 0), ms.end());
    const double med = median(warm);
    if (!cached) off_ms = med;
    nlohmann::json row;
    row["model"] = args.model.model;
    row["device"] = model.backend().name();
    row["threads"] = args.model.threads;
    row["workload"] = w.name;
    row["mode"] = std::string(attention_mode_name(mode)) + (cached ? "+cache" : "");
    row["requests"] = static_cast<int64_t>(w.stream.size());
    row["tokens"] = w.batch.num_tokens();
    row["cold_ms"] = cold;
    row["median_ms"] = med;
    // The fastest request: on a shared machine, the least disturbed one (for small differences).
    row["min_ms"] = warm.empty() ? cold : *std::min_element(warm.begin(), warm.end());
    // CPU time of the whole process per request (median, the cold one apart): with one thread,
    // the work itself, whatever else the machine runs (on a GPU: only the host's part).
    row["cpu_ms"] =
        median(std::vector<double>(cpu_ms.begin() + (cpu_ms.size() > 1 ? 1 : 0), cpu_ms.end()));
    row["requests_per_s"] = 1e3 / med;
    row["speedup_vs_cache_off"] = off_ms / med;
    row["replayed_forwards"] = model.recording_counters().replayed - recorded_before.replayed;
    if (cache) {
      const cache::PrefixCacheSnapshot s = cache->snapshot();
      row["hit_rate"] = static_cast<double>(s.hit_tokens) / static_cast<double>(s.lookup_tokens);
      row["cache_mib"] = static_cast<double>(s.bytes) / (1 << 20);
      row["evicted_nodes"] = s.evicted_nodes;
    } else {
      row["hit_rate"] = 0.0;
    }
#if defined(RADIX_HAVE_CUDA)
    add_cuda_fields(model, static_cast<int>(std::max<size_t>(1, warm.size())), med, row);
#endif
    if (args.json) {
      std::printf("%s\n", row.dump().c_str());
    } else {
      std::printf("%-24s %-14s %8lld req %10.2f ms %9.2f req/s  cold %9.2f ms  hit %.3f  x%.2f\n",
                  w.name.c_str(), row["mode"].get<std::string>().c_str(),
                  static_cast<long long>(w.stream.size()), med, 1e3 / med, cold,
                  row["hit_rate"].get<double>(), off_ms / med);
    }
    std::fflush(stdout);
  }
}

void run_bench_model(const ModelBenchArgs& args) {
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_ptr<Model> model = Model::load(args.model.model, load_options(args.model));
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const Qwen3Config& config = model->info().config;
  std::fprintf(stderr, "radix bench model: %s on %s loaded in %.2f s\n", args.model.model.c_str(),
               model->backend().name().c_str(), load_s);
  const std::vector<AttentionMode> modes = parse_modes(args.modes);
  if (!args.json) {
    std::printf("%-24s %-8s %8s %8s %10s %10s %9s %9s %9s\n", "workload", "mode", "tokens", "rows",
                "median_ms", "tok/s", "TFLOP/s", "speedup", "flop_x");
  }
  for (const std::string& spec : args.workloads) {
    const bench::Workload w = bench::parse_workload(spec, config.vocab_size);
    if (!w.stream.empty()) {
      for (const AttentionMode mode : modes) run_stream(*model, args, w, mode);
      continue;
    }
    const RaggedBatch& batch = w.batch;
    const FoldPlan plan = build_fold_plan(batch.ids, batch.positions, batch.cu_seqlens);
    const ForwardFlops off_flops = count_forward_flops(config, batch, plan, AttentionMode::kOff);
    double off_ms = 0;
    std::vector<nlohmann::json> rows;
    for (const AttentionMode mode : modes) {
      ForwardOptions options;
      options.mode = mode;
      options.head = HeadKind::kEmbedding;
      // Progress on stderr: an 8B off forward of the grid takes seconds per run, and a run of
      // every workload and mode minutes.
      std::fprintf(stderr, "radix bench model: %s %s: %d warm-up + %d timed runs...\n",
                   w.name.c_str(), attention_mode_name(mode), args.warmup, args.repetitions);
      ForwardResult r;
      for (int i = 0; i < args.warmup; ++i) r = model->forward(batch, options);
#if defined(RADIX_HAVE_CUDA)
      take_cuda_profile(model->backend());  // GPU op times of the timed runs only
#endif
      std::vector<double> ms;
      for (int i = 0; i < args.repetitions; ++i) {
        const auto start = std::chrono::steady_clock::now();
        r = model->forward(batch, options);  // returns after the results reached the host
        ms.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                .count());
      }
      const double med = median(ms);
      std::fprintf(stderr, "radix bench model: %s %s: median %.2f ms\n", w.name.c_str(),
                   attention_mode_name(mode), med);
      if (mode == AttentionMode::kOff) off_ms = med;
      const ForwardFlops flops = count_forward_flops(config, batch, plan, mode);
      nlohmann::json row;
      row["model"] = args.model.model;
      row["device"] = model->backend().name();
      row["dtype"] = args.model.dtype.empty() ? "default" : args.model.dtype;
      row["threads"] = args.model.threads;
      row["workload"] = w.name;
      row["mode"] = attention_mode_name(mode);
      row["tokens"] = batch.num_tokens();
      row["unique_tokens"] = plan.num_unique;
      row["rows"] = r.num_rows;
      // How the timed runs were queued: "replayed" once the batch's bucket has a recording.
      row["queued"] = forward_queue_name(r.queued);
      row["median_ms"] = med;
      row["min_ms"] = *std::min_element(ms.begin(), ms.end());
      row["max_ms"] = *std::max_element(ms.begin(), ms.end());
      row["repetitions"] = args.repetitions;
      row["tokens_per_s"] = static_cast<double>(batch.num_tokens()) / (med / 1e3);
      row["gflop"] = flops.total() / 1e9;
      row["attention_pairs"] = flops.attention_pairs;
      row["tflops_effective"] = flops.total() / (med / 1e3) / 1e12;
      // What the forward ran: its last layer's o_proj and MLP cover the last rows only.
      row["tflops_executed"] = flops.executed() / (med / 1e3) / 1e12;
      row["flop_ratio_vs_off"] = off_flops.total() / flops.total();
#if defined(RADIX_HAVE_CUDA)
      add_cuda_fields(*model, args.repetitions, med, row);
#endif
      rows.push_back(row);
    }
    for (nlohmann::json& row : rows) {
      if (off_ms > 0) {
        row["speedup_vs_off"] = off_ms / row["median_ms"].get<double>();
      } else {
        row["speedup_vs_off"] = nullptr;
      }
      if (args.json) {
        std::printf("%s\n", row.dump().c_str());
      } else {
        std::printf("%-24s %-8s %8lld %8lld %10.2f %10.0f %9.4f %9s %9.2f\n",
                    row["workload"].get<std::string>().c_str(),
                    row["mode"].get<std::string>().c_str(), row["tokens"].get<long long>(),
                    row["rows"].get<long long>(), row["median_ms"].get<double>(),
                    row["tokens_per_s"].get<double>(), row["tflops_effective"].get<double>(),
                    row["speedup_vs_off"].is_null()
                        ? "-"
                        : std::to_string(row["speedup_vs_off"].get<double>()).substr(0, 5).c_str(),
                    row["flop_ratio_vs_off"].get<double>());
      }
      std::fflush(stdout);
    }
  }
}

}  // namespace

void add_bench_model(CLI::App& bench) {
  auto args = std::make_shared<ModelBenchArgs>();
  CLI::App* cmd = bench.add_subcommand(
      "model",
      "Time the model forward per workload and attention mode (fields: docs/benchmarks.md); "
      "progress on stderr, one row per workload and mode on stdout");
  add_model_options(*cmd, args->model, false);
  cmd->add_option("--dtype", args->model.dtype,
                  "Weights: the device's when unset (CPU float32, CUDA bf16); bf16 (CUDA), or fp8 "
                  "(CUDA only): e4m3 projections with per-channel scales, the rest bf16")
      ->check(CLI::IsMember({"bf16", "bfloat16", "fp8"}));
  cmd->add_option("--workload", args->workloads, "Workload specs (bench/workloads.h)")
      ->capture_default_str();
  cmd->add_option("--modes", args->modes, "Comma-separated attention modes")->capture_default_str();
  cmd->add_option("--warmup", args->warmup, "Untimed runs per mode")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--repetitions", args->repetitions, "Timed runs per mode (median reported)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "One JSON object per workload and mode");
  cmd->add_option("--prefix-cache-mib", args->prefix_cache_mib,
                  "Stream workloads: the prefix cache's budget in the cache-on run")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--prefix-cache-min-tokens", args->prefix_cache_min_tokens,
                  "Stream workloads: shortest cached prefix used (measuring the default)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->callback([args] { run_bench_model(*args); });
}

}  // namespace radix::cli
