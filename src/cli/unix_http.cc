#include "cli/unix_http.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <strings.h>
#include <cerrno>
#include <cstring>

namespace berth::cli {
namespace {

constexpr size_t kMaxHead = 64 * 1024;
constexpr size_t kReadSize = 64 * 1024;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Reads from a socket into a buffer, with a timeout per read.
class Reader {
 public:
  Reader(int fd, int timeout_ms, std::string where)
      : fd_(fd), timeout_ms_(timeout_ms), where_(std::move(where)) {}

  // Appends what arrives to buf_; 0 at the end of the stream.
  Result<size_t> Fill() {
    struct pollfd p = {fd_, POLLIN, 0};
    int n;
    do {
      n = ::poll(&p, 1, timeout_ms_);
    } while (n < 0 && errno == EINTR);
    if (n == 0) return Unavailable("berthd at " + where_ + " did not answer in time");
    if (n < 0) return Unavailable("reading from " + where_ + ": " + std::strerror(errno));
    char tmp[kReadSize];
    ssize_t got;
    do {
      got = ::recv(fd_, tmp, sizeof tmp, 0);
    } while (got < 0 && errno == EINTR);
    if (got < 0) return Unavailable("reading from " + where_ + ": " + std::strerror(errno));
    buf_.append(tmp, static_cast<size_t>(got));
    return static_cast<size_t>(got);
  }

  // Ensures at least `n` bytes are buffered; false at a premature end.
  Result<bool> Need(size_t n) {
    while (buf_.size() < n) {
      ASSIGN_OR_RETURN(size_t got, Fill());
      if (got == 0) return false;
    }
    return true;
  }

  // The next line (without CRLF); an error when none ends within `max`.
  Result<std::string> Line(size_t max) {
    size_t pos;
    while ((pos = buf_.find("\r\n")) == std::string::npos) {
      if (buf_.size() > max) return Internal("a reply line from " + where_ + " is too long");
      ASSIGN_OR_RETURN(size_t got, Fill());
      if (got == 0) return Unavailable("berthd at " + where_ + " closed the connection early");
    }
    std::string line = buf_.substr(0, pos);
    buf_.erase(0, pos + 2);
    return line;
  }

  std::string& buf() { return buf_; }

 private:
  int fd_;
  int timeout_ms_;
  std::string where_;
  std::string buf_;
};

Status SendAll(int fd, const std::string& data, const std::string& where) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Unavailable("writing to " + where + ": " + std::strerror(errno));
    off += static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace

bool IsUnixUrl(const std::string& url, std::string* path) {
  if (url.rfind(kUnixScheme, 0) != 0) return false;
  std::string p = url.substr(std::strlen(kUnixScheme));
  // unix:///abs/path is accepted too.
  if (p.rfind("//", 0) == 0) p = p.substr(2);
  if (path) *path = p;
  return true;
}

std::string RawReply::Header(const std::string& name) const {
  for (const auto& [k, v] : headers)
    if (::strcasecmp(k.c_str(), name.c_str()) == 0) return v;
  return "";
}

Result<RawReply> UnixHttpRequest(const std::string& socket_path, const RawRequest& req) {
  const std::string where = std::string(kUnixScheme) + socket_path;
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  if (socket_path.empty() || socket_path.size() >= sizeof(addr.sun_path))
    return InvalidArgument("unix socket path \"" + socket_path + "\": must be 1 to 107 bytes long");
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return Unavailable(std::string("socket: ") + std::strerror(errno));
  // A Unix connect completes or fails at once (a full backlog: EAGAIN only
  // for non-blocking sockets), so no timeout is needed here.
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return Unavailable("cannot connect to " + where + ": " + std::strerror(errno));

  std::string head = req.method + " " + req.target + " HTTP/1.1\r\nHost: localhost\r\n";
  head += "Connection: close\r\n";
  bool has_type = false;
  for (const auto& [k, v] : req.headers) {
    if (::strcasecmp(k.c_str(), "Content-Type") == 0) has_type = true;
    head += k + ": " + v + "\r\n";
  }
  if (!req.body.empty() || req.method == "POST" || req.method == "PUT") {
    head += "Content-Length: " + std::to_string(req.body.size()) + "\r\n";
    if (!has_type && !req.body.empty()) head += "Content-Type: application/json\r\n";
  }
  head += "\r\n";
  RETURN_IF_ERROR(SendAll(fd.get(), head + req.body, where));

  Reader in(fd.get(), req.read_timeout_ms, where);
  RawReply reply;
  ASSIGN_OR_RETURN(std::string status_line, in.Line(kMaxHead));
  // "HTTP/1.1 200 OK"
  if (status_line.rfind("HTTP/1.", 0) != 0 || status_line.size() < 12)
    return Internal("not an HTTP reply from " + where + ": \"" + status_line.substr(0, 80) + "\"");
  reply.status = std::atoi(status_line.c_str() + 9);
  size_t head_bytes = status_line.size();
  while (true) {
    ASSIGN_OR_RETURN(std::string line, in.Line(kMaxHead));
    head_bytes += line.size() + 2;
    if (head_bytes > kMaxHead) return Internal("the reply head from " + where + " is too large");
    if (line.empty()) break;
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.erase(0, 1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
    reply.headers.emplace_back(line.substr(0, colon), value);
  }
  if (req.on_head && !req.on_head(reply)) return reply;

  auto deliver = [&](const char* data, size_t n) -> bool {
    if (n == 0) return true;
    if (req.on_data) return req.on_data(data, n);
    reply.body.append(data, n);
    return true;
  };
  if (req.method == "HEAD" || reply.status == 204 || reply.status == 304 || reply.status / 100 == 1)
    return reply;

  std::string te = reply.Header("Transfer-Encoding");
  if (::strcasestr(te.c_str(), "chunked")) {
    while (true) {
      ASSIGN_OR_RETURN(std::string size_line, in.Line(1024));
      char* end = nullptr;
      unsigned long long size = std::strtoull(size_line.c_str(), &end, 16);
      if (end == size_line.c_str())
        return Internal("a bad chunk size from " + where + ": \"" + size_line.substr(0, 40) + "\"");
      if (size == 0) {
        // Trailers, up to the blank line.
        while (true) {
          ASSIGN_OR_RETURN(std::string t, in.Line(kMaxHead));
          if (t.empty()) break;
        }
        return reply;
      }
      ASSIGN_OR_RETURN(bool have, in.Need(size + 2));
      if (!have) return Unavailable("berthd at " + where + " closed the connection mid-reply");
      if (!deliver(in.buf().data(), size)) return reply;
      in.buf().erase(0, size + 2);
    }
  }
  std::string cl = reply.Header("Content-Length");
  if (!cl.empty()) {
    unsigned long long left = std::strtoull(cl.c_str(), nullptr, 10);
    while (left > 0) {
      if (in.buf().empty()) {
        ASSIGN_OR_RETURN(size_t got, in.Fill());
        if (got == 0) return Unavailable("berthd at " + where + " closed the connection mid-reply");
      }
      size_t n = std::min<unsigned long long>(left, in.buf().size());
      if (!deliver(in.buf().data(), n)) return reply;
      in.buf().erase(0, n);
      left -= n;
    }
    return reply;
  }
  // Neither: the body runs to the end of the connection.
  while (true) {
    if (!in.buf().empty()) {
      if (!deliver(in.buf().data(), in.buf().size())) return reply;
      in.buf().clear();
    }
    ASSIGN_OR_RETURN(size_t got, in.Fill());
    if (got == 0) return reply;
  }
}

}  // namespace berth::cli
