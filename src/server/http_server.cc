#include "server/http_server.h"

#include <algorithm>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <utility>

#include "server/api_error.h"
#include "server/base64.h"
#include "server/openapi.h"

namespace radix::server {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

enum class Family { kTei, kOpenAI };

constexpr const char* kJson = "application/json";

void set_json(httplib::Response& res, const json& body, int status = 200) {
  res.status = status;
  // Replace (never throw on) invalid UTF-8, e.g. from decoding half of a multi-byte character.
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), kJson);
}

void set_error(httplib::Response& res, Family family, const ApiError& e) {
  set_json(res, family == Family::kOpenAI ? openai_error_body(e) : tei_error_body(e), e.status());
}

Family family_of(const std::string& path) {
  return path.rfind("/v1/", 0) == 0 ? Family::kOpenAI : Family::kTei;
}

const char* const kRoutes[] = {"/embed",         "/rerank",    "/predict",     "/tokenize",
                               "/decode",        "/info",      "/health",      "/metrics",
                               "/v1/embeddings", "/v1/rerank", "/openapi.json"};

// Metric label for a path: the route, or "other" so unknown paths cannot grow the label set.
std::string route_label(const std::string& path) {
  for (const char* r : kRoutes) {
    if (path == r) return r;
  }
  return "other";
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

// Rank order: score descending, input order among equals.
std::vector<size_t> rank_order(const std::vector<float>& scores) {
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  return order;
}

json info_json(const ModelCard& card, const ServerOptions& options) {
  json model_type;
  if (card.head == "embedding") {
    model_type = {{"embedding", {{"pooling", card.pooling}}}};
  } else {
    json id2label = json::object(), label2id = json::object();
    for (size_t i = 0; i < card.labels.size(); ++i) {
      id2label[std::to_string(i)] = card.labels[i];
      label2id[card.labels[i]] = i;
    }
    model_type = {{card.head, {{"id2label", id2label}, {"label2id", label2id}}}};
  }
  json info = {
      {"model_id", card.model_id},
      {"model_sha", nullptr},
      {"model_dtype", card.dtype},
      {"model_type", model_type},
      {"max_concurrent_requests", options.max_concurrent_requests},
      {"max_input_length", card.max_input_length},
      {"max_batch_tokens", card.max_batch_tokens},
      {"max_batch_requests",
       card.max_batch_requests > 0 ? json(card.max_batch_requests) : json(nullptr)},
      {"max_client_batch_size", options.max_client_batch_size},
      {"auto_truncate", card.auto_truncate},
      {"tokenization_workers", card.tokenization_workers},
      {"version", "0.1.0"},
      {"sha", nullptr},
      {"docker_label", nullptr},
      // radix's own
      {"device", card.device},
      {"attention_mode", card.attention_mode},
      {"radix_threshold", card.radix_threshold},
      {"hidden_size", card.hidden_size},
      {"vocab_size", card.vocab_size},
      {"prompts", card.prompt_names},
      {"warmup_seconds", card.warmup_seconds},
  };
  if (card.head == "reranker") info["default_instruction"] = card.default_rerank_instruction;
  return info;
}

}  // namespace

HttpServer::HttpServer(InferenceService& service, ServerMetrics& metrics, ServerOptions options)
    : service_(service),
      metrics_(metrics),
      options_(std::move(options)),
      limiter_(options_.max_concurrent_requests),
      // Permits + room for /health, /metrics, /info and the 429s themselves.
      http_(options_.max_concurrent_requests + 32) {
  if (options_.max_concurrent_requests == 0) {
    throw std::invalid_argument("--max-concurrent-requests must be at least 1");
  }
  limits_.max_client_batch_size = options_.max_client_batch_size;
  http_.set_payload_max_length(options_.payload_limit);
  http_.set_keep_alive_timeout(options_.keep_alive_timeout_s);
  http_.set_keep_alive_max_count(1000);
  http_.set_tcp_nodelay(true);
  register_routes();
}

HttpServer::~HttpServer() { http_.stop(); }

void HttpServer::bind() {
  if (options_.port == 0) {
    port_ = http_.bind_to_any_port(options_.host);
  } else {
    port_ = http_.bind_to_port(options_.host, options_.port) ? options_.port : -1;
  }
  if (port_ <= 0) {
    throw std::runtime_error("cannot listen on " + options_.host + ":" +
                             std::to_string(options_.port) + " (in use, or not an address here)");
  }
  http_.set_listen_backlog(
      static_cast<int>(std::min<size_t>(options_.max_concurrent_requests + 32, 4096)));
}

void HttpServer::serve() { http_.listen_after_bind(); }

void HttpServer::register_routes() {
  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;

  // Every route runs through here: auth, shutdown, permit, errors, metrics.
  auto route = [this](const std::string& path, bool needs_permit, Handler body) -> Handler {
    const Family family = family_of(path);
    return [this, path, needs_permit, family, body = std::move(body)](const httplib::Request& req,
                                                                      httplib::Response& res) {
      const Clock::time_point start = Clock::now();
      try {
        if (!options_.api_key.empty()) {
          const std::string auth = req.get_header_value("Authorization");
          const std::string prefix = "Bearer ";
          if (auth.rfind(prefix, 0) != 0 ||
              !constant_time_equal(auth.substr(prefix.size()), options_.api_key)) {
            throw ApiError(ErrorType::kUnauthorized, "missing or invalid API key");
          }
        }
        if (shutting_down_.load() && path != "/metrics") {
          throw ApiError(ErrorType::kUnhealthy, "the server is shutting down");
        }
        const std::optional<ConcurrencyLimiter::Permit> permit =
            needs_permit ? limiter_.try_acquire() : std::nullopt;
        if (needs_permit) {
          if (!permit) throw ApiError(ErrorType::kOverloaded, "Model is overloaded");
          // Shutdown may have begun between the check above and taking the permit; a request
          // that holds a permit is one drain() waits for, so refuse it here rather than race.
          if (shutting_down_.load()) {
            throw ApiError(ErrorType::kUnhealthy, "the server is shutting down");
          }
        }
        metrics_.inflight += needs_permit ? 1 : 0;
        struct Inflight {
          ServerMetrics& m;
          bool on;
          ~Inflight() { m.inflight -= on ? 1 : 0; }
        } inflight{metrics_, needs_permit};
        body(req, res);
      } catch (const ApiError& e) {
        set_error(res, family, e);
      } catch (const std::exception& e) {
        set_error(res, family, ApiError(ErrorType::kBackend, e.what()));
      }
      if (res.status == -1) res.status = 200;
      metrics_.observe_request(path, res.status,
                               std::chrono::duration<double>(Clock::now() - start).count());
    };
  };
  auto ctx = [] { return CallContext{[] { return TrackedServer::client_gone(); }}; };

  http_.Get("/health", route("/health", false, [this](const auto&, auto& res) {
              if (!service_.healthy())
                throw ApiError(ErrorType::kUnhealthy, "the model is not ready");
              res.status = 200;
              res.set_content("", "text/plain");
            }));

  http_.Get("/info", route("/info", false, [this](const auto&, auto& res) {
              set_json(res, info_json(service_.card(), options_));
            }));

  http_.Get("/metrics", route("/metrics", false, [this](const auto&, auto& res) {
              res.set_content(metrics_.render(), "text/plain; version=0.0.4");
            }));

  http_.Get("/openapi.json", route("/openapi.json", false, [](const auto&, auto& res) {
              set_json(res, openapi_document());
            }));

  http_.Post("/embed", route("/embed", true, [this, ctx](const auto& req, auto& res) {
               const EmbedRequest r = parse_embed_request(req.body, limits_);
               const EmbedResult out = service_.embed(r, ctx());
               set_json(res, out.embeddings);
             }));

  http_.Post(
      "/v1/embeddings", route("/v1/embeddings", true, [this, ctx](const auto& req, auto& res) {
        const OpenAIEmbeddingsRequest r = parse_openai_embeddings_request(req.body, limits_);
        EmbedRequest e;
        e.inputs = r.inputs;
        e.dimensions = r.dimensions;
        const EmbedResult out = service_.embed(e, ctx());
        json data = json::array();
        for (size_t i = 0; i < out.embeddings.size(); ++i) {
          json item = {{"object", "embedding"}, {"index", i}};
          if (r.encoding_format == EncodingFormat::kBase64) {
            item["embedding"] = base64_encode_floats(out.embeddings[i]);
          } else {
            item["embedding"] = out.embeddings[i];
          }
          data.push_back(std::move(item));
        }
        set_json(res,
                 {{"object", "list"},
                  {"data", std::move(data)},
                  {"model", r.model.empty() ? options_.served_model_name : r.model},
                  {"usage",
                   {{"prompt_tokens", out.prompt_tokens}, {"total_tokens", out.prompt_tokens}}}});
      }));

  http_.Post("/rerank", route("/rerank", true, [this, ctx](const auto& req, auto& res) {
               const RerankRequest r = parse_rerank_request(req.body, limits_);
               const ScoreResult out = service_.rerank(r, ctx());
               const std::vector<float>& scores = r.raw_scores ? out.raw_scores : out.scores;
               json ranks = json::array();
               for (size_t i : rank_order(scores)) {
                 json rank = {{"index", i}, {"score", scores[i]}};
                 if (r.return_text) rank["text"] = r.texts[i];
                 ranks.push_back(std::move(rank));
               }
               set_json(res, ranks);
             }));

  http_.Post("/v1/rerank", route("/v1/rerank", true, [this, ctx](const auto& req, auto& res) {
               const OpenAIRerankRequest r = parse_openai_rerank_request(req.body, limits_);
               RerankRequest q;
               q.query = r.query;
               q.texts = r.documents;
               q.instruction = r.instruction;
               const ScoreResult out = service_.rerank(q, ctx());
               const std::vector<size_t> order = rank_order(out.scores);
               const size_t n =
                   std::min(order.size(), r.top_n ? static_cast<size_t>(*r.top_n) : order.size());
               json results = json::array();
               for (size_t k = 0; k < n; ++k) {
                 const size_t i = order[k];
                 json item = {{"index", i}, {"relevance_score", out.scores[i]}};
                 if (r.return_documents) item["document"] = {{"text", r.documents[i]}};
                 results.push_back(std::move(item));
               }
               set_json(
                   res,
                   {{"object", "list"},
                    {"model", r.model.empty() ? options_.served_model_name : r.model},
                    {"results", std::move(results)},
                    {"usage",
                     {{"prompt_tokens", out.prompt_tokens}, {"total_tokens", out.prompt_tokens}}}});
             }));

  http_.Post("/predict", route("/predict", true, [this, ctx](const auto& req, auto& res) {
               const PredictRequest r = parse_predict_request(req.body, limits_);
               const PredictResult out = service_.predict(r, ctx());
               json all = json::array();
               for (size_t i = 0; i < out.probabilities.size(); ++i) {
                 const std::vector<float>& scores =
                     r.raw_scores ? out.logits[i] : out.probabilities[i];
                 json predictions = json::array();
                 for (size_t k : rank_order(scores)) {
                   predictions.push_back({{"score", scores[k]}, {"label", out.labels[k]}});
                 }
                 all.push_back(std::move(predictions));
               }
               set_json(res, r.batched ? all : all.at(0));
             }));

  http_.Post("/tokenize", route("/tokenize", true, [this](const auto& req, auto& res) {
               const TokenizeRequest r = parse_tokenize_request(req.body, limits_);
               json all = json::array();
               for (const auto& tokens : service_.tokenize(r)) {
                 json list = json::array();
                 for (const TokenView& t : tokens) {
                   list.push_back({{"id", t.id},
                                   {"text", t.text},
                                   {"special", t.special},
                                   {"start", t.start ? json(*t.start) : json(nullptr)},
                                   {"stop", t.stop ? json(*t.stop) : json(nullptr)}});
                 }
                 all.push_back(std::move(list));
               }
               set_json(res, all);
             }));

  http_.Post("/decode", route("/decode", true, [this](const auto& req, auto& res) {
               const DecodeRequest r = parse_decode_request(req.body, limits_);
               set_json(res, service_.decode(r));
             }));

  // Errors produced by httplib itself (404, 413 over --payload-limit, 400 unparsable request)
  // get the same JSON bodies as the routes'.
  http_.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req,
                                                                      httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    ErrorType type = ErrorType::kValidation;
    std::string message = "bad request";
    if (res.status == 404) {
      type = ErrorType::kNotFound;
      message = "no route for " + req.method + " " + req.path;
    } else if (res.status == 413) {
      type = ErrorType::kPayloadLarge;
      message = "payload over the limit of " + std::to_string(options_.payload_limit) + " bytes";
    } else if (res.status == 405) {
      message = "method not allowed";
    }
    set_error(res, family_of(req.path), ApiError(type, res.status, message));
    metrics_.observe_request(route_label(req.path), res.status, 0.0);
    return httplib::Server::HandlerResponse::Handled;
  }));
}

}  // namespace radix::server
