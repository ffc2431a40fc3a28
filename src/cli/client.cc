#include "cli/client.h"

#include <httplib.h>
#include <pwd.h>
#include <unistd.h>

#include <cstdlib>

namespace berth::cli {
namespace {

Status FromReply(int status, const std::string& body) {
  std::string message = body;
  StatusCode code = StatusCode::kInternal;
  try {
    auto j = nlohmann::json::parse(body);
    if (j.contains("error")) {
      message = j["error"].value("message", body);
      std::string c = j["error"].value("code", "");
      for (StatusCode sc :
           {StatusCode::kInvalidArgument, StatusCode::kNotFound, StatusCode::kAlreadyExists,
            StatusCode::kFailedPrecondition, StatusCode::kUnschedulable, StatusCode::kUnavailable,
            StatusCode::kInternal, StatusCode::kIo, StatusCode::kUnauthenticated,
            StatusCode::kPermissionDenied}) {
        if (c == StatusCodeName(sc)) code = sc;
      }
    }
  } catch (const std::exception&) {
    message = "HTTP " + std::to_string(status) + ": " + body;
  }
  return Status(code, message);
}

}  // namespace

std::string CallerName() {
  uid_t uid = ::geteuid();
  if (struct passwd* pw = ::getpwuid(uid); pw && pw->pw_name && *pw->pw_name) return pw->pw_name;
  return std::to_string(uid);
}

ApiClient::ApiClient(std::string url) : url_(std::move(url)) {
  while (!url_.empty() && url_.back() == '/') url_.pop_back();
  http_ = std::make_unique<httplib::Client>(url_);
  http_->set_tcp_nodelay(true);
  http_->set_connection_timeout(5, 0);
  http_->set_read_timeout(3600, 0);
  http_->set_keep_alive(true);
  httplib::Headers who = {{"X-Berth-User", CallerName()}};
  // X-Berth-Job means something only to the daemon that runs the task (the
  // one its BERTH_SERVER names); elsewhere the OS account speaks alone.
  std::string task_server = std::getenv("BERTH_SERVER") ? std::getenv("BERTH_SERVER") : "";
  while (!task_server.empty() && task_server.back() == '/') task_server.pop_back();
  const char* job = std::getenv("BERTH_JOB_ID");
  if (job && *job && task_server == url_) who.emplace("X-Berth-Job", job);
  if (const char* token = std::getenv("BERTH_TOKEN"); token && *token)
    who.emplace("Authorization", std::string("Bearer ") + token);
  http_->set_default_headers(std::move(who));
}

ApiClient::~ApiClient() = default;

Status ApiClient::ConnectionError(const std::string& what) const {
  return Unavailable(
      "cannot reach berthd at " + url_ + " (" + what +
      "); start it with `berth up`, or point --server, BERTH_SERVER or BERTH_DATA_DIR at it");
}

Result<nlohmann::json> ApiClient::Get(const std::string& path) {
  auto res = http_->Get(path.c_str());
  if (!res) return ConnectionError(httplib::to_string(res.error()));
  if (res->status / 100 != 2) return FromReply(res->status, res->body);
  try {
    return nlohmann::json::parse(res->body);
  } catch (const std::exception& e) {
    return Internal(std::string("unreadable reply from berthd: ") + e.what());
  }
}

Result<nlohmann::json> ApiClient::Post(const std::string& path, const std::string& body,
                                       const std::string& content_type) {
  auto res = http_->Post(path.c_str(), body, content_type.c_str());
  if (!res) return ConnectionError(httplib::to_string(res.error()));
  if (res->status / 100 != 2) return FromReply(res->status, res->body);
  try {
    return nlohmann::json::parse(res->body);
  } catch (const std::exception& e) {
    return Internal(std::string("unreadable reply from berthd: ") + e.what());
  }
}

Result<nlohmann::json> ApiClient::Delete(const std::string& path) {
  auto res = http_->Delete(path.c_str());
  if (!res) return ConnectionError(httplib::to_string(res.error()));
  if (res->status / 100 != 2) return FromReply(res->status, res->body);
  try {
    return nlohmann::json::parse(res->body);
  } catch (const std::exception& e) {
    return Internal(std::string("unreadable reply from berthd: ") + e.what());
  }
}

Result<std::string> ApiClient::GetText(const std::string& path) {
  auto res = http_->Get(path.c_str());
  if (!res) return ConnectionError(httplib::to_string(res.error()));
  if (res->status / 100 != 2) return FromReply(res->status, res->body);
  return res->body;
}

Status ApiClient::CopyLog(const std::string& path,
                          const std::function<void(const std::string& text)>& out,
                          const std::function<void(int64_t discarded)>& on_gap) {
  const char sep = path.find('?') == std::string::npos ? '?' : '&';
  int64_t offset = 0;
  while (true) {
    std::string url = path + sep + "offset=" + std::to_string(offset);
    auto res = http_->Get(url.c_str());
    if (!res) return ConnectionError(httplib::to_string(res.error()));
    if (res->status / 100 != 2) return FromReply(res->status, res->body);
    auto header = [&](const char* name) -> int64_t {
      std::string v = res->get_header_value(name);
      try {
        return v.empty() ? -1 : std::stoll(v);
      } catch (const std::exception&) {
        return -1;
      }
    };
    int64_t start = header("X-Berth-Log-Start"), next = header("X-Berth-Log-Next"),
            end = header("X-Berth-Log-End");
    if (start > offset && on_gap) on_gap(start - offset);
    if (!res->body.empty()) out(res->body);
    // A server without paging answers everything at once; an empty page or
    // the end reached means done.
    if (next < 0 || end < 0 || res->body.empty() || next >= end) return Status::Ok();
    offset = next;
  }
}

Status ApiClient::Stream(
    const std::string& path,
    const std::function<bool(const std::string&, const std::string&)>& on_event) {
  std::string buf;
  int status = 0;
  std::string error_body;
  bool stopped = false;
  auto res = http_->Get(
      path.c_str(), httplib::Headers{{"Accept", "text/event-stream"}},
      [&](const httplib::Response& r) {
        status = r.status;
        return true;
      },
      [&](const char* data, size_t len) {
        if (status / 100 != 2) {
          error_body.append(data, len);
          return true;
        }
        buf.append(data, len);
        size_t end;
        while ((end = buf.find("\n\n")) != std::string::npos) {
          std::string block = buf.substr(0, end);
          buf.erase(0, end + 2);
          std::string event, payload;
          bool has_data = false;
          size_t start = 0;
          while (start <= block.size()) {
            size_t nl = block.find('\n', start);
            std::string line =
                block.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
            if (line.rfind("event: ", 0) == 0) {
              event = line.substr(7);
            } else if (line.rfind("data: ", 0) == 0 || line == "data:") {
              if (has_data) payload += "\n";
              payload += line.size() > 6 ? line.substr(6) : "";
              has_data = true;
            }
            if (nl == std::string::npos) break;
            start = nl + 1;
          }
          if (!has_data && event.empty()) continue;  // comment / keep-alive
          if (!on_event(event, payload)) {
            stopped = true;
            return false;
          }
        }
        return true;
      });
  if (stopped) return Status::Ok();
  if (!res) {
    if (res.error() == httplib::Error::Canceled) return Status::Ok();
    return ConnectionError(httplib::to_string(res.error()));
  }
  if (status / 100 != 2) return FromReply(status, error_body);
  return Status::Ok();
}

}  // namespace berth::cli
