// HTTP requests and responses as route handlers see them (http::Server).
// Plain data and small interfaces; no Boost types, so api/ and tests include
// this without Beast.
#pragma once

#include <sys/types.h>

#include <any>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace berth::http {

// Header fields in arrival order; names compare case-insensitively.
class Headers {
 public:
  void Add(std::string name, std::string value);
  // Replaces every field called `name` by one.
  void Set(std::string name, std::string value);
  bool Has(std::string_view name) const;
  // The first value of `name`, or `fallback`.
  std::string Get(std::string_view name, std::string fallback = "") const;
  const std::vector<std::pair<std::string, std::string>>& all() const { return fields_; }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// Who is on the other end of the connection. For a Unix socket the kernel's
// credentials of the connecting process (SO_PEERCRED), which a client cannot
// forge; for TCP the remote address only.
struct Peer {
  enum class Kind { kTcp, kUnix };
  Kind kind = Kind::kTcp;
  std::string address;           // TCP: "127.0.0.1:54321" ("[::1]:54321"); Unix: the socket's path
  bool has_credentials = false;  // Unix only
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  pid_t pid = 0;
};

struct Request {
  std::string method;                                      // "GET", "POST", ...
  std::string target;                                      // as sent: path and query
  std::string path;                                        // the target's path, percent-decoded
  std::vector<std::pair<std::string, std::string>> query;  // decoded, in order
  Headers headers;
  std::string body;
  std::map<std::string, std::string> captures;  // {name} segments of the route's pattern
  Peer peer;
  // Set by the application before routing, for its handlers: berthd's API
  // puts the authenticated caller (an auth::Principal) here.
  std::any context;

  bool HasParam(std::string_view name) const;
  // The first value of query parameter `name`, or "".
  std::string Param(std::string_view name) const;
  // The path segment the route's `{name}` matched (decoded), or "".
  std::string Capture(const std::string& name) const;
  bool HasHeader(std::string_view name) const { return headers.Has(name); }
  std::string Header(std::string_view name) const { return headers.Get(name); }
};

// Writes a streamed (chunked) response body: server-sent events, a followed
// log. Each Write sends one chunk at once.
class StreamWriter {
 public:
  virtual ~StreamWriter() = default;
  // False once the client is gone, a write timed out or the server stops;
  // the stream function should then return.
  virtual bool Write(std::string_view data) = 0;
  // Whether the client is still connected and the server still running
  // (checked without blocking).
  virtual bool Open() = 0;
};

// The raw connection after a route took it over (101 Switching Protocols,
// or 200 to a CONNECT): bytes both ways, no HTTP framing.
class Tunnel {
 public:
  virtual ~Tunnel() = default;
  // Reads what is there (waiting up to timeout_ms; -1 forever, until the
  // server stops): >0 bytes read, 0 the client closed, -1 an error or the
  // server stops, -2 nothing arrived in time.
  virtual long Read(char* buf, size_t size, int timeout_ms) = 0;
  virtual bool Write(std::string_view data) = 0;
  // The socket, for poll() beside other descriptors (see Splice).
  virtual int fd() const = 0;
  virtual bool Stopping() const = 0;
};

// Copies bytes both ways between `tunnel` and `fd` until either side closes
// or the server stops. Does not close `fd`.
void Splice(Tunnel& tunnel, int fd);

// One WebSocket connection (RFC 6455), after the server accepted the
// handshake. Blocking; used from the route's own thread.
class WebSocket {
 public:
  virtual ~WebSocket() = default;
  // The next message; false when the peer closed or the server stops.
  virtual bool Read(std::string* message, bool* binary = nullptr) = 0;
  virtual bool Write(std::string_view message, bool binary = false) = 0;
  virtual void Close() = 0;
};

struct Response {
  int status = 200;
  Headers headers;
  std::string body;

  // Set one of these (instead of a body) for a connection that outlives the
  // handler. Each runs on a thread of the server's stream pool (bounded by
  // ServerOptions::max_streams), never on the request workers.
  //  stream: a chunked body (headers and status as set here) written by
  //          the function until it returns.
  //  takeover: after the head (status 101 with the Upgrade headers, or 200
  //          for CONNECT) is sent, the connection is the function's.
  //  websocket: the server completes the WebSocket handshake of the
  //          request, then the connection is the function's.
  std::function<void(StreamWriter&)> stream;
  std::function<void(Tunnel&)> takeover;
  std::function<void(WebSocket&)> websocket;

  void SetContent(std::string content, std::string content_type);
  bool long_lived() const { return stream || takeover || websocket; }
};

// {"error": {"code": CODE, "message": MESSAGE}} with a newline: the body of
// the errors the server and the router answer themselves.
std::string ErrorBody(std::string_view code, std::string_view message);
void SetError(Response& res, int status, std::string_view code, std::string_view message);

// Percent-decoding ('+' as space when `plus_is_space`); false on a bad escape.
bool PercentDecode(std::string_view in, std::string* out, bool plus_is_space);

}  // namespace berth::http
