// The HTTP layer end to end over loopback, with a fake InferenceService: routes, error shapes,
// limits, auth, 429 without queuing, draining shutdown, and disconnect detection.
#include "server/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "common/call_gate.h"
#include "server/api_error.h"

namespace radix::server {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// embed: [len, first byte, 1] per input (normalize ignored); rerank: score = 1/(1+len(text)).
// Calls can be held at a gate; client_gone() is polled while held.
class FakeService : public InferenceService {
 public:
  FakeService() {
    card_.model_id = "fake";
    card_.dtype = "float32";
    card_.device = "cpu";
    card_.head = "embedding";
    card_.pooling = "last_token";
    card_.max_input_length = 16;
    card_.hidden_size = 3;
  }
  const ModelCard& card() const override { return card_; }
  bool healthy() const override { return true; }

  EmbedResult embed(const EmbedRequest& r, const CallContext& ctx) override {
    hold(ctx);
    EmbedResult out;
    for (const Input& in : r.inputs) {
      const size_t n = in.is_ids ? in.ids.size() : in.text.size();
      if (n > 16) throw ApiError(ErrorType::kValidation, "input too long");
      out.embeddings.push_back(
          {static_cast<float>(n), in.is_ids ? float(in.ids[0]) : float(uint8_t(in.text[0])), 1});
      out.prompt_tokens += static_cast<int64_t>(n);
    }
    return out;
  }
  ScoreResult rerank(const RerankRequest& r, const CallContext& ctx) override {
    hold(ctx);
    ScoreResult out;
    for (const auto& t : r.texts) {
      out.scores.push_back(1.0f / (1.0f + static_cast<float>(t.size())));
      out.raw_scores.push_back(-static_cast<float>(t.size()));
    }
    return out;
  }
  PredictResult predict(const PredictRequest&, const CallContext&) override {
    throw ApiError(ErrorType::kBackend, "model is not a classifier model");
  }
  std::vector<std::vector<TokenView>> tokenize(const TokenizeRequest& r) override {
    std::vector<std::vector<TokenView>> out;
    for (const auto& text : r.inputs) {
      auto& tokens = out.emplace_back();
      for (size_t i = 0; i < text.size(); ++i) {
        tokens.push_back(
            {static_cast<int32_t>(uint8_t(text[i])), text.substr(i, 1), false, i, i + 1});
      }
    }
    return out;
  }
  std::vector<std::string> decode(const DecodeRequest& r) override {
    std::vector<std::string> out;
    for (const auto& ids : r.ids) {
      std::string s;
      for (int32_t id : ids) s += static_cast<char>(id);
      out.push_back(s);
    }
    return out;
  }

  testing::CallGate gate;
  std::atomic<int> saw_gone{0};

 private:
  void hold(const CallContext& ctx) {
    if (!gate.pass(ctx.client_gone)) {
      ++saw_gone;
      throw ApiError(ErrorType::kUnhealthy, "client went away");
    }
  }
  ModelCard card_;
};

class HttpServerTest : public ::testing::Test {
 protected:
  void start(ServerOptions options = {}) {
    options.host = "127.0.0.1";
    options.port = 0;
    if (options.max_client_batch_size == 32) options.max_client_batch_size = 4;
    if (options.payload_limit == 2'000'000) options.payload_limit = 4096;
    server = std::make_unique<HttpServer>(service, metrics, options);
    server->bind();
    thread = std::thread([this] { server->serve(); });
  }
  void TearDown() override {
    service.gate.open();
    if (server) server->stop();
    if (thread.joinable()) thread.join();
  }
  httplib::Client client() {
    httplib::Client c("127.0.0.1", server->port());
    c.set_read_timeout(10, 0);
    return c;
  }
  httplib::Result post(const std::string& path, const std::string& body,
                       const httplib::Headers& headers = {}) {
    return client().Post(path.c_str(), headers, body, "application/json");
  }

  FakeService service;
  ServerMetrics metrics{[] { return 0.0; }, [] { return 0.0; }};
  std::unique_ptr<HttpServer> server;
  std::thread thread;
};

TEST_F(HttpServerTest, EmbedAndOpenAIEmbeddings) {
  start();
  auto res = post("/embed", R"({"inputs": ["ab", "c"]})");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(json::parse(res->body), json::parse("[[2, 97, 1], [1, 99, 1]]"));

  res = post("/v1/embeddings", R"({"input": "ab", "model": "m"})");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  const json j = json::parse(res->body);
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["model"], "m");
  EXPECT_EQ(j["data"][0]["object"], "embedding");
  EXPECT_EQ(j["data"][0]["index"], 0);
  EXPECT_EQ(j["data"][0]["embedding"], json::parse("[2, 97, 1]"));
  EXPECT_EQ(j["usage"]["prompt_tokens"], 2);

  res = post("/v1/embeddings", R"({"input": ["ab"], "encoding_format": "base64"})");
  ASSERT_TRUE(res);
  // 2.0f, 97.0f, 1.0f as little-endian float32
  EXPECT_EQ(json::parse(res->body)["data"][0]["embedding"], "AAAAQAAAwkIAAIA/");
}

TEST_F(HttpServerTest, RerankSortsAndV1RerankTopN) {
  start();
  auto res = post("/rerank", R"({"query": "q", "texts": ["aaa", "a", "aa"], "return_text": true})");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  json j = json::parse(res->body);
  ASSERT_EQ(j.size(), 3u);
  EXPECT_EQ(j[0]["index"], 1);
  EXPECT_EQ(j[0]["text"], "a");
  EXPECT_EQ(j[1]["index"], 2);
  EXPECT_EQ(j[2]["index"], 0);
  EXPECT_FLOAT_EQ(j[0]["score"].get<float>(), 0.5f);

  res = post("/rerank", R"({"query": "q", "texts": ["aaa", "a"], "raw_scores": true})");
  j = json::parse(res->body);
  EXPECT_EQ(j[0]["index"], 1);
  EXPECT_FLOAT_EQ(j[0]["score"].get<float>(), -1.0f);
  EXPECT_FALSE(j[0].contains("text"));

  res = post("/v1/rerank",
             R"({"query": "q", "documents": ["aaa", {"text": "a"}, "aa"], "top_n": 2,
                 "return_documents": true})");
  ASSERT_EQ(res->status, 200);
  j = json::parse(res->body);
  ASSERT_EQ(j["results"].size(), 2u);
  EXPECT_EQ(j["results"][0]["index"], 1);
  EXPECT_EQ(j["results"][0]["document"]["text"], "a");
  EXPECT_FLOAT_EQ(j["results"][0]["relevance_score"].get<float>(), 0.5f);
  EXPECT_EQ(j["results"][1]["index"], 2);
}

TEST_F(HttpServerTest, TokenizeDecodeInfoHealthOpenapiMetrics) {
  start();
  auto res = post("/tokenize", R"({"inputs": "hi"})");
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(json::parse(res->body)[0][1],
            json::parse(R"({"id": 105, "text": "i", "special": false, "start": 1, "stop": 2})"));
  res = post("/decode", R"({"ids": [[104, 105], [33]]})");
  EXPECT_EQ(json::parse(res->body), json::parse(R"(["hi", "!"])"));

  auto c = client();
  res = c.Get("/health");
  EXPECT_EQ(res->status, 200);
  res = c.Get("/info");
  ASSERT_EQ(res->status, 200);
  json info = json::parse(res->body);
  EXPECT_EQ(info["model_id"], "fake");
  EXPECT_EQ(info["max_client_batch_size"], 4);
  EXPECT_EQ(info["model_type"]["embedding"]["pooling"], "last_token");
  res = c.Get("/openapi.json");
  ASSERT_EQ(res->status, 200);
  json api = json::parse(res->body);
  for (const char* p : {"/embed", "/rerank", "/predict", "/tokenize", "/decode", "/info", "/health",
                        "/metrics", "/v1/embeddings", "/v1/rerank", "/openapi.json"}) {
    EXPECT_TRUE(api["paths"].contains(p)) << p;
  }
  res = c.Get("/metrics");
  ASSERT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("radix_requests_total{route=\"/tokenize\",status=\"200\"} 1"),
            std::string::npos);
  EXPECT_NE(res->body.find("radix_request_duration_seconds_bucket{route=\"/decode\""),
            std::string::npos);
}

TEST_F(HttpServerTest, ErrorsHaveTeiAndOpenAIShapes) {
  start();
  auto res = post("/embed", R"({"inputs": []})");
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(json::parse(res->body)["error_type"], "Empty");
  res = post("/embed", "{not json");
  EXPECT_EQ(res->status, 400);
  res = post("/embed", R"({"inputs": ["a","b","c","d","e"]})");
  EXPECT_EQ(res->status, 422);
  EXPECT_EQ(json::parse(res->body)["error_type"], "Validation");
  res = post("/embed", "{\"inputs\": \"\xff\"}");
  EXPECT_EQ(res->status, 422);
  res = post("/embed", R"({"inputs": "aaaaaaaaaaaaaaaaaaaaaaaaaa"})");
  EXPECT_EQ(res->status, 422);
  res = post("/predict", R"({"inputs": "a"})");
  EXPECT_EQ(res->status, 424);
  EXPECT_EQ(json::parse(res->body)["error"], "model is not a classifier model");

  res = post("/v1/embeddings", R"({"input": []})");
  EXPECT_EQ(res->status, 400);
  json j = json::parse(res->body);
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_TRUE(j["error"]["message"].is_string());

  res = client().Get("/nope");
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(json::parse(res->body)["error_type"], "NotFound");
}

TEST_F(HttpServerTest, PayloadOverLimitIs413) {
  start();
  const std::string big = R"({"inputs": ")" + std::string(5000, 'a') + R"("})";
  auto res = post("/embed", big);
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 413);
  EXPECT_EQ(json::parse(res->body)["error_type"], "PayloadTooLarge");
  res = post("/v1/embeddings", R"({"input": ")" + std::string(5000, 'a') + R"("})");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  EXPECT_TRUE(json::parse(res->body)["error"].is_object());
  // The server is still fine afterwards.
  EXPECT_EQ(post("/embed", R"({"inputs": "a"})")->status, 200);
}

TEST_F(HttpServerTest, ApiKey) {
  ServerOptions o;
  o.api_key = "s3cret";
  start(o);
  EXPECT_EQ(post("/embed", R"({"inputs": "a"})")->status, 401);
  EXPECT_EQ(post("/embed", R"({"inputs": "a"})", {{"Authorization", "Bearer nope"}})->status, 401);
  EXPECT_EQ(post("/embed", R"({"inputs": "a"})", {{"Authorization", "s3cret"}})->status, 401);
  EXPECT_EQ(post("/embed", R"({"inputs": "a"})", {{"Authorization", "Bearer s3cret"}})->status,
            200);
  auto res = post("/v1/embeddings", R"({"input": "a"})");
  EXPECT_EQ(res->status, 401);
  EXPECT_EQ(json::parse(res->body)["error"]["code"], "invalid_api_key");
  EXPECT_EQ(client().Get("/info")->status, 401);
}

TEST_F(HttpServerTest, NoPermitMeans429AtOnce) {
  ServerOptions o;
  o.max_concurrent_requests = 2;
  start(o);
  service.gate.close();
  auto a = std::async(std::launch::async, [&] { return post("/embed", R"({"inputs": "a"})"); });
  auto b = std::async(std::launch::async, [&] { return post("/embed", R"({"inputs": "b"})"); });
  service.gate.wait_held(2);
  const auto t0 = std::chrono::steady_clock::now();
  auto res = post("/embed", R"({"inputs": "c"})");
  const auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 429);
  EXPECT_EQ(json::parse(res->body)["error_type"], "Overloaded");
  EXPECT_LT(waited, 2s);
  EXPECT_EQ(client().Get("/health")->status, 200);  // health needs no permit
  service.gate.open();
  EXPECT_EQ(a.get()->status, 200);
  EXPECT_EQ(b.get()->status, 200);
  EXPECT_EQ(post("/embed", R"({"inputs": "d"})")->status, 200);
}

TEST_F(HttpServerTest, ShutdownAnswers503AndDrainsInFlight) {
  start();
  service.gate.close();
  auto inflight =
      std::async(std::launch::async, [&] { return post("/embed", R"({"inputs": "a"})"); });
  service.gate.wait_held(1);
  server->begin_shutdown();
  auto res = post("/embed", R"({"inputs": "b"})");
  EXPECT_EQ(res->status, 503);
  EXPECT_EQ(json::parse(res->body)["error_type"], "Unhealthy");
  EXPECT_EQ(client().Get("/health")->status, 503);
  EXPECT_FALSE(server->drain(100ms));  // still one in flight
  service.gate.open();
  EXPECT_TRUE(server->drain(10s));
  EXPECT_EQ(inflight.get()->status, 200);
}

TEST_F(HttpServerTest, ClientThatHangsUpIsNoticed) {
  start();
  service.gate.close();
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server->port()));
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string body = R"({"inputs": "a"})";
  const std::string request =
      "POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
      "\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  ASSERT_EQ(::send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  service.gate.wait_held(1);
  ::close(fd);
  for (int i = 0; i < 500 && service.saw_gone.load() == 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(service.saw_gone.load(), 1);
}

TEST_F(HttpServerTest, KeepAliveConnectionServesManyRequests) {
  start();
  httplib::Client c("127.0.0.1", server->port());
  c.set_keep_alive(true);
  c.set_tcp_nodelay(true);  // httplib sends head and body apart; Nagle would stall them
  for (int i = 0; i < 50; ++i) {
    auto res = c.Post("/embed", R"({"inputs": "abc"})", "application/json");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200);
  }
}

}  // namespace
}  // namespace radix::server
