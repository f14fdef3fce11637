#include "service/runtime.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <stdexcept>

#include "engine/engine.h"
#include "engine/model_runner.h"
#include "model/model.h"
#include "model/rerank_template.h"
#include "service/tokenizer_loader.h"
#if defined(RADIX_HAVE_CUDA)
#include "backend/cuda/cuda_backend.h"
#endif

namespace radix::service {
namespace {

using std::to_string;

const char* dtype_long_name(DType d) {
  switch (d) {
    case DType::kF32:
      return "float32";
    case DType::kBF16:
      return "bfloat16";
    case DType::kF16:
      return "float16";
    case DType::kI32:
      return "int32";
    case DType::kF8E4M3:
      return "fp8";
  }
  return "?";
}

std::string short_number(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

// The prefix cache's budget when --prefix-cache-mib is -1 (docs/prefix_cache.md): on a GPU a
// quarter of the memory still free once the weights and the preallocated activations are in,
// capped at kDefaultGpuPrefixCacheMib (the cache's storage is allocated whole at load, so the
// rest stays for activations that grow later, cuBLASLt and attention scratch); off on the CPU.
int64_t default_prefix_cache_mib(Model& model, bool gpu) {
  if (!gpu) return 0;
#if defined(RADIX_HAVE_CUDA)
  if (const std::optional<int64_t> free = cuda_free_memory_bytes(model.backend())) {
    return std::min(kDefaultGpuPrefixCacheMib, (*free / 4) >> 20);
  }
#else
  (void)model;
#endif
  return kDefaultGpuPrefixCacheMib;
}

}  // namespace

void check_radix_threshold(double threshold) {
  if (!(threshold >= 0.0 && threshold <= 1.0)) {
    throw std::invalid_argument(
        "--radix-threshold must be in [0, 1] (1: always fold, 0: never), "
        "got " +
        short_number(threshold));
  }
}

void check_max_batch_tokens(int64_t tokens) {
  if (tokens <= 0) {
    throw std::invalid_argument("--max-batch-tokens must be at least 1 (tokens per batch), got " +
                                to_string(tokens));
  }
}

struct Runtime::Impl {
  RuntimeInfo info;
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<Service> service;
};

Runtime::Runtime(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Runtime::~Runtime() { shutdown(); }

Service& Runtime::service() { return *impl_->service; }
const RuntimeInfo& Runtime::info() const { return impl_->info; }
size_t Runtime::queued_requests() const { return impl_->engine->queued_requests(); }
int64_t Runtime::queued_sequences() const { return impl_->engine->queued_sequences(); }
size_t Runtime::num_workers() const { return impl_->engine->num_workers(); }
std::vector<engine::RunnerCacheStats> Runtime::cache_stats() const {
  std::vector<engine::RunnerCacheStats> out;
  for (const auto& r : impl_->engine->runners()) out.push_back(r->cache_stats());
  return out;
}

std::vector<engine::RunnerRecordings> Runtime::recordings() const {
  std::vector<engine::RunnerRecordings> out;
  for (const auto& r : impl_->engine->runners()) out.push_back(r->recordings());
  return out;
}

bool Runtime::records_forwards() const {
  for (const engine::RunnerRecordings& r : recordings()) {
    if (r.enabled) return true;
  }
  return false;
}
std::vector<engine::WorkerLoad> Runtime::worker_loads() const {
  return impl_->engine->worker_loads();
}
void Runtime::shutdown() {
  if (impl_ && impl_->engine) impl_->engine->shutdown();
}

std::unique_ptr<Runtime> Runtime::build(RuntimeOptions o) {
  const auto t0 = std::chrono::steady_clock::now();
  check_radix_threshold(o.radix_threshold);
  if (o.prefix_cache_mib < -1 || o.prefix_cache_mib > (int64_t{1} << 24)) {
    throw std::invalid_argument("--prefix-cache-mib " + std::to_string(o.prefix_cache_mib) +
                                ": expected 0 (off) to 16777216 MiB, or -1 for the default");
  }
  check_max_batch_tokens(o.max_batch_tokens);
  if (o.max_batch_requests < 0) {
    throw std::invalid_argument("--max-batch-requests must be >= 0 (0: no limit)");
  }
  if (o.pad_to_multiple < 1) throw std::invalid_argument("pad_to_multiple must be >= 1");
  if (o.devices.empty()) throw std::invalid_argument("--device: no device given");
  if (o.pooling == "last_token") o.pooling = "lasttoken";  // TEI's spelling
  if (!o.pooling.empty() && o.pooling != "lasttoken" && o.pooling != "mean") {
    throw std::invalid_argument("--pooling " + o.pooling + ": radix pools lasttoken or mean");
  }
  if (!o.dtype.empty() && o.dtype != "float32" && o.dtype != "bfloat16" && o.dtype != "float16" &&
      o.dtype != "fp8") {
    throw std::invalid_argument("--dtype " + o.dtype +
                                ": expected float32, bfloat16, float16 or fp8");
  }
  // fp8: e4m3 projections with per-channel scales, the rest bf16 (CUDA only; the model load
  // says so on another device).
  const bool fp8 = o.dtype == "fp8";
  const AttentionMode mode = parse_attention_mode(o.attention_mode);
  if (!o.rerank_template.empty())
    o.service.rerank_template = load_rerank_template(o.rerank_template);

  // The tokenizer first: a missing one is reported before any weights are read.
  std::optional<Tokenizer> tokenizer;
  if (!o.tokenizer.empty()) {
    tokenizer = load_tokenizer(o.tokenizer);
  } else if (o.model.rfind("random:", 0) == 0) {
    throw std::runtime_error("model " + o.model +
                             " has random weights and no tokenizer; give a tokenizer (a "
                             "tokenizer.json, a model folder, or demo)");
  }

  auto impl = std::make_unique<Impl>();
  RuntimeInfo& info = impl->info;
  LoadOptions load;
  load.backend.threads = o.threads;
  load.backend.fp8 = fp8;
  load.backend.cuda_graphs = o.cuda_graphs;
  load.seed = o.seed;
  if (o.preallocate) load.max_batch_tokens = o.max_batch_tokens;
  if (!o.head.empty()) load.head = parse_head_kind(o.head);
  if (!o.pooling.empty()) load.pooling = o.pooling;
  load.reranker_tokens = o.reranker_tokens;
  std::vector<std::unique_ptr<engine::BatchRunner>> runners;
  ModelInfo model_info;
  for (const std::string& device : o.devices) {
    load.backend.device = device;
    std::unique_ptr<Model> model = Model::load(o.model, load);
    const std::string dtype =
        fp8 ? std::string("fp8") : std::string(dtype_long_name(model->backend().weight_dtype()));
    if (!o.dtype.empty() && o.dtype != dtype) {
      throw std::invalid_argument("--dtype " + o.dtype + ": the " + model->backend().name() +
                                  " backend runs " + dtype + " weights");
    }
    if (runners.empty()) {
      model_info = model->info();
      info.dtype = dtype;
      info.backend = model->backend().name();
    }
    const bool gpu = device.rfind("cuda", 0) == 0;
    const int64_t mib =
        o.prefix_cache_mib >= 0 ? o.prefix_cache_mib : default_prefix_cache_mib(*model, gpu);
    engine::PrefixCacheConfig cache;
    cache.budget_bytes = mib << 20;
    cache.pad_to_multiple = o.pad_to_multiple;
    if (!gpu) cache.min_prefix_tokens = kCpuMinPrefixTokens;
    if (gpu) cache.min_hit_fraction = kGpuMinHitFraction;
    info.prefix_cache_mib = mib;
    auto runner = std::make_unique<engine::ModelRunner>(std::move(model), mode, device, cache);
    info.prefix_cache = runner->prefix_cache() != nullptr;
    runners.push_back(std::move(runner));
  }
  if (!tokenizer) tokenizer = load_tokenizer("", &model_info);

  engine::EngineOptions engine_options;
  engine_options.limits.max_batch_tokens = o.max_batch_tokens;
  engine_options.limits.max_batch_requests = o.max_batch_requests;
  // A bidirectional model is never folded (prefix dedup is exact only under causal attention).
  engine_options.fold = engine::fold_options_for(
      model_info.config.causal ? mode : AttentionMode::kOff, o.radix_threshold, o.pad_to_multiple);
  engine::Engine::BatchObserver observer;
  if (o.on_batch) {
    observer = [hook = o.on_batch](const engine::BatchStats& s) {
      BatchReport r;
      r.sequences = s.sequences;
      r.requests = s.requests;
      r.tokens = s.tokens;
      r.unique_tokens = s.unique_tokens;
      r.rows = s.folded ? s.unique_tokens : s.tokens;
      r.folded = s.folded;
      r.failed = s.failed;
      r.run_seconds = s.run_seconds;
      r.plan_seconds = s.plan_seconds;
      r.timings = s.timings;
      r.max_queue_seconds = s.max_queue_seconds;
      r.worker = s.worker;
      r.cached_prefix_tokens = s.cached_prefix_tokens;
      hook(r);
    };
  }
  impl->engine =
      std::make_unique<engine::Engine>(std::move(runners), engine_options, std::move(observer));

  ServiceOptions service_options = o.service;
  if (service_options.max_input_length == 0) {
    service_options.max_input_length =
        static_cast<int32_t>(std::min<int64_t>(model_info.max_positions(), o.max_batch_tokens));
  } else if (service_options.max_input_length > model_info.max_positions()) {
    throw std::invalid_argument(
        "--max-input-length " + to_string(service_options.max_input_length) +
        " is over the model's " + to_string(model_info.max_positions()) + " positions");
  } else if (service_options.max_input_length > o.max_batch_tokens) {
    throw std::invalid_argument("--max-input-length " +
                                to_string(service_options.max_input_length) +
                                " is over --max-batch-tokens " + to_string(o.max_batch_tokens) +
                                ": such an input could never be batched");
  }
  impl->service =
      std::make_unique<Service>(model_info, *tokenizer, *impl->engine, std::move(service_options));

  info.devices = o.devices;
  info.num_layers = model_info.config.num_hidden_layers;
  info.attention_mode = attention_mode_name(mode);
  info.radix_threshold = o.radix_threshold;
  info.max_batch_tokens = o.max_batch_tokens;
  info.max_batch_requests = o.max_batch_requests;
  info.load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return std::unique_ptr<Runtime>(new Runtime(std::move(impl)));
}

}  // namespace radix::service
