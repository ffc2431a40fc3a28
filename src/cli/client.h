// A small client for berthd's REST API, used by the berth CLI.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace httplib {
class Client;
}

namespace berth::cli {

// Who runs this client, as every request tells berthd (X-Berth-User): the OS
// account of the effective uid (getpwuid), never $USER, which may be unset or
// wrong; the uid in digits when it has no account entry.
std::string CallerName();

// berthd knows who asks from the connection: on its Unix socket
// ("unix:PATH", the default the CLI finds in the daemon's data directory)
// from the kernel (SO_PEERCRED); over TCP ("http://HOST:PORT", --server or
// BERTH_SERVER) from a token: with BERTH_TOKEN set, every request carries
// "Authorization: Bearer $BERTH_TOKEN" (docs/security.md). A task gets its
// job's token in BERTH_TOKEN, so work it starts acts for its owner.
class ApiClient {
 public:
  // url: "http://127.0.0.1:7420" or "unix:/path/to/berthd.sock".
  explicit ApiClient(std::string url);
  ~ApiClient();

  const std::string& url() const { return url_; }

  // JSON requests. A non-2xx reply becomes a Status carrying the server's
  // error message; a connection failure says how to start the daemon.
  Result<nlohmann::json> Get(const std::string& path);
  Result<nlohmann::json> Post(const std::string& path, const std::string& body,
                              const std::string& content_type = "application/json");
  Result<std::string> GetText(const std::string& path);
  Result<nlohmann::json> Delete(const std::string& path);

  // Reads a paged log route (api/log_pages.h) page by page from its start,
  // handing each page to `out`; `on_gap` hears of output the server no
  // longer has (rotated away). Memory stays one page.
  Status CopyLog(const std::string& path, const std::function<void(const std::string& text)>& out,
                 const std::function<void(int64_t discarded)>& on_gap = nullptr);

  // Follows a server-sent event stream; `on_event(event, data)` returns false
  // to stop. Returns when the server ends the stream.
  Status Stream(
      const std::string& path,
      const std::function<bool(const std::string& event, const std::string& data)>& on_event);

 private:
  struct Reply {
    int status = 0;
    std::string body;
    std::function<std::string(const std::string&)> header;
  };
  // One request over whichever transport url_ names; `on_data` (optional)
  // takes the body as it arrives (return false to stop).
  Result<Reply> Send(const std::string& method, const std::string& path, const std::string& body,
                     const std::string& content_type,
                     const std::function<bool(const char*, size_t)>& on_data = nullptr,
                     const std::vector<std::pair<std::string, std::string>>& extra = {});
  Status ConnectionError(const std::string& what) const;
  std::string url_;
  std::string socket_path_;  // set for a unix: url
  std::vector<std::pair<std::string, std::string>> default_headers_;
  std::unique_ptr<httplib::Client> http_;
};

}  // namespace berth::cli
