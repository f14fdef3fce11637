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
#include <cmath>
#include <future>
#include <thread>

#include "common/call_gate.h"
#include "server/api_error.h"
#include "server/http_test_client.h"

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
    card_.max_batch_tokens = 24;
  }
  const ModelCard& card() const override { return card_; }
  bool healthy() const override { return true; }

  // "nan" embeds to NaN, as an overflowing model would.
  EmbedResult embed(const EmbedRequest& r, const CallContext& ctx) override {
    hold(ctx);
    last_truncate = r.truncate;
    EmbedResult out;
    for (const Input& in : r.inputs) {
      const size_t n = in.is_ids ? in.ids.size() : in.text.size();
      if (n > 16 && !r.truncate.value_or(false)) {
        throw ApiError(ErrorType::kValidation, "input too long");
      }
      out.embeddings.push_back(
          {static_cast<float>(n), in.is_ids ? float(in.ids[0]) : float(uint8_t(in.text[0])), 1});
      if (!in.is_ids && in.text == "nan") out.embeddings.back()[2] = std::nanf("");
      out.prompt_tokens += static_cast<int64_t>(n);
    }
    return out;
  }
  // Token t of a text: [byte, t].
  EmbedAllResult embed_all(const EmbedRequest& r, const CallContext& ctx) override {
    hold(ctx);
    EmbedAllResult out;
    for (const Input& in : r.inputs) {
      auto& tokens = out.token_states.emplace_back();
      for (size_t t = 0; t < in.text.size(); ++t) {
        tokens.push_back({float(uint8_t(in.text[t])), float(t)});
      }
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
  std::optional<bool> last_truncate;

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
  std::optional<http_test::TestResponse> get(const std::string& path) {
    return http_test::TestClient(server->port()).request("GET", path);
  }
  std::optional<http_test::TestResponse> post(const std::string& path, const std::string& body,
                                              const http_test::Headers& headers = {}) {
    return http_test::TestClient(server->port()).request("POST", path, body, headers);
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
  // All inputs together within max_batch_tokens (24 here).
  res = post("/tokenize", R"({"inputs": ["aaaaaaaaaaaa", "bbbbbbbbbbbb", "c"]})");
  EXPECT_EQ(res->status, 422);
  EXPECT_NE(res->body.find("at most 24 tokens"), std::string::npos) << res->body;
  EXPECT_EQ(post("/tokenize", R"({"inputs": ["aaaaaaaaaaaa", "bbbbbbbbbbbb"]})")->status, 200);
  res = post("/decode", R"({"ids": [[104, 105], [33]]})");
  EXPECT_EQ(json::parse(res->body), json::parse(R"(["hi", "!"])"));

  res = get("/health");
  EXPECT_EQ(res->status, 200);
  res = get("/info");
  ASSERT_EQ(res->status, 200);
  json info = json::parse(res->body);
  EXPECT_EQ(info["model_id"], "fake");
  EXPECT_EQ(info["max_client_batch_size"], 4);
  EXPECT_EQ(info["model_type"]["embedding"]["pooling"], "last_token");
  res = get("/openapi.json");
  ASSERT_EQ(res->status, 200);
  json api = json::parse(res->body);
  for (const char* p :
       {"/", "/embed", "/embed_all", "/embed_sparse", "/similarity", "/rerank", "/predict",
        "/tokenize", "/decode", "/info", "/health", "/metrics", "/v1/models", "/v1/models/{model}",
        "/v1/embeddings", "/v1/rerank", "/openapi.json"}) {
    EXPECT_TRUE(api["paths"].contains(p)) << p;
  }
  res = get("/metrics");
  ASSERT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("radix_requests_total{route=\"/tokenize\",status=\"200\"} 2"),
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

  res = get("/nope");
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(json::parse(res->body)["error_type"], "NotFound");
}

TEST_F(HttpServerTest, PayloadOverLimitIs413) {
  start();
  const std::string big = R"({"inputs": ")" + std::string(5000, 'a') + R"("})";
  auto res = post("/embed", big);
  ASSERT_TRUE(res);
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
  EXPECT_EQ(get("/info")->status, 401);
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
  EXPECT_EQ(get("/health")->status, 200);  // health needs no permit
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
  EXPECT_EQ(get("/health")->status, 503);
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
  http_test::TestClient c(server->port());
  for (int i = 0; i < 50; ++i) {
    auto res = c.request("POST", "/embed", R"({"inputs": "abc"})");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200);
  }
}

// --- Framing, limits and deadlines, over raw sockets -------------------------------------------

using http_test::connect_raw;
using http_test::count_responses;
using http_test::read_until_close;
using http_test::send_all;

class HttpFramingTest : public HttpServerTest {
 protected:
  // Sends `bytes` on a fresh connection; returns all that comes back until the server closes
  // (or 5 s pass), and whether it closed.
  std::string exchange(const std::string& bytes, bool* closed) {
    const int fd = connect_raw(server->port());
    EXPECT_GE(fd, 0);
    EXPECT_TRUE(send_all(fd, bytes));
    std::string out = read_until_close(fd, 5s, closed);
    ::close(fd);
    return out;
  }
};

TEST_F(HttpFramingTest, BodyOnABodylessMethodIsRefusedNotRunAsTheNextRequest) {
  start();
  const std::string smuggled =
      "POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n\r\n{\"inputs\":\"hi\"}\r\n";
  for (const std::string method : {"GET /health", "OPTIONS /health", "TRACE /", "FOO /health"}) {
    bool closed = false;
    const std::string out = exchange(method + " HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                                         std::to_string(smuggled.size()) + "\r\n\r\n" + smuggled,
                                     &closed);
    EXPECT_EQ(count_responses(out), 1) << method << ":\n" << out;
    EXPECT_EQ(out.rfind("HTTP/1.1 400", 0), 0u) << method << ":\n" << out;
    EXPECT_TRUE(closed) << method;
  }
  // Chunked too.
  bool closed = false;
  const std::string out = exchange(
      "GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
      "GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
      &closed);
  EXPECT_EQ(count_responses(out), 1) << out;
  EXPECT_TRUE(closed);
  // A well-formed pipelined pair is still served in order.
  const std::string pair = exchange(
      "GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: "
      "close\r\n\r\n",
      &closed);
  EXPECT_EQ(count_responses(pair), 2) << pair;
  EXPECT_LT(pair.find("HTTP/1.1 200"), pair.find("HTTP/1.1 404"));
  // HTTP/1.0 without keep-alive: a 1.0 answer, then the server closes.
  const std::string old = exchange("GET /health HTTP/1.0\r\n\r\n", &closed);
  EXPECT_EQ(old.rfind("HTTP/1.0 200", 0), 0u) << old;
  EXPECT_TRUE(closed);
}

TEST_F(HttpFramingTest, BareLfAndOverlongHeadsAreRefusedAndClosed) {
  start();
  const std::string next = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
  bool closed = false;
  std::string out = exchange("GET /health HTTP/1.1\nHost: x\n\n" + next, &closed);
  EXPECT_EQ(count_responses(out), 1) << out;
  EXPECT_EQ(out.rfind("HTTP/1.1 400", 0), 0u) << out;
  EXPECT_TRUE(closed);

  out = exchange(
      "GET /health HTTP/1.1\r\nHost: x\r\nX-Long: " + std::string(40'000, 'a') + "\r\n\r\n" + next,
      &closed);
  EXPECT_EQ(count_responses(out), 1) << out.substr(0, 200);
  EXPECT_EQ(out.rfind("HTTP/1.1 431", 0), 0u) << out.substr(0, 200);
  EXPECT_TRUE(closed);

  // A Transfer-Encoding not ending in chunked: the body's length cannot be known.
  for (const char* te : {"identity", "xchunked", "chunked, identity"}) {
    out = exchange(std::string("POST /embed HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ") + te +
                       "\r\n\r\n0\r\n\r\n" + next,
                   &closed);
    EXPECT_EQ(count_responses(out), 1) << te << ":\n" << out;
    EXPECT_NE(out.find("must end with chunked"), std::string::npos) << te << ":\n" << out;
    EXPECT_TRUE(closed) << te;
  }

  // Content-Length and Transfer-Encoding together: which one frames the body is ambiguous.
  out = exchange(
      "POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\n\r\n" +
          next,
      &closed);
  EXPECT_EQ(count_responses(out), 1) << out;
  EXPECT_EQ(out.rfind("HTTP/1.1 400", 0), 0u) << out;
  EXPECT_TRUE(closed);
}

TEST_F(HttpFramingTest, ChunkedBodyOverThePayloadLimitIs413) {
  start();  // payload limit 4096
  std::string chunks;
  for (int i = 0; i < 20; ++i) chunks += "3e8\r\n" + std::string(1000, 'a') + "\r\n";
  bool closed = false;
  const std::string out = exchange(
      "POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Transfer-Encoding: chunked\r\n\r\n" +
          chunks + "0\r\n\r\n",
      &closed);
  EXPECT_EQ(out.rfind("HTTP/1.1 413", 0), 0u) << out.substr(0, 300);
  EXPECT_NE(out.find("PayloadTooLarge"), std::string::npos);
  EXPECT_TRUE(closed);
  // A chunked body under the limit is served.
  const std::string body = R"({"inputs": "ab"})";
  char size[16];
  std::snprintf(size, sizeof size, "%zx", body.size());
  const std::string ok = exchange(
      "POST /embed HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n" +
          std::string(size) + "\r\n" + body + "\r\n0\r\n\r\n",
      &closed);
  EXPECT_EQ(ok.rfind("HTTP/1.1 200", 0), 0u) << ok;
}

TEST_F(HttpFramingTest, SlowHeadAndSlowBodyAreCutAtTheirDeadlines) {
  ServerOptions o;
  o.header_timeout = 300ms;
  o.body_timeout = 300ms;
  start(o);
  for (const std::string& partial :
       {std::string("GET /hea"),
        std::string("POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"in")}) {
    const int fd = connect_raw(server->port());
    ASSERT_GE(fd, 0);
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(send_all(fd, partial));
    // Trickle a byte now and then, as a slowloris client does: the deadline is for the whole
    // head (or body), not between bytes.
    bool closed = false;
    for (int i = 0; i < 20 && !closed; ++i) {
      read_until_close(fd, 100ms, &closed);
      if (!closed) send_all(fd, "a");
    }
    const auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_TRUE(closed) << partial;
    // The deadline is 300 ms; the bound is loose so that a loaded machine does not fail it.
    EXPECT_LT(took, 1900ms) << partial;
    ::close(fd);
  }
  EXPECT_EQ(get("/health")->status, 200);
}

TEST_F(HttpFramingTest, HealthAnswersWhileIdleConnectionsFillTheCap) {
  ServerOptions o;
  o.max_connections = 32;
  o.header_timeout = 60s;  // the flood would hold its connections for a minute
  start(o);
  std::vector<int> flood;
  for (int i = 0; i < 100; ++i) {
    const int fd = connect_raw(server->port());
    if (fd >= 0) {
      send_all(fd, "GET /health HTTP/1.1\r\nHo");
      flood.push_back(fd);
    }
  }
  for (int i = 0; i < 5; ++i) {
    auto res = get("/health");
    ASSERT_TRUE(res) << "try " << i;
    EXPECT_EQ(res->status, 200);
  }
  EXPECT_LE(server->open_connections(), 32u);
  for (int fd : flood) ::close(fd);
}

TEST_F(HttpFramingTest, APortAnotherServerListensOnIsAStartupError) {
  start();
  ServerOptions o;
  o.host = "127.0.0.1";
  o.port = server->port();
  HttpServer second(service, metrics, o);
  try {
    second.bind();
    FAIL() << "a second server bound port " << o.port;
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("in use"), std::string::npos) << e.what();
  }
  EXPECT_EQ(get("/health")->status, 200);
}

// --- TEI and OpenAI routes clients expect -----------------------------------------------------

TEST_F(HttpServerTest, RootDispatchesOnTheModelAndSimilarityIsCosine) {
  start();
  // An embedding model: "/" embeds, or computes similarity for {source_sentence, sentences}.
  auto res = post("/", R"({"inputs": ["ab"]})");
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(json::parse(res->body), json::parse("[[2, 97, 1]]"));
  res = post("/similarity",
             R"({"inputs": {"source_sentence": "ab", "sentences": ["ab", "b", "abcd"]}})");
  ASSERT_EQ(res->status, 200) << res->body;
  const json sims = json::parse(res->body);
  ASSERT_EQ(sims.size(), 3u);
  // The fake's vectors: ab = [2, 97, 1], b = [1, 98, 1], abcd = [4, 97, 1]; cosines by hand.
  const auto cosine = [](std::vector<double> a, std::vector<double> b) {
    double d = 0, na = 0, nb = 0;
    for (int k = 0; k < 3; ++k) d += a[k] * b[k], na += a[k] * a[k], nb += b[k] * b[k];
    return d / std::sqrt(na * nb);
  };
  EXPECT_NEAR(sims[0].get<double>(), 1.0, 1e-6);  // float32 normalisation: about 1e-7
  EXPECT_NEAR(sims[1].get<double>(), cosine({2, 97, 1}, {1, 98, 1}), 1e-6);
  EXPECT_NEAR(sims[2].get<double>(), cosine({2, 97, 1}, {4, 97, 1}), 1e-6);
  auto root = post("/", R"({"inputs": {"source_sentence": "ab", "sentences": ["b"]}})");
  ASSERT_EQ(root->status, 200);
  EXPECT_EQ(json::parse(root->body).size(), 1u);
  // The source counts towards --max-client-batch-size (4 here).
  res = post("/similarity",
             R"({"inputs": {"source_sentence": "a", "sentences": ["b", "c", "d", "e"]}})");
  EXPECT_EQ(res->status, 422);
  res = post("/similarity", R"({"inputs": {"sentences": ["b"]}})");
  EXPECT_EQ(res->status, 422);
}

TEST_F(HttpServerTest, EmbedAllEmbedSparseAndModels) {
  start();
  auto res = post("/embed_all", R"({"inputs": ["ab", "c"]})");
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(json::parse(res->body), json::parse("[[[97, 0], [98, 1]], [[99, 0]]]"));
  res = post("/embed_sparse", R"({"inputs": "ab"})");
  EXPECT_EQ(res->status, 424);
  EXPECT_EQ(json::parse(res->body)["error"], "Model is not an embedding model with SPLADE pooling");
  res = get("/v1/models");
  ASSERT_EQ(res->status, 200);
  const json models = json::parse(res->body);
  EXPECT_EQ(models["object"], "list");
  ASSERT_EQ(models["data"].size(), 1u);
  EXPECT_EQ(models["data"][0]["object"], "model");
  EXPECT_TRUE(models["data"][0]["created"].is_number_integer());
  EXPECT_EQ(models["data"][0]["id"], "fake");  // no served name given: the card's model id
  res = get("/v1/models/fake");
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(json::parse(res->body)["id"], "fake");
  res = get("/v1/models/other");
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(json::parse(res->body)["error"]["type"], "invalid_request_error");
}

TEST_F(HttpServerTest, NonFiniteResultsAreNever200) {
  start();
  for (const char* path : {"/embed", "/", "/v1/embeddings"}) {
    const std::string body = std::string(path) == "/v1/embeddings" ? R"({"input": ["a", "nan"]})"
                                                                   : R"({"inputs": ["a", "nan"]})";
    auto res = post(path, body);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 424) << path << " " << res->body;
    EXPECT_NE(res->body.find("non-finite"), std::string::npos) << res->body;
    EXPECT_NE(res->body.find("input 1"), std::string::npos) << res->body;
  }
}

TEST_F(HttpServerTest, OpenAIRoutesHonourTruncate) {
  start();
  const std::string long_text(30, 'a');
  auto res = post("/v1/embeddings", R"({"input": ")" + long_text + R"("})");
  EXPECT_EQ(res->status, 422);
  res = post("/v1/embeddings", R"({"input": ")" + long_text + R"(", "truncate": true})");
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(service.last_truncate, true);
}

TEST_F(HttpServerTest, CorsHeadersAndPreflight) {
  ServerOptions o;
  o.cors_allow_origin = "https://app.example";
  start(o);
  auto res = post("/embed", R"({"inputs": "a"})");
  EXPECT_EQ(res->header("Access-Control-Allow-Origin"), "https://app.example");
  res = http_test::TestClient(server->port())
            .request("OPTIONS", "/embed", "", {{"Origin", "https://app.example"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 204);
  EXPECT_NE(res->header("Access-Control-Allow-Methods").find("POST"), std::string::npos);
  EXPECT_EQ(res->header("Access-Control-Allow-Origin"), "https://app.example");
  // Errors carry it too, or a browser hides them from the page.
  EXPECT_EQ(post("/embed", "{")->header("Access-Control-Allow-Origin"), "https://app.example");
}

}  // namespace
}  // namespace radix::server
