// A small client for berthd's REST API, used by the berth CLI.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"

namespace httplib {
class Client;
}

namespace berth::cli {

// Who runs this client, as every request tells berthd (X-Berth-User): the OS
// account of the effective uid (getpwuid), never $USER, which may be unset or
// wrong; the uid in digits when it has no account entry.
std::string CallerName();

// Every request carries X-Berth-User: CallerName(), and, inside a task
// (BERTH_JOB_ID set) talking to the daemon that runs it ($BERTH_SERVER),
// X-Berth-Job: that job's id, so that work a task starts acts for the task's
// owner. berthd decides the user from these (docs/api.md). With BERTH_TOKEN
// set, every request also carries "Authorization: Bearer $BERTH_TOKEN"
// (docs/security.md).
class ApiClient {
 public:
  // url: "http://127.0.0.1:7420".
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
  Status ConnectionError(const std::string& what) const;
  std::string url_;
  std::unique_ptr<httplib::Client> http_;
};

}  // namespace berth::cli
