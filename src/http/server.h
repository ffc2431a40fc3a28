// berthd's HTTP/1.1 server (Boost.Beast and Asio, kept inside server.cc).
//
// Listens on any number of TCP endpoints and Unix socket paths. Connections
// are read asynchronously by a few I/O threads: an idle keep-alive
// connection holds no thread. A complete request runs its handler on one of
// `workers` threads (handlers may block: a submission waits for its fsync);
// the reply is written asynchronously. Responses that outlive the handler
// (a stream, a takeover, a WebSocket) run on their own threads, at most
// `max_streams` of them, so open streams never take a worker from ordinary
// requests. Bounds: request head and body sizes (431, 413), the time to
// receive a whole request and how long a keep-alive connection may idle
// (`read_timeout_ms`, against slowloris), the time a write may stall, and
// the number of open connections (503 past it).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "common/status.h"
#include "http/router.h"

namespace berth::http {

struct ServerOptions {
  int workers = 64;    // threads running handlers
  int io_threads = 2;  // threads reading and writing connections
  int max_connections = 4096;
  int max_streams = 512;  // streams, takeovers and WebSockets open at once
  size_t max_body_bytes = 16u << 20;
  size_t max_header_bytes = 64u << 10;
  int read_timeout_ms = 30000;   // a whole request, and an idle keep-alive connection
  int write_timeout_ms = 30000;  // a write that makes no progress
};

// Runs one request (on a worker thread); may move the request's body out.
using ServerHandler = std::function<void(Request&, Response&)>;

class Server {
 public:
  Server(ServerOptions options, ServerHandler handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port (port 0: a free one) with SO_REUSEADDR only (a port
  // another process listens on is an error naming it). Returns the port.
  // Call before Start.
  Result<int> ListenTcp(const std::string& host, int port);
  // Binds a Unix stream socket at `path` and gives it `mode`. A socket file
  // left there is replaced only when nothing answers on it; anything else
  // at the path is an error. The file is removed on Stop.
  Status ListenUnix(const std::string& path, mode_t mode);

  // Starts serving every listener on background threads.
  Status Start();
  // Stops accepting, ends open connections and streams, and waits for the
  // handlers running. Idempotent.
  void Stop();
  // Whether Stop has begun (for handlers that loop).
  bool stopping() const;

  struct Impl;  // server.cc

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth::http
