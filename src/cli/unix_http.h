// A small HTTP/1.1 client over a Unix stream socket, for talking to berthd
// on the socket in its data directory (where berthd learns the caller's uid
// from the kernel, so no token is needed). cpp-httplib (the TCP client) has
// no AF_UNIX support; this is the little the CLI needs: one request per
// connection (Connection: close), a body of Content-Length, chunked or
// read to the end, and streaming of the body as it arrives.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace berth::cli {

// The address form naming a Unix socket: "unix:/var/lib/berth/berthd.sock".
inline constexpr char kUnixScheme[] = "unix:";

// Whether `url` names a Unix socket ("unix:PATH"); sets `path` when it does.
bool IsUnixUrl(const std::string& url, std::string* path = nullptr);

struct RawReply {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // empty when the body went to on_data
  // The first value of header `name` (case-insensitive), or "".
  std::string Header(const std::string& name) const;
};

struct RawRequest {
  std::string method = "GET";
  std::string target;  // path and query
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  int connect_timeout_ms = 5000;
  int read_timeout_ms = 3600 * 1000;  // between two reads
  // Called once the head has arrived; return false to stop (no body read).
  std::function<bool(const RawReply& head)> on_head;
  // When set, receives the body as it arrives (de-chunked) instead of
  // RawReply::body; return false to stop reading.
  std::function<bool(const char* data, size_t size)> on_data;
};

// Sends `req` on a new connection to the socket at `socket_path`.
// Unavailable naming the socket when it cannot connect or the connection
// breaks; Internal for a reply that is not HTTP.
Result<RawReply> UnixHttpRequest(const std::string& socket_path, const RawRequest& req);

}  // namespace berth::cli
