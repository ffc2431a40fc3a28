#include "http/message.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace berth::http {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

void Headers::Add(std::string name, std::string value) {
  fields_.emplace_back(std::move(name), std::move(value));
}

void Headers::Set(std::string name, std::string value) {
  std::erase_if(fields_, [&](const auto& f) { return EqualsIgnoreCase(f.first, name); });
  fields_.emplace_back(std::move(name), std::move(value));
}

bool Headers::Has(std::string_view name) const {
  for (const auto& f : fields_)
    if (EqualsIgnoreCase(f.first, name)) return true;
  return false;
}

std::string Headers::Get(std::string_view name, std::string fallback) const {
  for (const auto& f : fields_)
    if (EqualsIgnoreCase(f.first, name)) return f.second;
  return fallback;
}

bool Request::HasParam(std::string_view name) const {
  for (const auto& q : query)
    if (q.first == name) return true;
  return false;
}

std::string Request::Param(std::string_view name) const {
  for (const auto& q : query)
    if (q.first == name) return q.second;
  return "";
}

std::string Request::Capture(const std::string& name) const {
  auto it = captures.find(name);
  return it == captures.end() ? "" : it->second;
}

void Response::SetContent(std::string content, std::string content_type) {
  body = std::move(content);
  headers.Set("Content-Type", std::move(content_type));
}

std::string ErrorBody(std::string_view code, std::string_view message) {
  auto quote = [](std::string_view s) {
    std::string out = "\"";
    for (unsigned char c : s) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += static_cast<char>(c);
      } else if (c < 0x20) {
        char esc[8];
        std::snprintf(esc, sizeof(esc), "\\u%04x", c);
        out += esc;
      } else {
        out += static_cast<char>(c);
      }
    }
    return out + "\"";
  };
  return "{\"error\":{\"code\":" + quote(code) + ",\"message\":" + quote(message) + "}}\n";
}

void SetError(Response& res, int status, std::string_view code, std::string_view message) {
  res.status = status;
  res.SetContent(ErrorBody(code, message), "application/json");
}

bool PercentDecode(std::string_view in, std::string* out, bool plus_is_space) {
  out->clear();
  out->reserve(in.size());
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      int h = hex(in[i + 1]), l = hex(in[i + 2]);
      if (h < 0 || l < 0) return false;
      out->push_back(static_cast<char>(h * 16 + l));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out->push_back(' ');
    } else {
      out->push_back(c);
    }
  }
  return true;
}

void Splice(Tunnel& tunnel, int fd) {
  char buf[16384];
  auto to_fd = [fd](const char* data, long size) {
    for (long off = 0; off < size;) {
      ssize_t w = ::send(fd, data + off, static_cast<size_t>(size - off), MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return false;
      off += w;
    }
    return true;
  };
  // What the client sent with its request comes first (poll() cannot see it).
  for (long got; (got = tunnel.Read(buf, sizeof(buf), 0)) != -2;) {
    if (got <= 0 || !to_fd(buf, got)) return;
  }
  while (!tunnel.Stopping()) {
    pollfd fds[2] = {{tunnel.fd(), POLLIN, 0}, {fd, POLLIN, 0}};
    int n = ::poll(fds, 2, 200);
    if (n < 0 && errno != EINTR) return;
    if (n <= 0) continue;
    if (fds[0].revents) {
      long got = tunnel.Read(buf, sizeof(buf), 0);
      if (got == 0 || got == -1) return;
      if (got > 0 && !to_fd(buf, got)) return;
    }
    if (fds[1].revents) {
      ssize_t got = ::recv(fd, buf, sizeof(buf), 0);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return;
      if (!tunnel.Write(std::string_view(buf, static_cast<size_t>(got)))) return;
    }
  }
}

}  // namespace berth::http
