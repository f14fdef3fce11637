#include "server/http_transport.h"

#include <poll.h>
#include <sys/socket.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "tokenizer/thread_pool.h"

namespace radix::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using beast::error_code;

bool ClientProbe::gone() const {
  if (fd_ < 0) return false;
  pollfd p{fd_, POLLIN | POLLRDHUP, 0};
  int r;
  do {
    r = ::poll(&p, 1, 0);
  } while (r < 0 && errno == EINTR);
  if (r <= 0) return false;
  if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return true;
  char c;  // readable: a pipelined request, or an orderly close (0 bytes)
  return ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

// Threads start when a job finds none idle, up to the cap, and then stay. The router only hands
// out as many jobs as it has permits, so the cap is never what makes a job wait.
// One connection. Every member is touched on the I/O thread only, except the socket's descriptor,
// which a worker's ClientProbe polls (read-only) while no read is pending.
class HttpTransport::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(HttpTransport& owner, tcp::socket socket) : owner_(owner), stream_(std::move(socket)) {
    ++owner_.live_;
  }
  ~Session() {
    leave_waiting();
    --owner_.live_;
  }

  void start() { read_head(owner_.options_.header_timeout); }

  // Closes the connection; its pending read completes with an error and ends the session.
  void evict() {
    leave_waiting();
    stream_.close();
  }

 private:
  void read_head(std::chrono::milliseconds deadline) {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(owner_.options_.header_limit));
    parser_->body_limit(owner_.options_.payload_limit);
    stream_.expires_after(deadline);
    enter_waiting();
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](error_code ec, std::size_t) { self->on_head(ec); });
  }

  void on_head(error_code ec) {
    leave_waiting();
    if (ec) return on_read_error(ec);
    const auto& head = parser_->get();
    target_ = std::string(head.target());
    // A Transfer-Encoding that does not end in chunked leaves the body's length unknowable
    // (RFC 9112 6.3); a proxy may frame it otherwise, so refuse rather than guess.
    if (head.find(http::field::transfer_encoding) != head.end() && !parser_->chunked()) {
      return refuse(400, "a request's Transfer-Encoding must end with chunked");
    }
    const bool has_body =
        parser_->chunked() || (parser_->content_length() && *parser_->content_length() > 0);
    // Only POST routes take a body. Refusing one elsewhere (rather than reading and ignoring it)
    // keeps a front proxy and radix from ever disagreeing about where the next request starts.
    if (has_body && head.method() != http::verb::post) {
      return refuse(400,
                    "a " + std::string(head.method_string()) + " request must not carry a body");
    }
    if (beast::iequals(head[http::field::expect], "100-continue")) {
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
      stream_.expires_after(owner_.options_.write_timeout);
      http::async_write(stream_, *cont,
                        [self = shared_from_this(), cont](error_code e, std::size_t) {
                          if (e) return self->stream_.close();
                          self->read_body();
                        });
      return;
    }
    read_body();
  }

  void read_body() {
    stream_.expires_after(owner_.options_.body_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](error_code ec, std::size_t) {
                       if (ec) return self->on_read_error(ec);
                       self->dispatch();
                     });
  }

  void on_read_error(error_code ec) {
    if (parser_) target_ = std::string(parser_->get().target());  // for the error's shape
    if (ec == http::error::header_limit) return refuse(431, "request head over the limit");
    if (ec == http::error::body_limit) {
      return refuse(413, "payload over the limit of " +
                             std::to_string(owner_.options_.payload_limit) + " bytes");
    }
    // A clean close, a deadline, an eviction or a reset: nobody to answer (or no way to).
    if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
        ec == beast::error::timeout || ec == net::error::operation_aborted ||
        ec.category() != error_code(http::error::bad_method).category()) {
      return stream_.close();
    }
    refuse(400, "malformed HTTP request: " + ec.message());
  }

  void refuse(int status, const std::string& message) {
    HttpReply reply;
    try {
      reply = owner_.refusal_(status, message, target_);
    } catch (...) {
      reply.status = status;
      reply.content_type = "text/plain";
      reply.body = message;
    }
    write(std::move(reply), /*close=*/true);
  }

  void dispatch() {
    auto request = std::make_shared<HttpRequest>(parser_->release());
    keep_alive_ = request->keep_alive();
    version_ = request->version();
    Dispatch d;
    try {
      d = owner_.router_(request);
    } catch (const std::exception& e) {
      d.now = owner_.refusal_(500, e.what(), target_);
    }
    if (d.now || !d.later)
      return write(d.now ? std::move(*d.now) : make_reply(500, "no answer", "text/plain"), false);
    const ClientProbe probe(stream_.socket().native_handle());
    owner_.workers_->post(
        [self = shared_from_this(), job = std::move(d.later), probe]() mutable {
          HttpReply reply;
          try {
            reply = job(probe);
          } catch (const std::exception& e) {
            reply = self->owner_.refusal_(500, e.what(), self->target_);
          }
          // What the job holds (its concurrency permit) is let go once the answer is written, so
          // that a drain that waits for the permits also waits for the answers.
          net::io_context& io = self->owner_.io_;
          net::post(io, [self = std::move(self), reply = std::move(reply),
                         job = std::move(job)]() mutable {
            self->finished_job_ = std::move(job);
            self->write(std::move(reply), false);
          });
        },
        owner_.options_.max_workers);
  }

  void write(HttpReply reply, bool close) {
    close_ = close || !keep_alive_;
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(version_);
    res->result(static_cast<unsigned>(reply.status));
    if (!reply.content_type.empty()) res->set(http::field::content_type, reply.content_type);
    for (auto& [name, value] : reply.headers) res->set(name, value);
    res->body() = std::move(reply.body);
    res->keep_alive(!close_);
    res->prepare_payload();
    stream_.expires_after(owner_.options_.write_timeout);
    http::async_write(stream_, *res, [self = shared_from_this(), res](error_code ec, std::size_t) {
      self->finished_job_ = nullptr;
      if (ec) return self->stream_.close();
      if (self->close_) return self->linger();
      self->read_head(self->owner_.options_.keep_alive_timeout);
    });
  }

  // After an answer that ends the connection: send FIN, then read and drop what the client is
  // still sending for a moment, so that closing does not reset the connection (a reset can make
  // the client discard the answer unread).
  void linger() {
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(std::chrono::seconds(1));
    drain_left_ = 1 << 20;
    drain();
  }
  void drain() {
    stream_.async_read_some(net::buffer(discard_),
                            [self = shared_from_this()](error_code ec, std::size_t n) {
                              if (ec || n >= self->drain_left_) return self->stream_.close();
                              self->drain_left_ -= n;
                              self->drain();
                            });
  }

  void enter_waiting() {
    if (waiting_) return;
    waiting_ = owner_.waiting_.insert(owner_.waiting_.end(), this);
  }
  void leave_waiting() {
    if (!waiting_) return;
    owner_.waiting_.erase(*waiting_);
    waiting_.reset();
  }

  HttpTransport& owner_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<std::list<Session*>::iterator> waiting_;
  std::string target_;
  std::function<HttpReply(const ClientProbe&)> finished_job_;  // kept until its answer is sent
  bool keep_alive_ = true;
  unsigned version_ = 11;  // of the request being answered (HTTP/1.0 gets 1.0 answers)
  bool close_ = false;
  std::size_t drain_left_ = 0;
  char discard_[16 * 1024];
};

HttpTransport::HttpTransport(TransportOptions options, Router router, Refusal refusal)
    : options_(std::move(options)),
      router_(std::move(router)),
      refusal_(std::move(refusal)),
      acceptor_(io_),
      workers_(std::make_unique<ThreadPool>()) {}

HttpTransport::~HttpTransport() {
  stop();
  // Workers first: a job still running posts its answer to io_, which must outlive it.
  workers_.reset();
}

int HttpTransport::bind() {
  error_code ec;
  net::ip::address address = net::ip::make_address(options_.host, ec);
  if (ec) {
    tcp::resolver resolver(io_);
    auto results = resolver.resolve(options_.host, "", ec);
    if (ec || results.empty()) {
      throw std::runtime_error("cannot resolve --hostname " + options_.host + ": " + ec.message());
    }
    address = results.begin()->endpoint().address();
  }
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(options_.port));
  const std::string where = options_.host + ":" + std::to_string(options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (ec) throw std::runtime_error("cannot open a socket for " + where + ": " + ec.message());
  // SO_REUSEADDR lets a restarted server bind past old TIME_WAIT connections; unlike
  // SO_REUSEPORT it never lets two listeners share the port.
  acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  acceptor_.bind(endpoint, ec);
  if (ec) {
    throw std::runtime_error("cannot listen on " + where + ": " + ec.message() +
                             (ec == net::error::address_in_use
                                  ? " (another process listens there; pick another --port)"
                                  : ""));
  }
  acceptor_.listen(static_cast<int>(std::min<size_t>(options_.max_connections, 4096)), ec);
  if (ec) throw std::runtime_error("cannot listen on " + where + ": " + ec.message());
  return acceptor_.local_endpoint().port();
}

void HttpTransport::serve() {
  accept();
  io_.run();
}

void HttpTransport::stop() {
  net::post(io_, [this] {
    error_code ignored;
    acceptor_.close(ignored);
  });
  io_.stop();
}

void HttpTransport::accept() {
  acceptor_.async_accept(io_, [this](error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      // Out of descriptors or the like: wait a moment instead of spinning.
      auto timer = std::make_shared<net::steady_timer>(io_, std::chrono::milliseconds(50));
      timer->async_wait([this, timer](error_code) { accept(); });
      return;
    }
    admit(std::move(socket));
    accept();
  });
}

void HttpTransport::admit(tcp::socket socket) {
  if (live_.load() >= options_.max_connections) {
    if (waiting_.empty()) {
      error_code ignored;
      socket.close(ignored);
      return;
    }
    waiting_.front()->evict();
  }
  error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  std::make_shared<Session>(*this, std::move(socket))->start();
}

}  // namespace radix::server
