// Test-side HTTP over loopback: a small Beast client (one connection, keep-alive) and raw-socket
// helpers for requests no well-behaved client would send.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace radix::server::http_test {

struct TestResponse {
  int status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  std::string header(const std::string& name) const {
    for (const auto& [k, v] : headers) {
      if (strcasecmp(k.c_str(), name.c_str()) == 0) return v;
    }
    return "";
  }
};

using Headers = std::vector<std::pair<std::string, std::string>>;

// One keep-alive connection; every call times out after 10 s. nullopt: no answer.
class TestClient {
 public:
  explicit TestClient(int port) : port_(port) {}

  std::optional<TestResponse> request(const std::string& method, const std::string& path,
                                      const std::string& body = "", const Headers& headers = {}) {
    namespace http = boost::beast::http;
    try {
      if (!socket_.is_open()) connect();
      http::request<http::string_body> req(http::string_to_verb(method), path, 11);
      req.set(http::field::host, "127.0.0.1");
      if (!body.empty() || method == "POST") {
        req.set(http::field::content_type, "application/json");
        req.body() = body;
      }
      for (const auto& [k, v] : headers) req.set(k, v);
      req.prepare_payload();
      http::write(socket_, req);
      boost::beast::flat_buffer buffer;
      http::response<http::string_body> res;
      http::read(socket_, buffer, res);
      TestResponse out{static_cast<int>(res.result_int()), res.body(), {}};
      for (const auto& f : res) out.headers.emplace_back(f.name_string(), f.value());
      if (!res.keep_alive()) socket_.close();
      return out;
    } catch (const std::exception&) {
      boost::system::error_code ignored;
      socket_.close(ignored);
      return std::nullopt;
    }
  }

 private:
  void connect() {
    boost::asio::ip::tcp::endpoint ep(boost::asio::ip::make_address("127.0.0.1"),
                                      static_cast<unsigned short>(port_));
    socket_.connect(ep);
    const timeval tv{10, 0};
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }

  int port_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_{io_};
};

// A connected loopback socket (blocking), or -1.
inline int connect_raw(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

inline bool send_all(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

// Everything the peer sends until it closes the connection or `timeout` passes; `closed` says
// which.
inline std::string read_until_close(int fd, std::chrono::milliseconds timeout,
                                    bool* closed = nullptr) {
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (closed) *closed = false;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return out;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return out;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      if (closed) *closed = true;
      return out;
    }
    out.append(buf, static_cast<size_t>(n));
  }
}

// How many HTTP responses a byte stream holds (status lines).
inline int count_responses(const std::string& stream) {
  int n = 0;
  for (size_t at = stream.find("HTTP/1.1 "); at != std::string::npos;
       at = stream.find("HTTP/1.1 ", at + 1)) {
    ++n;
  }
  return n;
}

}  // namespace radix::server::http_test
