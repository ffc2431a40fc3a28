#include "http/server_io.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/websocket.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "common/clock.h"

namespace berth::http {

namespace {
constexpr int kSliceMs = 200;

int64_t NowMs() { return MonotonicNanos() / 1'000'000; }
}  // namespace

bool RawIo::Write(std::string_view data) {
  int64_t last_progress = NowMs();
  while (!data.empty()) {
    if (stopping()) return false;
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      last_progress = NowMs();
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return false;
    if (NowMs() - last_progress > write_timeout_ms_) return false;
    pollfd p = {fd_, POLLOUT, 0};
    ::poll(&p, 1, kSliceMs);
  }
  return true;
}

long RawIo::Read(char* buf, size_t size, int timeout_ms) {
  int64_t deadline = timeout_ms < 0 ? INT64_MAX : NowMs() + timeout_ms;
  while (true) {
    if (stopping()) return -1;
    ssize_t n = ::recv(fd_, buf, size, MSG_DONTWAIT);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    int64_t left = deadline - NowMs();
    if (left <= 0) return -2;
    pollfd p = {fd_, POLLIN, 0};
    ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, kSliceMs)));
  }
}

bool RawIo::PeerClosed() const {
  char c;
  ssize_t n = ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return true;
  return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

bool ChunkWriter::Write(std::string_view data) {
  if (!ok_) return false;
  if (data.empty()) return ok_ = Open();
  char size[24];
  int len = std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
  std::string chunk;
  chunk.reserve(static_cast<size_t>(len) + data.size() + 2);
  chunk.append(size, static_cast<size_t>(len)).append(data).append("\r\n");
  ok_ = io_->Write(chunk);
  return ok_;
}

bool ChunkWriter::Open() {
  if (ok_ && (io_->stopping() || io_->PeerClosed())) ok_ = false;
  return ok_;
}

long RawTunnel::Read(char* buf, size_t size, int timeout_ms) {
  if (!early_.empty()) {
    size_t n = std::min(size, early_.size());
    std::memcpy(buf, early_.data(), n);
    early_.erase(0, n);
    return static_cast<long>(n);
  }
  return io_->Read(buf, size, timeout_ms);
}

bool SocketAnswers(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
  bool answers = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(fd);
  return answers;
}

namespace {

namespace beast = boost::beast;
namespace websocket = beast::websocket;

class BeastWebSocket : public WebSocket {
 public:
  explicit BeastWebSocket(websocket::stream<Socket>* ws) : ws_(ws) {}
  bool Read(std::string* message, bool* binary) override {
    beast::flat_buffer b;
    beast::error_code ec;
    ws_->read(b, ec);
    if (ec) return false;
    *message = beast::buffers_to_string(b.data());
    if (binary) *binary = ws_->got_binary();
    return true;
  }
  bool Write(std::string_view message, bool binary) override {
    beast::error_code ec;
    ws_->binary(binary);
    ws_->write(boost::asio::buffer(message.data(), message.size()), ec);
    return !ec;
  }
  void Close() override {
    beast::error_code ec;
    if (ws_->is_open()) ws_->close(websocket::close_code::normal, ec);
  }

 private:
  websocket::stream<Socket>* ws_;
};

}  // namespace

void RunWebSocket(Socket socket, const NativeRequest& request,
                  const std::function<void(WebSocket&)>& fn, const std::atomic<bool>* stopping) {
  // Blocking operations from here: the socket belongs to this thread now.
  beast::error_code ec;
  socket.non_blocking(false, ec);
  websocket::stream<Socket> ws(std::move(socket));
  if (!websocket::is_upgrade(request)) {
    static const std::string kBad =
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ";
    std::string body = ErrorBody("invalid_argument", "this route takes a WebSocket upgrade");
    std::string all = kBad + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    boost::asio::write(ws.next_layer(), boost::asio::buffer(all), ec);
    return;
  }
  ws.accept(request, ec);
  if (ec || *stopping) return;
  BeastWebSocket w(&ws);
  fn(w);
  w.Close();
}

}  // namespace berth::http
