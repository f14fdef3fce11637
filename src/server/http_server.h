// The HTTP API: TEI routes (/embed, /rerank, /predict, /tokenize, /decode, /info, /health,
// /metrics), OpenAI-style /v1/embeddings and /v1/rerank, and /openapi.json, over an
// InferenceService. Owns limits (payload, client batch size, concurrency permits), auth, error
// mapping, metrics and the draining shutdown; the sockets are HttpTransport's (Boost.Beast).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "server/concurrency_limiter.h"
#include "server/http_transport.h"
#include "server/inference_service.h"
#include "server/server_metrics.h"

namespace radix::server {

struct ServerOptions {
  std::string host = "0.0.0.0";
  int port = 3000;  // 0: any free port (see HttpServer::port())
  size_t max_concurrent_requests = 512;
  size_t max_client_batch_size = 32;
  size_t payload_limit = 2'000'000;                     // bytes
  std::string api_key;                                  // empty: no auth
  std::string served_model_name;                        // "model" in OpenAI responses
  std::chrono::milliseconds header_timeout{10'000};     // first request head on a connection
  std::chrono::milliseconds keep_alive_timeout{5'000};  // idle + head of each later request
  std::chrono::milliseconds body_timeout{60'000};
  size_t max_connections = 4096;
  std::string cors_allow_origin;  // empty: no CORS headers
};

class HttpServer {
 public:
  HttpServer(InferenceService& service, ServerMetrics& metrics, ServerOptions options);
  ~HttpServer();

  // Binds the listening socket; throws std::runtime_error if it cannot.
  void bind();
  int port() const { return port_; }
  size_t open_connections() const { return http_.open_connections(); }
  // Serves until stop(); call bind() first.
  void serve();

  // Graceful shutdown, step 1: from now on new requests get 503 (and /health too).
  void begin_shutdown() { shutting_down_.store(true); }
  bool shutting_down() const { return shutting_down_.load(); }
  // Step 2: waits for the requests in flight to finish; false on timeout.
  bool drain(std::chrono::milliseconds timeout) { return limiter_.wait_idle(timeout); }
  // Step 3: stops listening and makes serve() return.
  void stop() { http_.stop(); }

 private:
  struct Route;
  Dispatch route(const std::shared_ptr<HttpRequest>& request);
  HttpReply refusal(int status, const std::string& message, std::string_view target);
  void add_cors(HttpReply& reply) const;
  void register_routes();

  InferenceService& service_;
  ServerMetrics& metrics_;
  ServerOptions options_;
  RequestLimits limits_;
  ConcurrencyLimiter limiter_;
  std::vector<Route> routes_;
  HttpTransport http_;
  std::atomic<bool> shutting_down_{false};
  int64_t started_at_ = 0;  // Unix seconds, the "created" of /v1/models
  int port_ = 0;
};

}  // namespace radix::server
