#include "server/http_server.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "server/api_error.h"
#include "server/base64.h"
#include "server/json_floats.h"
#include "server/openapi.h"

namespace radix::server {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using Handler = std::function<HttpReply(const HttpRequest&, const CallContext&)>;
namespace http = boost::beast::http;

enum class Family { kTei, kOpenAI };

constexpr const char* kJson = "application/json";

// A body written as JSON text already (json_floats.h), or dumped from `json` below.
HttpReply json_text_reply(std::string body, int status = 200) {
  HttpReply reply;
  reply.status = status;
  reply.body = std::move(body);
  reply.content_type = kJson;
  return reply;
}

HttpReply json_reply(const json& body, int status = 200) {
  // Replace (never throw on) invalid UTF-8, e.g. from decoding half of a multi-byte character.
  return json_text_reply(body.dump(-1, ' ', false, json::error_handler_t::replace), status);
}

HttpReply error_reply(Family family, const ApiError& e) {
  return json_reply(family == Family::kOpenAI ? openai_error_body(e) : tei_error_body(e),
                    e.status());
}

Family family_of(std::string_view path) {
  return path.rfind("/v1/", 0) == 0 ? Family::kOpenAI : Family::kTei;
}

const char* const kRoutes[] = {"/",          "/embed",         "/embed_all",  "/embed_sparse",
                               "/rerank",    "/predict",       "/similarity", "/tokenize",
                               "/decode",    "/info",          "/health",     "/metrics",
                               "/v1/models", "/v1/embeddings", "/v1/rerank",  "/openapi.json"};

// Metric label for a path: the route, or "other" so unknown paths cannot grow the label set.
std::string route_label(std::string_view path) {
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
      {"prefix_cache_mib", card.prefix_cache_mib},
      {"cuda_graphs", card.cuda_graphs},
      {"hidden_size", card.hidden_size},
      {"vocab_size", card.vocab_size},
      {"prompts", card.prompt_names},
      {"warmup_seconds", card.warmup_seconds},
  };
  if (card.head == "reranker") {
    info["default_instruction"] = card.default_rerank_instruction;
    info["reranker_tokens"] = card.reranker_tokens;
    info["rerank_template"] =
        card.rerank_template.empty() ? json(nullptr) : json(card.rerank_template);
  }
  return info;
}

// A model that overflows (NaN or Inf in its weights or activations) must not answer 200 with
// `null`s in the JSON: the client would take them for data.
void check_finite(const std::vector<float>& values, const std::string& what) {
  for (float v : values) {
    if (!std::isfinite(v)) {
      throw ApiError(ErrorType::kBackend, "the model produced a non-finite value (NaN or Inf) in " +
                                              what + "; its weights or activations overflow");
    }
  }
}
std::string of_input(const char* what, size_t i) {
  return std::string("the ") + what + " of input " + std::to_string(i);
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double dot = 0, na = 0, nb = 0;
  for (size_t k = 0; k < a.size() && k < b.size(); ++k) {
    dot += static_cast<double>(a[k]) * b[k];
    na += static_cast<double>(a[k]) * a[k];
    nb += static_cast<double>(b[k]) * b[k];
  }
  return dot / std::max(std::sqrt(na * nb), 1e-24);
}

// The path of a request target, without its query.
std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

}  // namespace

struct HttpServer::Route {
  http::verb method;
  std::string path;
  bool needs_permit;  // model work: runs on a worker thread, holding a concurrency permit
  Handler handler;
  bool prefix = false;  // `path` is a prefix (a route with an id after it)

  bool matches(std::string_view p) const {
    return prefix ? p.size() > path.size() && p.substr(0, path.size()) == path : p == path;
  }
};

HttpServer::HttpServer(InferenceService& service, ServerMetrics& metrics, ServerOptions options)
    : service_(service),
      metrics_(metrics),
      options_(std::move(options)),
      limiter_(options_.max_concurrent_requests),
      http_(
          [this] {
            TransportOptions t;
            t.host = options_.host;
            t.port = options_.port;
            t.payload_limit = options_.payload_limit;
            t.header_timeout = options_.header_timeout;
            t.keep_alive_timeout = options_.keep_alive_timeout;
            t.body_timeout = options_.body_timeout;
            t.max_connections = options_.max_connections;
            t.max_workers = options_.max_concurrent_requests;
            return t;
          }(),
          [this](const std::shared_ptr<HttpRequest>& r) { return route(r); },
          [this](int status, const std::string& message, std::string_view target) {
            return refusal(status, message, target);
          }) {
  if (options_.max_concurrent_requests == 0) {
    throw std::invalid_argument("--max-concurrent-requests must be at least 1");
  }
  limits_.max_client_batch_size = options_.max_client_batch_size;
  started_at_ = static_cast<int64_t>(std::time(nullptr));
  if (options_.served_model_name.empty()) options_.served_model_name = service_.card().model_id;
  register_routes();
}

HttpServer::~HttpServer() { http_.stop(); }

void HttpServer::bind() { port_ = http_.bind(); }

void HttpServer::serve() { http_.serve(); }

void HttpServer::add_cors(HttpReply& reply) const {
  if (options_.cors_allow_origin.empty()) return;
  reply.headers.emplace_back("Access-Control-Allow-Origin", options_.cors_allow_origin);
  if (options_.cors_allow_origin != "*") reply.headers.emplace_back("Vary", "Origin");
}

HttpReply HttpServer::refusal(int status, const std::string& message, std::string_view target) {
  ErrorType type = ErrorType::kValidation;
  if (status == 413) type = ErrorType::kPayloadLarge;
  if (status >= 500) type = ErrorType::kBackend;
  const std::string_view path = path_of(target);
  HttpReply reply = error_reply(family_of(path), ApiError(type, status, message));
  add_cors(reply);
  metrics_.observe_request(route_label(path), status, 0.0);
  return reply;
}

// On the I/O thread: everything here is quick. Model work is handed back as `later`.
Dispatch HttpServer::route(const std::shared_ptr<HttpRequest>& request) {
  const Clock::time_point start = Clock::now();
  const std::string path(path_of(request->target()));
  const Family family = family_of(path);
  auto answer = [&](HttpReply reply, const std::string& label) {
    add_cors(reply);
    metrics_.observe_request(label, reply.status,
                             std::chrono::duration<double>(Clock::now() - start).count());
    Dispatch d;
    d.now = std::move(reply);
    return d;
  };

  if (request->method() == http::verb::options && !options_.cors_allow_origin.empty()) {
    HttpReply preflight = make_reply(204, "", "");
    preflight.headers = {{"Access-Control-Allow-Methods", "GET, POST, OPTIONS"},
                         {"Access-Control-Allow-Headers", "Authorization, Content-Type"},
                         {"Access-Control-Max-Age", "600"}};
    return answer(std::move(preflight), route_label(path));
  }
  const Route* found = nullptr;
  for (const Route& r : routes_) {
    if (r.matches(path) && r.method == request->method()) found = &r;
  }
  if (!found) {
    return answer(
        error_reply(family,
                    ApiError(ErrorType::kNotFound,
                             "no route for " + std::string(request->method_string()) + " " + path)),
        "other");
  }
  try {
    if (!options_.api_key.empty()) {
      const std::string_view auth = (*request)[http::field::authorization];
      const std::string_view prefix = "Bearer ";
      if (auth.substr(0, prefix.size()) != prefix ||
          !constant_time_equal(std::string(auth.substr(prefix.size())), options_.api_key)) {
        throw ApiError(ErrorType::kUnauthorized, "missing or invalid API key");
      }
    }
    if (shutting_down_.load() && path != "/metrics") {
      throw ApiError(ErrorType::kUnhealthy, "the server is shutting down");
    }
    if (!found->needs_permit) {
      return answer(found->handler(*request, CallContext{}), found->path);
    }
    std::optional<ConcurrencyLimiter::Permit> permit = limiter_.try_acquire();
    if (!permit) throw ApiError(ErrorType::kOverloaded, "Model is overloaded");
    // Shutdown may have begun between the check above and taking the permit; a request that
    // holds a permit is one drain() waits for, so refuse it here rather than race.
    if (shutting_down_.load()) throw ApiError(ErrorType::kUnhealthy, "the server is shutting down");
    metrics_.inflight += 1;
    auto held = std::make_shared<ConcurrencyLimiter::Permit>(std::move(*permit));
    Dispatch d;
    d.later = [this, request, route = found, family, start,
               held = std::move(held)](const ClientProbe& probe) {
      HttpReply reply;
      try {
        reply = route->handler(*request, CallContext{[probe] { return probe.gone(); }});
      } catch (const ApiError& e) {
        reply = error_reply(family, e);
      } catch (const std::exception& e) {
        reply = error_reply(family, ApiError(ErrorType::kBackend, e.what()));
      }
      add_cors(reply);
      metrics_.inflight -= 1;
      metrics_.observe_request(route->path, reply.status,
                               std::chrono::duration<double>(Clock::now() - start).count());
      return reply;
    };
    return d;
  } catch (const ApiError& e) {
    return answer(error_reply(family, e), found->path);
  } catch (const std::exception& e) {
    return answer(error_reply(family, ApiError(ErrorType::kBackend, e.what())), found->path);
  }
}

void HttpServer::register_routes() {
  auto get = [this](const std::string& path, Handler h) {
    routes_.push_back({http::verb::get, path, false, std::move(h)});
  };
  auto post = [this](const std::string& path, Handler h) {
    routes_.push_back({http::verb::post, path, true, std::move(h)});
  };

  get("/health", [this](const HttpRequest&, const CallContext&) {
    if (!service_.healthy()) throw ApiError(ErrorType::kUnhealthy, "the model is not ready");
    return make_reply(200, "", "text/plain");
  });

  get("/info", [this](const HttpRequest&, const CallContext&) {
    json info = info_json(service_.card(), options_);
    // Several workers: each one's load and prefix cache (docs/server.md).
    if (const auto workers = metrics_.workers(); workers.size() > 1) {
      json list = json::array();
      for (const WorkerObservation& w : workers) {
        list.push_back({{"worker", w.name},
                        {"busy", w.busy},
                        {"running_sequences", w.running_sequences},
                        {"batches", w.batches},
                        {"prefix_routed_batches", w.prefix_routed_batches},
                        {"prefix_cache_bytes", w.cache_bytes},
                        {"prefix_cache_nodes", w.cache_nodes},
                        {"prefix_cache_lookup_tokens", w.lookup_tokens},
                        {"prefix_cache_hit_tokens", w.hit_tokens},
                        {"prefix_cache_evicted_nodes", w.evicted_nodes}});
      }
      info["workers"] = std::move(list);
    }
    return json_reply(info);
  });

  get("/metrics", [this](const HttpRequest&, const CallContext&) {
    return make_reply(200, metrics_.render(), "text/plain; version=0.0.4");
  });

  // OpenAI's model list (client.models.list()): the one model served.
  get("/v1/models", [this](const HttpRequest&, const CallContext&) {
    return json_reply({{"object", "list"},
                       {"data",
                        {{{"id", options_.served_model_name},
                          {"object", "model"},
                          {"created", started_at_},
                          {"owned_by", "radix"}}}}});
  });

  // client.models.retrieve(id)
  routes_.push_back(
      {http::verb::get, "/v1/models/", false,
       [this](const HttpRequest& req, const CallContext&) {
         const std::string id(path_of(req.target()).substr(std::string_view("/v1/models/").size()));
         if (id != options_.served_model_name) {
           throw ApiError(ErrorType::kNotFound, "no model `" + id + "` here; this server serves `" +
                                                    options_.served_model_name + "`");
         }
         return json_reply(
             {{"id", id}, {"object", "model"}, {"created", started_at_}, {"owned_by", "radix"}});
       },
       /*prefix=*/true});

  get("/openapi.json", [this](const HttpRequest&, const CallContext&) {
    return json_reply(openapi_document(service_.card(), limits_, options_.served_model_name));
  });

  auto embed = [this](std::string_view body, const CallContext& ctx) {
    const EmbedRequest r = parse_embed_request(body, limits_);
    const EmbedResult out = service_.embed(r, ctx);
    for (size_t i = 0; i < out.embeddings.size(); ++i)
      check_finite(out.embeddings[i], of_input("embedding", i));
    return json_text_reply(json_float_rows(out.embeddings));
  };
  auto similarity = [this](std::string_view body, const CallContext& ctx) {
    const SimilarityRequest r = parse_similarity_request(body, limits_);
    EmbedRequest e;
    e.inputs.push_back({r.source_sentence, {}, false});
    for (const std::string& s : r.sentences) e.inputs.push_back({s, {}, false});
    e.truncate = r.truncate;
    e.truncation_direction = r.truncation_direction;
    e.prompt_name = r.prompt_name;
    e.normalize = false;  // the cosine below divides by the norms
    const EmbedResult out = service_.embed(e, ctx);
    for (size_t i = 0; i < out.embeddings.size(); ++i) {
      check_finite(out.embeddings[i], of_input("embedding", i));
    }
    json scores = json::array();
    const std::vector<float>& source = out.embeddings.at(0);
    for (size_t i = 1; i < out.embeddings.size(); ++i) {
      scores.push_back(json_number(static_cast<float>(cosine(source, out.embeddings[i]))));
    }
    return json_reply(scores);
  };
  auto rerank = [this](std::string_view body, const CallContext& ctx) {
    const RerankRequest r = parse_rerank_request(body, limits_);
    const ScoreResult out = service_.rerank(r, ctx);
    const std::vector<float>& scores = r.raw_scores ? out.raw_scores : out.scores;
    check_finite(scores, "the scores");
    json ranks = json::array();
    for (size_t i : rank_order(scores)) {
      json rank = {{"index", i}, {"score", json_number(scores[i])}};
      if (r.return_text) rank["text"] = r.texts[i];
      ranks.push_back(std::move(rank));
    }
    return json_reply(ranks);
  };
  // Every input's predictions, highest first; `batched` says whether the caller asked for a list.
  auto predict = [this](std::string_view body, const CallContext& ctx, bool* batched) {
    const PredictRequest r = parse_predict_request(body, limits_);
    const PredictResult out = service_.predict(r, ctx);
    json all = json::array();
    for (size_t i = 0; i < out.probabilities.size(); ++i) {
      const std::vector<float>& scores = r.raw_scores ? out.logits[i] : out.probabilities[i];
      check_finite(scores, of_input("scores", i));
      json predictions = json::array();
      for (size_t k : rank_order(scores)) {
        predictions.push_back({{"score", json_number(scores[k])}, {"label", out.labels[k]}});
      }
      all.push_back(std::move(predictions));
    }
    *batched = r.batched;
    return all;
  };

  post("/embed",
       [embed](const HttpRequest& req, const CallContext& ctx) { return embed(req.body(), ctx); });

  post("/similarity", [this, similarity](const HttpRequest& req, const CallContext& ctx) {
    if (service_.card().head != "embedding") {
      throw ApiError(ErrorType::kBackend, "model is not an embedding model");
    }
    return similarity(req.body(), ctx);
  });

  post("/embed_all", [this](const HttpRequest& req, const CallContext& ctx) {
    const EmbedRequest r = parse_embed_request(req.body(), limits_);
    const EmbedAllResult out = service_.embed_all(r, ctx);
    for (size_t i = 0; i < out.token_states.size(); ++i) {
      for (const auto& token : out.token_states[i])
        check_finite(token, of_input("hidden states", i));
    }
    return json_text_reply(json_float_rows(out.token_states));
  });

  post("/embed_sparse", [this](const HttpRequest& req, const CallContext&) -> HttpReply {
    parse_embed_request(req.body(), limits_);  // a bad body is still a 4xx
    // TEI's answer for a model without SPLADE pooling; radix serves no SPLADE model.
    throw ApiError(ErrorType::kBackend, "Model is not an embedding model with SPLADE pooling");
  });

  // TEI's route that dispatches on the model: what huggingface_hub.InferenceClient posts to
  // (feature_extraction and sentence_similarity on an embedding model, text_classification on a
  // classifier).
  post("/",
       [this, embed, similarity, rerank, predict](const HttpRequest& req, const CallContext& ctx) {
         const std::string& head = service_.card().head;
         if (head == "reranker") return rerank(req.body(), ctx);
         if (head == "classifier") {
           bool batched = false;
           // Always a list per input, as the Hub's text-classification answers.
           return json_reply(predict(req.body(), ctx, &batched));
         }
         const json doc = json::parse(req.body(), nullptr, /*allow_exceptions=*/false);
         if (doc.is_object() && doc.contains("inputs") && doc["inputs"].is_object()) {
           return similarity(req.body(), ctx);
         }
         return embed(req.body(), ctx);
       });

  post("/v1/embeddings", [this](const HttpRequest& req, const CallContext& ctx) {
    const OpenAIEmbeddingsRequest r = parse_openai_embeddings_request(req.body(), limits_);
    EmbedRequest e;
    e.inputs = r.inputs;
    e.dimensions = r.dimensions;
    e.truncate = r.truncate;
    e.truncation_direction = r.truncation_direction;
    const EmbedResult out = service_.embed(e, ctx);
    // Written as text: the float lists in their shortest float32 form (json_floats.h).
    std::string body = R"({"object":"list","data":[)";
    for (size_t i = 0; i < out.embeddings.size(); ++i) {
      check_finite(out.embeddings[i], of_input("embedding", i));
      if (i > 0) body += ',';
      body += R"({"object":"embedding","index":)" + std::to_string(i) + R"(,"embedding":)";
      if (r.encoding_format == EncodingFormat::kBase64) {
        body += '"' + base64_encode_floats(out.embeddings[i]) + '"';
      } else {
        append_json_floats(body, out.embeddings[i]);
      }
      body += '}';
    }
    const json model = r.model.empty() ? options_.served_model_name : r.model;
    const std::string tokens = std::to_string(out.prompt_tokens);
    body += R"(],"model":)" + model.dump(-1, ' ', false, json::error_handler_t::replace) +
            R"(,"usage":{"prompt_tokens":)" + tokens + R"(,"total_tokens":)" + tokens + "}}";
    return json_text_reply(std::move(body));
  });

  post("/rerank", [rerank](const HttpRequest& req, const CallContext& ctx) {
    return rerank(req.body(), ctx);
  });

  post("/v1/rerank", [this](const HttpRequest& req, const CallContext& ctx) {
    const OpenAIRerankRequest r = parse_openai_rerank_request(req.body(), limits_);
    RerankRequest q;
    q.query = r.query;
    q.texts = r.documents;
    q.instruction = r.instruction;
    q.truncate = r.truncate;
    q.truncation_direction = r.truncation_direction;
    const ScoreResult out = service_.rerank(q, ctx);
    check_finite(out.scores, "the scores");
    const std::vector<size_t> order = rank_order(out.scores);
    const size_t n = std::min(order.size(), r.top_n ? static_cast<size_t>(*r.top_n) : order.size());
    json results = json::array();
    for (size_t k = 0; k < n; ++k) {
      const size_t i = order[k];
      json item = {{"index", i}, {"relevance_score", json_number(out.scores[i])}};
      if (r.return_documents) item["document"] = {{"text", r.documents[i]}};
      results.push_back(std::move(item));
    }
    return json_reply(
        {{"object", "list"},
         {"model", r.model.empty() ? options_.served_model_name : r.model},
         {"results", std::move(results)},
         {"usage", {{"prompt_tokens", out.prompt_tokens}, {"total_tokens", out.prompt_tokens}}}});
  });

  post("/predict", [predict](const HttpRequest& req, const CallContext& ctx) {
    bool batched = false;
    json all = predict(req.body(), ctx, &batched);
    return json_reply(batched ? all : all.at(0));
  });

  post("/tokenize", [this](const HttpRequest& req, const CallContext&) {
    const TokenizeRequest r = parse_tokenize_request(req.body(), limits_);
    const std::vector<std::vector<TokenView>> tokenized = service_.tokenize(r);
    // Each input is within --max-input-length (the service checks); all of them together within
    // --max-batch-tokens, so the answer (tens of bytes a token) stays small.
    size_t total = 0;
    for (const auto& tokens : tokenized) total += tokens.size();
    const int64_t cap = service_.card().max_batch_tokens;
    if (cap > 0 && total > static_cast<size_t>(cap)) {
      throw ApiError(ErrorType::kValidation,
                     "a tokenize request may hold at most " + std::to_string(cap) +
                         " tokens in all (--max-batch-tokens); these inputs have " +
                         std::to_string(total));
    }
    json all = json::array();
    for (const auto& tokens : tokenized) {
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
    return json_reply(all);
  });

  post("/decode", [this](const HttpRequest& req, const CallContext&) {
    const DecodeRequest r = parse_decode_request(req.body(), limits_);
    return json_reply(service_.decode(r));
  });
}

}  // namespace radix::server
