// The HTTP API: TEI routes (/embed, /rerank, /predict, /tokenize, /decode, /info, /health,
// /metrics), OpenAI-style /v1/embeddings and /v1/rerank, and /openapi.json, over an
// InferenceService. Owns limits (payload, client batch size, concurrency permits), auth, error
// mapping, metrics and the draining shutdown.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "server/concurrency_limiter.h"
#include "server/inference_service.h"
#include "server/server_metrics.h"
#include "server/tracked_server.h"

namespace radix::server {

struct ServerOptions {
  std::string host = "0.0.0.0";
  int port = 3000;  // 0: any free port (see HttpServer::port())
  size_t max_concurrent_requests = 512;
  size_t max_client_batch_size = 32;
  size_t payload_limit = 2'000'000;  // bytes
  std::string api_key;               // empty: no auth
  std::string served_model_name;     // "model" in OpenAI responses
  int keep_alive_timeout_s = 5;
};

class HttpServer {
 public:
  HttpServer(InferenceService& service, ServerMetrics& metrics, ServerOptions options);
  ~HttpServer();

  // Binds the listening socket; throws std::runtime_error if it cannot.
  void bind();
  int port() const { return port_; }
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
  void register_routes();

  InferenceService& service_;
  ServerMetrics& metrics_;
  ServerOptions options_;
  RequestLimits limits_;
  ConcurrencyLimiter limiter_;
  TrackedServer http_;
  std::atomic<bool> shutting_down_{false};
  int port_ = 0;
};

}  // namespace radix::server
