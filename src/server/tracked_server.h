// cpp-httplib's server, with two additions radix needs:
//  - a handler can ask whether its client has hung up (client_gone()), so a request whose client
//    disconnected stops waiting and its queued work is dropped;
//  - connections are served by a pool that grows on demand up to a cap (instead of a fixed 8
//    threads), so that requests beyond --max-concurrent-requests reach the limiter and get their
//    429 at once instead of queuing behind busy connections.
// It serves each connection itself (keep-alive loop and socket stream) and hands every request to
// httplib's own parser, router and writer.
#pragma once

#include <httplib.h>

#include <cstddef>

namespace radix::server {

class TrackedServer : public httplib::Server {
 public:
  explicit TrackedServer(size_t max_threads);

  // On a handler thread: true when the peer of the connection being served has closed it.
  static bool client_gone();

  // After bind: lengthens the listen queue. httplib's is 5 (compiled into the library), so a burst
  // of new connections overflows it and the kernel drops or resets them: a client sees a 1 s SYN
  // retransmit or a reset instead of its answer (or its 429).
  void set_listen_backlog(int backlog);

 private:
  bool process_and_close_socket(socket_t sock) override;
  bool wait_for_request(socket_t sock) const;
};

}  // namespace radix::server
