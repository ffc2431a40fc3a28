// Internal to http/server.cc and http/websocket.cc: blocking I/O on a
// connection that a stream thread owns (streams, tunnels, WebSockets).
#pragma once

#include <atomic>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <functional>
#include <string>

#include "http/message.h"

namespace berth::http {

using Strand = boost::asio::strand<boost::asio::io_context::executor_type>;
using Socket = boost::asio::basic_stream_socket<boost::asio::generic::stream_protocol, Strand>;
using NativeRequest = boost::beast::http::request<boost::beast::http::string_body>;

// send()/recv() on a socket with poll(), in slices so that a server stop is
// noticed; a write that makes no progress for `write_timeout_ms` fails.
class RawIo {
 public:
  RawIo(int fd, const std::atomic<bool>* stopping, int write_timeout_ms)
      : fd_(fd), stopping_(stopping), write_timeout_ms_(write_timeout_ms) {}
  bool Write(std::string_view data);
  // See Tunnel::Read.
  long Read(char* buf, size_t size, int timeout_ms);
  // The client closed its side (or the connection broke), checked now.
  bool PeerClosed() const;
  bool stopping() const { return stopping_->load(); }
  int fd() const { return fd_; }

 private:
  int fd_;
  const std::atomic<bool>* stopping_;
  int write_timeout_ms_;
};

class ChunkWriter : public StreamWriter {
 public:
  explicit ChunkWriter(RawIo* io) : io_(io) {}
  bool Write(std::string_view data) override;
  bool Open() override;
  bool ok() const { return ok_; }

 private:
  RawIo* io_;
  bool ok_ = true;
};

class RawTunnel : public Tunnel {
 public:
  RawTunnel(RawIo* io, std::string early) : io_(io), early_(std::move(early)) {}
  long Read(char* buf, size_t size, int timeout_ms) override;
  bool Write(std::string_view data) override { return io_->Write(data); }
  int fd() const override { return io_->fd(); }
  bool Stopping() const override { return io_->stopping(); }

 private:
  RawIo* io_;
  std::string early_;  // bytes the client sent right after the request head
};

// Whether something accepts connections on the Unix socket at `path`.
bool SocketAnswers(const std::string& path);

// Completes the WebSocket handshake of `request` on `socket` and runs `fn`;
// closes the socket when done.
void RunWebSocket(Socket socket, const NativeRequest& request,
                  const std::function<void(WebSocket&)>& fn, const std::atomic<bool>* stopping);

}  // namespace berth::http
