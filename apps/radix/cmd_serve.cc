// `radix serve`: the HTTP server (TEI- and OpenAI-compatible routes) over the engine.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "commands.h"
#include "model/model.h"
#include "model_options.h"
#include "server/http_server.h"
#include "server/model_service.h"
#include "service/runtime.h"

namespace radix::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct ServeArgs {
  std::string model;
  std::string tokenizer;
  std::string head;
  std::string pooling;
  std::string reranker_tokens;
  std::string rerank_template;
  std::string dtype;
  bool enforce_eager = false;
  std::string default_prompt_name;
  std::string default_prompt;
  std::string host = "0.0.0.0";
  int port = 3000;
  int64_t max_batch_tokens = 16384;
  int32_t max_batch_requests = 0;
  size_t max_client_batch_size = 32;
  size_t max_concurrent_requests = 512;
  size_t payload_limit = 2'000'000;
  int32_t max_input_length = 0;
  bool auto_truncate = false;
  std::string api_key;
  double radix_threshold = 0.95;
  int64_t prefix_cache_mib = -1;
  std::string attention_mode = "tree";
  std::string device = "cpu";
  int threads = 0;
  size_t tokenization_workers = 0;
  std::string served_model_name;
  uint64_t seed = 0;
  int drain_timeout_s = 30;
  double header_timeout_s = 10;
  double keep_alive_timeout_s = 5;
  double body_timeout_s = 60;
  size_t max_connections = 4096;
  std::string cors_allow_origin;
  bool json_output = false;
};

// Log lines on stderr: plain text, or with --json-output one JSON object per line
// ({"timestamp", "level", "target", "message", fields...}) for log collectors.
class ServeLog {
 public:
  void set_json(bool on) { json_ = on; }
  void info(const std::string& message, nlohmann::json fields = nlohmann::json::object()) {
    write("INFO", message, std::move(fields));
  }
  void warn(const std::string& message, nlohmann::json fields = nlohmann::json::object()) {
    write("WARN", message, std::move(fields));
  }

 private:
  void write(const char* level, const std::string& message, nlohmann::json fields) {
    std::string line;
    if (json_) {
      nlohmann::json j = {{"timestamp", utc_now()},
                          {"level", level},
                          {"target", "radix::serve"},
                          {"message", message}};
      for (auto& [k, v] : fields.items()) j[k] = v;
      line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    } else {
      line = "radix serve: " + message + "\n";
    }
    std::fputs(line.c_str(), stderr);
    std::fflush(stderr);
  }
  static std::string utc_now() {
    const auto now = std::chrono::system_clock::now();
    const std::time_t t = std::chrono::system_clock::to_time_t(now);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[96];  // room for any int the compiler cannot rule out
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms.count()));
    return buf;
  }
  bool json_ = false;
};

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::vector<std::string> split_devices(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  std::string d;
  while (std::getline(in, d, ',')) {
    if (!d.empty()) out.push_back(d);
  }
  if (out.empty()) throw std::invalid_argument("--device is empty");
  return out;
}

// One request through the whole path (tokenizer pool, engine, model) before the port opens. A
// reranker without a prompt template cannot take text: its warm-up runs token ids.
void warm_up(server::ModelService& service, service::Service& core, HeadKind head) {
  const server::CallContext ctx;
  if (head == HeadKind::kReranker && core.summary().rerank_template.empty()) {
    core.rerank_ids({{0, 1, 2}, {0, 1, 2, 3}});
  } else if (head == HeadKind::kEmbedding) {
    server::EmbedRequest r;
    r.inputs = {{"radix warm-up", {}, false}, {"radix warm-up, second input", {}, false}};
    service.embed(r, ctx);
  } else if (head == HeadKind::kReranker) {
    server::RerankRequest r;
    r.query = "warm-up";
    r.texts = {"radix", "radix warm-up"};
    service.rerank(r, ctx);
  } else {
    server::PredictRequest r;
    r.inputs = {{"radix warm-up", std::nullopt}};
    service.predict(r, ctx);
  }
}

// SIGINT/SIGTERM are caught by a handler that only writes the signal number to a pipe; a
// thread of ours reads it. (Blocking the signals and sigwait-ing would not do: libraries such as
// OpenBLAS start threads before main, and any of them would take the default action.)
int g_signal_pipe[2] = {-1, -1};
std::atomic<int> g_signals{0};
static_assert(std::atomic<int>::is_always_lock_free, "used in a signal handler");

extern "C" void on_shutdown_signal(int sig) {
  // The second signal stops at once, whatever the process is doing (loading, draining).
  if (g_signals.fetch_add(1) >= 1) {
    static const char msg[] = "radix serve: second signal; stopping now\n";
    [[maybe_unused]] const ssize_t w = ::write(2, msg, sizeof msg - 1);
    ::_exit(1);
  }
  const int saved = errno;
  const char c = static_cast<char>(sig);
  [[maybe_unused]] const ssize_t n = ::write(g_signal_pipe[1], &c, 1);
  errno = saved;
}

void install_signal_handlers() {
  if (::pipe2(g_signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    throw std::runtime_error("cannot create the signal pipe");
  }
  struct sigaction sa {};
  sa.sa_handler = on_shutdown_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

// The next signal number from the pipe, or 0 after timeout_ms.
int wait_signal(int timeout_ms) {
  pollfd p{g_signal_pipe[0], POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return 0;
  char c = 0;
  return ::read(g_signal_pipe[0], &c, 1) == 1 ? c : 0;
}

// A CLI11 check that runs the library's own check of an option, so the flag and the builder
// refuse the same values with the same message.
template <typename T>
CLI::Validator service_check(void (*check)(T), const std::string& description) {
  return CLI::Validator(
      [check](std::string& text) -> std::string {
        T value{};
        if (!CLI::detail::lexical_cast(text, value)) return "not a number: " + text;
        try {
          check(value);
        } catch (const std::invalid_argument& e) {
          return e.what();
        }
        return {};
      },
      description);
}

std::chrono::milliseconds seconds_ms(double s) {
  return std::chrono::milliseconds(static_cast<int64_t>(s * 1000.0));
}

void run_serve(const ServeArgs& args) {
  install_signal_handlers();
  ServeLog log;
  log.set_json(args.json_output);

  // The runtime (one model per device, the engine, the library core) from the flags.
  service::RuntimeOptions runtime_options;
  runtime_options.model = args.model;
  runtime_options.tokenizer = args.tokenizer;
  runtime_options.devices = split_devices(args.device);
  runtime_options.threads = args.threads;
  runtime_options.head = args.head;
  runtime_options.dtype = args.dtype;
  runtime_options.cuda_graphs = !args.enforce_eager;
  runtime_options.attention_mode = args.attention_mode;
  runtime_options.radix_threshold = args.radix_threshold;
  runtime_options.prefix_cache_mib = args.prefix_cache_mib;
  runtime_options.max_batch_tokens = args.max_batch_tokens;
  runtime_options.max_batch_requests = args.max_batch_requests;
  runtime_options.seed = args.seed;
  runtime_options.pooling = args.pooling;
  {
    ModelArgs tokens;  // words resolve through --tokenizer, else the model folder's
    tokens.model = args.model;
    tokens.tokenizer = args.tokenizer;
    tokens.reranker_tokens = args.reranker_tokens;
    runtime_options.reranker_tokens = reranker_token_ids(tokens);
  }
  runtime_options.rerank_template = args.rerank_template;
  if (!args.default_prompt_name.empty()) {
    runtime_options.service.default_prompt_name = args.default_prompt_name;
  }
  if (!args.default_prompt.empty()) runtime_options.service.default_prompt = args.default_prompt;
  runtime_options.service.auto_truncate = args.auto_truncate;
  runtime_options.service.max_input_length = args.max_input_length;
  const size_t workers = args.tokenization_workers > 0
                             ? args.tokenization_workers
                             : std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 8);
  runtime_options.service.tokenization_workers = workers;

  std::atomic<service::Runtime*> runtime_ptr{nullptr};
  server::ServerMetrics metrics(
      [&] {
        auto* r = runtime_ptr.load();
        return r ? static_cast<double>(r->queued_sequences()) : 0.0;
      },
      [&] {
        auto* r = runtime_ptr.load();
        return r ? static_cast<double>(r->queued_requests()) : 0.0;
      });
  runtime_options.service.on_tokenization = [&metrics](double s) {
    metrics.observe_tokenization(s);
  };
  runtime_options.on_batch = [&metrics](const service::BatchReport& s) {
    metrics.observe_batch({s.sequences, s.requests, s.tokens, s.unique_tokens, s.failed,
                           s.run_seconds, s.max_queue_seconds, s.plan_seconds,
                           s.timings.prepare_seconds, s.timings.enqueue_seconds,
                           s.timings.wait_seconds, s.timings.finish_seconds});
  };
  std::unique_ptr<service::Runtime> runtime = service::Runtime::build(runtime_options);
  runtime_ptr.store(runtime.get());
  service::Service& core = runtime->service();
  const service::ModelSummary& info = core.summary();
  const service::RuntimeInfo& built = runtime->info();
  const double load_seconds = built.load_seconds;
  const std::string& dtype = built.dtype;
  const int32_t max_input = info.max_input_length;

  server::ModelCard card;
  card.model_id = args.served_model_name.empty() ? args.model : args.served_model_name;
  card.dtype = dtype;
  card.device = args.device;
  card.head = info.head;
  card.pooling = info.pooling == "lasttoken" ? "last_token" : info.pooling;
  card.labels = info.labels;
  card.prompt_names = info.prompt_names;
  card.default_rerank_instruction = info.default_rerank_instruction;
  card.reranker_tokens = info.reranker_tokens;
  card.rerank_template = info.rerank_template;
  card.max_input_length = max_input;
  card.hidden_size = info.hidden_size;
  card.vocab_size = info.vocab_size;
  card.tokenizer_vocab_size = info.tokenizer_vocab_size;
  card.attention_mode = built.attention_mode;
  card.radix_threshold = args.radix_threshold;
  card.prefix_cache_mib = built.prefix_cache ? built.prefix_cache_mib : 0;
  card.cuda_graphs = runtime->records_forwards();
  // Per worker (device): its load and its prefix cache, read at scrape time.
  metrics.register_workers([&runtime_ptr, names = server::worker_labels(built.devices)] {
    std::vector<server::WorkerObservation> out;
    auto* r = runtime_ptr.load();
    if (r == nullptr) return out;
    const std::vector<engine::WorkerLoad> loads = r->worker_loads();
    const std::vector<engine::RunnerCacheStats> caches = r->cache_stats();
    const std::vector<engine::RunnerRecordings> recordings = r->recordings();
    for (size_t w = 0;
         w < loads.size() && w < caches.size() && w < recordings.size() && w < names.size(); ++w) {
      const engine::RunnerCacheStats& c = caches[w];
      out.push_back({names[w], loads[w].busy, loads[w].running_sequences, loads[w].batches,
                     loads[w].prefix_routed_batches, c.enabled, c.budget_bytes, c.bytes, c.nodes,
                     c.lookup_tokens, c.hit_tokens, c.result_hits, c.evicted_nodes,
                     recordings[w].recorded, recordings[w].replayed});
    }
    return out;
  });
  card.auto_truncate = args.auto_truncate;
  card.tokenization_workers = workers;
  card.max_batch_tokens = args.max_batch_tokens;
  card.max_batch_requests = args.max_batch_requests;

  server::ModelService service(core, card);
  const Clock::time_point t_warm = Clock::now();
  if (info.head == "reranker" && info.rerank_template.empty()) {
    log.warn(
        "this reranker has no prompt template: rerank requests answer 424 until one is given "
        "(radix_rerank_template.json in the model folder, or --rerank-template)");
  }
  warm_up(service, core, parse_head_kind(info.head));
  const double warm_seconds = seconds_since(t_warm);
  service.mutable_card().warmup_seconds = warm_seconds;

  server::ServerOptions options;
  options.host = args.host;
  options.port = args.port;
  options.max_concurrent_requests = args.max_concurrent_requests;
  options.max_client_batch_size = args.max_client_batch_size;
  options.payload_limit = args.payload_limit;
  options.api_key = args.api_key;
  options.served_model_name = card.model_id;
  options.header_timeout = seconds_ms(args.header_timeout_s);
  options.keep_alive_timeout = seconds_ms(args.keep_alive_timeout_s);
  options.body_timeout = seconds_ms(args.body_timeout_s);
  options.max_connections = args.max_connections;
  options.cors_allow_origin = args.cors_allow_origin;
  server::HttpServer http(service, metrics, options);
  http.bind();

  if (args.json_output) {
    log.info("ready", {{"model", args.model},
                       {"head", card.head},
                       {"dtype", dtype},
                       {"hidden_size", info.hidden_size},
                       {"layers", built.num_layers},
                       {"max_input_length", max_input},
                       {"device", args.device},
                       {"workers", runtime->num_workers()},
                       {"attention_mode", card.attention_mode},
                       {"radix_threshold", args.radix_threshold},
                       {"prefix_cache_mib", card.prefix_cache_mib},
                       {"max_batch_tokens", args.max_batch_tokens},
                       {"max_batch_requests", args.max_batch_requests},
                       {"max_client_batch_size", args.max_client_batch_size},
                       {"max_concurrent_requests", args.max_concurrent_requests},
                       {"payload_limit", args.payload_limit},
                       {"auto_truncate", args.auto_truncate},
                       {"api_key_required", !args.api_key.empty()},
                       {"tokenization_workers", workers},
                       {"load_seconds", load_seconds},
                       {"warmup_seconds", warm_seconds},
                       {"host", args.host},
                       {"port", http.port()}});
  } else
    std::fprintf(
        stderr,
        "radix serve: model %s (%s head, %s, hidden %d, %d layers, max input %d tokens)\n"
        "  device %s (%zu worker%s), attention %s, radix threshold %.3g\n"
        "  limits: max-batch-tokens %lld, max-batch-requests %s, max-client-batch-size "
        "%zu, max-concurrent-requests %zu, payload-limit %zu bytes, auto-truncate %s%s\n"
        "  tokenization workers %zu; load %.2f s, warm-up %.3f s\n"
        "  listening on http://%s:%d\n",
        args.model.c_str(), card.head.c_str(), dtype.c_str(), info.hidden_size, built.num_layers,
        max_input, args.device.c_str(), runtime->num_workers(),
        runtime->num_workers() == 1 ? "" : "s", card.attention_mode.c_str(), args.radix_threshold,
        static_cast<long long>(args.max_batch_tokens),
        args.max_batch_requests > 0 ? std::to_string(args.max_batch_requests).c_str() : "unlimited",
        args.max_client_batch_size, args.max_concurrent_requests, args.payload_limit,
        args.auto_truncate ? "on" : "off", args.api_key.empty() ? "" : ", api key required",
        workers, load_seconds, warm_seconds, args.host.c_str(), http.port());
  std::fflush(stderr);

  // SIGINT/SIGTERM: refuse new work (503), let in-flight requests finish, then stop. When they
  // have not finished after --drain-timeout, exit anyway: the work in flight is abandoned (a
  // forward pass cannot be interrupted, and waiting for it is what the timeout rules out). A
  // second signal exits at once (in the handler).
  std::atomic<bool> serving_done{false};
  std::thread signal_thread([&] {
    int sig = 0;
    while (!serving_done.load() && (sig = wait_signal(200)) == 0) {
    }
    if (serving_done.load()) return;
    log.info(std::string(sig == SIGINT ? "SIGINT" : "SIGTERM") + ", draining in-flight requests",
             {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
    http.begin_shutdown();
    const Clock::time_point t0 = Clock::now();
    const auto timeout = std::chrono::duration<double>(args.drain_timeout_s);
    const bool drained = http.drain(std::chrono::duration_cast<std::chrono::milliseconds>(timeout));
    char line[96];
    std::snprintf(line, sizeof line, "%s after %.2f s; stopping",
                  drained ? "drained" : "not drained", seconds_since(t0));
    if (!drained) {
      log.warn(line, {{"drained", false}, {"seconds", seconds_since(t0)}});
      std::_Exit(1);
    }
    log.info(line, {{"drained", true}, {"seconds", seconds_since(t0)}});
    http.stop();
  });
  http.serve();
  serving_done.store(true);
  signal_thread.join();
  runtime->shutdown();
  log.info("stopped");
}

// Every serve flag can come from the environment as RADIX_<FLAG> (--max-batch-tokens:
// RADIX_MAX_BATCH_TOKENS); a flag given on the command line wins.
void add_environment_names(CLI::App& cmd) {
  for (CLI::Option* opt : cmd.get_options()) {
    if (opt->get_lnames().empty() || opt->get_lnames()[0] == "help") continue;
    if (!opt->get_envname().empty()) continue;
    std::string env = "RADIX_";
    for (char c : opt->get_lnames()[0]) env += c == '-' ? '_' : static_cast<char>(std::toupper(c));
    opt->envname(env);
  }
}

// TEI's environment names, for containers configured for TEI: MODEL_ID and PORT, used when the
// RADIX_ name is not set. (TEI also reads HOSTNAME, but Docker exports HOSTNAME as the container's
// id in every container, so honouring it would make radix listen on one interface unasked.)
void adopt_tei_environment() {
  for (const auto& [tei, radix] :
       {std::pair{"MODEL_ID", "RADIX_MODEL"}, std::pair{"PORT", "RADIX_PORT"}}) {
    const char* value = std::getenv(tei);
    if (value && *value && !std::getenv(radix)) ::setenv(radix, value, 0);
  }
}

}  // namespace

void add_serve(CLI::App& app) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "serve", "Serve the TEI- and OpenAI-compatible HTTP API (embed, rerank, predict, ...)");
  cmd->add_option("--model,--model-id", args->model,
                  "A Hugging Face model folder, demo (built in), or random:qwen3-0.6b|4b|8b[:head]")
      ->required();
  cmd->add_option(
      "--tokenizer", args->tokenizer,
      "tokenizer.json, a folder with one, or demo (the demo model's); default: the model's own");
  cmd->add_option("--head", args->head, "Override the model's head")
      ->check(CLI::IsMember({"embedding", "reranker", "classifier"}));
  cmd->add_option("--pooling", args->pooling,
                  "Override the model's pooling (1_Pooling): last_token or mean")
      ->check(CLI::IsMember({"lasttoken", "last_token", "mean"}));
  cmd->add_option("--reranker-tokens", args->reranker_tokens,
                  "The reranker's answer tokens, as words of the tokenizer or ids: yes,no scores "
                  "sigmoid(yes - no); one token (e.g. Yes) scores sigmoid(logit). Qwen3: yes,no");
  cmd->add_option("--rerank-template", args->rerank_template,
                  "The reranker's prompt template: a JSON file or inline JSON (default: the "
                  "folder's radix_rerank_template.json, else Qwen3-Reranker's for Qwen3; "
                  "docs/models.md)");
  cmd->add_option("--dtype", args->dtype,
                  "Weights' dtype; what the device runs (cpu: float32, cuda: bfloat16), or fp8 on "
                  "cuda (e4m3 projections with per-channel scales, the rest bfloat16)")
      ->check(CLI::IsMember({"float32", "bfloat16", "float16", "fp8"}));
  add_enforce_eager_option(*cmd, args->enforce_eager);
  auto* prompt_name =
      cmd->add_option("--default-prompt-name", args->default_prompt_name,
                      "The prompt (config_sentence_transformers.json) for requests that name none");
  cmd->add_option("--default-prompt", args->default_prompt,
                  "Text put before inputs of requests that name no prompt")
      ->excludes(prompt_name);
  cmd->add_option("--host,--hostname", args->host, "Address (or name) to listen on")
      ->capture_default_str();
  cmd->add_option("--port", args->port, "Port to listen on")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  cmd->add_option("--max-batch-tokens", args->max_batch_tokens, "Tokens per batch (at least 1)")
      ->check(service_check(service::check_max_batch_tokens, "TOKENS >= 1"))
      ->capture_default_str();
  cmd->add_option("--max-batch-requests", args->max_batch_requests,
                  "Sequences per batch (0: no limit)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--max-client-batch-size", args->max_client_batch_size,
                  "Inputs per client request")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-concurrent-requests", args->max_concurrent_requests,
                  "Requests served at once; beyond it, 429 at once")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--payload-limit", args->payload_limit, "Largest request body in bytes (413)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-input-length", args->max_input_length,
                  "Tokens per input (default: min(model positions, --max-batch-tokens))")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--auto-truncate", args->auto_truncate,
                "Truncate over-long inputs unless a request says \"truncate\": false");
  cmd->add_option("--api-key", args->api_key, "Require Authorization: Bearer <key>")
      ->envname("RADIX_API_KEY");
  cmd->add_option("--prefix-cache-mib", args->prefix_cache_mib,
                  "Prefix cache per device, MiB: K/V of recent batches' prefixes and results of "
                  "exact repeats (-1: on a GPU 1/4 of the memory free after the load, at most "
                  "4096; off on the CPU; 0: off; docs/prefix_cache.md)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{-1}, int64_t{1} << 24));
  cmd->add_option("--radix-threshold", args->radix_threshold,
                  "Fold a batch only when unique/total tokens is below this, in [0, 1] (1: always, "
                  "0: never)")
      ->check(service_check(service::check_radix_threshold, "in [0, 1]"))
      ->capture_default_str();
  cmd->add_option("--attention-mode", args->attention_mode, "off, scatter or tree")
      ->check(CLI::IsMember({"off", "scatter", "tree"}))
      ->capture_default_str();
  cmd->add_option("--device", args->device,
                  "cpu, or cuda:N; a comma-separated list runs one worker per device")
      ->capture_default_str();
  cmd->add_option("--threads", args->threads, "CPU threads for the model (0: all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--tokenization-workers", args->tokenization_workers,
                  "Tokenizer threads (0: cores, at most 8)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--served-model-name", args->served_model_name,
                  "Name in /info and OpenAI responses (default: --model)");
  cmd->add_option("--seed", args->seed, "Seed of random:* weights")->capture_default_str();
  cmd->add_option("--drain-timeout", args->drain_timeout_s,
                  "Seconds to wait for in-flight requests on SIGINT/SIGTERM")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--header-timeout", args->header_timeout_s,
                  "Seconds a new connection has to send its first request head (then closed)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--keep-alive-timeout", args->keep_alive_timeout_s,
                  "Seconds an idle keep-alive connection has to send its next request head")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--body-timeout", args->body_timeout_s,
                  "Seconds a client has to send a request body once its head arrived")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-connections", args->max_connections,
                  "Open connections; at the cap the one idle longest is closed for a new one")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--cors-allow-origin", args->cors_allow_origin,
                  "Answer CORS requests for this origin (or *); default: no CORS headers");
  cmd->add_flag("--json-output", args->json_output, "Log one JSON object per line on stderr");
  add_environment_names(*cmd);  // last: only options added before it get RADIX_* names
  cmd->preparse_callback([](size_t) { adopt_tei_environment(); });
  cmd->callback([args] { run_serve(*args); });
}

}  // namespace radix::cli
