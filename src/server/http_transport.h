// HTTP/1.1 transport on Boost.Beast over Boost.Asio, used only through their public API.
//
// One I/O thread runs every socket asynchronously: accepting, reading heads and bodies under
// deadlines, writing answers. Cheap requests (health, metrics, errors, 429s) are answered on that
// thread; a request that needs the model is handed to a worker thread, which may block for as long
// as the model takes while the I/O thread keeps serving everyone else. So an idle or trickling
// connection costs a socket and a buffer, never a thread, and a flood of them cannot keep /health
// from answering: when the connection cap is reached, the connection that has waited longest for
// its request head is closed to make room for the new one.
//
// Framing is Beast's parser (strict CRLF, one Content-Length or chunked, never both); on top of it
// a body on a method that takes none, a head over the limit or any parse error is answered (400,
// 413, 431) and the connection closed, so no byte after a bad request is ever read as a request.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace radix {
class ThreadPool;
}

namespace radix::server {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;

struct HttpReply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

inline HttpReply make_reply(int status, std::string body, std::string content_type) {
  HttpReply reply;
  reply.status = status;
  reply.body = std::move(body);
  reply.content_type = std::move(content_type);
  return reply;
}

// Tells a worker whether the client of the request it serves has hung up.
class ClientProbe {
 public:
  explicit ClientProbe(int fd) : fd_(fd) {}
  bool gone() const;

 private:
  int fd_;
};

// What the router decides for one request, on the I/O thread (it must not block).
struct Dispatch {
  std::optional<HttpReply> now;                        // answered at once
  std::function<HttpReply(const ClientProbe&)> later;  // or run on a worker thread
};

struct TransportOptions {
  std::string host = "0.0.0.0";
  int port = 0;                                         // 0: any free port
  size_t payload_limit = 2'000'000;                     // body bytes after de-chunking
  size_t header_limit = 16 * 1024;                      // request line and fields
  std::chrono::milliseconds header_timeout{10'000};     // first request head on a connection
  std::chrono::milliseconds keep_alive_timeout{5'000};  // idle + head of each later request
  std::chrono::milliseconds body_timeout{60'000};
  std::chrono::milliseconds write_timeout{60'000};
  size_t max_connections = 4096;
  size_t max_workers = 512;  // the router hands out at most this many `later` jobs at once
};

class HttpTransport {
 public:
  using Router = std::function<Dispatch(const std::shared_ptr<HttpRequest>&)>;
  // The answer to a request the transport refuses itself (400, 413, 431); `target` may be empty.
  using Refusal =
      std::function<HttpReply(int status, const std::string& message, std::string_view target)>;

  HttpTransport(TransportOptions options, Router router, Refusal refusal);
  ~HttpTransport();
  HttpTransport(const HttpTransport&) = delete;
  HttpTransport& operator=(const HttpTransport&) = delete;

  // Binds and listens (SO_REUSEADDR only: a port another process listens on is an error);
  // returns the port. Throws std::runtime_error.
  int bind();
  // Runs the I/O loop until stop().
  void serve();
  // Thread-safe; serve() returns soon after. Workers still running finish on their own.
  void stop();

  size_t open_connections() const { return live_.load(); }

 private:
  class Session;
  void accept();
  void admit(boost::asio::ip::tcp::socket socket);

  TransportOptions options_;
  Router router_;
  Refusal refusal_;
  // Declared before io_ so that sessions destroyed with io_'s pending handlers can still use them.
  std::atomic<size_t> live_{0};
  std::list<Session*> waiting_;  // sessions waiting for a request head, oldest first (I/O thread)
  boost::asio::io_context io_{1};
  boost::asio::ip::tcp::acceptor acceptor_;
  std::unique_ptr<ThreadPool> workers_;  // request jobs that wait for their batch (post)
};

}  // namespace radix::server
