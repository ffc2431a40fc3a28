// A tiny blocking HTTP/1.1 client on raw sockets for the http/ tests: TCP
// or Unix, one reply at a time (Content-Length bodies), with deadlines.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <string>

namespace berth::http::testing {

inline int ConnectTcp(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

inline int ConnectUnix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

inline bool SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Reads what arrives within `timeout_ms` and appends it; 0 on EOF, -1 on an
// error, -2 on a timeout, else the bytes read.
inline long RecvSome(int fd, std::string* buf, int timeout_ms) {
  pollfd p = {fd, POLLIN, 0};
  int r = ::poll(&p, 1, timeout_ms);
  if (r == 0) return -2;
  if (r < 0) return -1;
  char tmp[65536];
  ssize_t n = ::recv(fd, tmp, sizeof(tmp), 0);
  if (n > 0) buf->append(tmp, static_cast<size_t>(n));
  return n;
}

struct Reply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

inline std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Reads one reply head from fd (what is left over stays in *carry). The
// body is read when the reply has a Content-Length.
inline std::optional<Reply> ReadReply(int fd, std::string* carry, int timeout_ms = 5000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto left = [&] {
    return static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                deadline - std::chrono::steady_clock::now())
                                .count());
  };
  size_t end;
  while ((end = carry->find("\r\n\r\n")) == std::string::npos) {
    if (left() <= 0 || RecvSome(fd, carry, left()) <= 0) return std::nullopt;
  }
  Reply r;
  std::string head = carry->substr(0, end);
  carry->erase(0, end + 4);
  r.status = std::atoi(head.substr(9, 3).c_str());
  size_t pos = head.find("\r\n");
  while (pos != std::string::npos) {
    size_t next = head.find("\r\n", pos + 2);
    std::string line =
        head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
    size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string v = line.substr(colon + 1);
      while (!v.empty() && v[0] == ' ') v.erase(0, 1);
      r.headers[Lower(line.substr(0, colon))] = v;
    }
    pos = next;
  }
  if (r.headers.count("content-length")) {
    size_t len = std::stoul(r.headers["content-length"]);
    while (carry->size() < len) {
      if (left() <= 0 || RecvSome(fd, carry, left()) <= 0) return std::nullopt;
    }
    r.body = carry->substr(0, len);
    carry->erase(0, len);
  }
  return r;
}

// One request on a fresh connection; closes it after the reply.
inline std::optional<Reply> Fetch(int fd, const std::string& method, const std::string& target,
                                  const std::string& body = "", const std::string& extra = "",
                                  int timeout_ms = 5000) {
  if (fd < 0) return std::nullopt;
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: test\r\n" + extra;
  if (!body.empty() || method == "POST")
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  std::optional<Reply> r;
  std::string carry;
  if (SendAll(fd, req)) r = ReadReply(fd, &carry, timeout_ms);
  ::close(fd);
  return r;
}

}  // namespace berth::http::testing
