#include "cli/client.h"

#include <httplib.h>
#include <pwd.h>
#include <unistd.h>
#include <memory>

#include <cstdlib>

#include "cli/unix_http.h"

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
  if (const char* token = std::getenv("BERTH_TOKEN"); token && *token)
    default_headers_.emplace_back("Authorization", std::string("Bearer ") + token);
  if (IsUnixUrl(url_, &socket_path_)) return;
  http_ = std::make_unique<httplib::Client>(url_);
  http_->set_tcp_nodelay(true);
  http_->set_connection_timeout(5, 0);
  http_->set_read_timeout(3600, 0);
  http_->set_keep_alive(true);
  httplib::Headers defaults;
  for (const auto& [k, v] : default_headers_) defaults.emplace(k, v);
  http_->set_default_headers(std::move(defaults));
}

ApiClient::~ApiClient() = default;

Status ApiClient::ConnectionError(const std::string& what) const {
  return Unavailable(
      "cannot reach berthd at " + url_ + " (" + what +
      "); start it with `berth up`, or point --server, BERTH_SERVER or BERTH_DATA_DIR at it");
}

Result<ApiClient::Reply> ApiClient::Send(
    const std::string& method, const std::string& path, const std::string& body,
    const std::string& content_type, const std::function<bool(const char*, size_t)>& on_data,
    const std::vector<std::pair<std::string, std::string>>& extra) {
  Reply out;
  if (!socket_path_.empty()) {
    RawRequest req;
    req.method = method;
    req.target = path;
    req.headers = default_headers_;
    req.headers.insert(req.headers.end(), extra.begin(), extra.end());
    if (!body.empty() || method == "POST") req.headers.emplace_back("Content-Type", content_type);
    req.body = body;
    int status = 0;
    std::string error_body;
    if (on_data) {
      req.on_head = [&](const RawReply& head) {
        status = head.status;
        return true;
      };
      // Error replies are kept whole; a 2xx body streams.
      req.on_data = [&](const char* d, size_t n) {
        if (status / 100 != 2) {
          error_body.append(d, n);
          return true;
        }
        return on_data(d, n);
      };
    }
    auto r = UnixHttpRequest(socket_path_, req);
    if (!r.ok()) {
      if (r.status().code() == StatusCode::kUnavailable)
        return ConnectionError(r.status().message());
      return r.status();
    }
    out.status = r->status;
    out.body = on_data ? error_body : std::move(r->body);
    auto headers = std::make_shared<RawReply>(std::move(*r));
    out.header = [headers](const std::string& name) { return headers->Header(name); };
    return out;
  }
  httplib::Headers hs;
  for (const auto& [k, v] : extra) hs.emplace(k, v);
  httplib::Result res{nullptr, httplib::Error::Unknown};
  if (method == "GET" && on_data) {
    int status = 0;
    std::string error_body;
    bool stopped = false;
    res = http_->Get(
        path.c_str(), hs,
        [&](const httplib::Response& r) {
          status = r.status;
          return true;
        },
        [&](const char* data, size_t len) {
          if (status / 100 != 2) {
            error_body.append(data, len);
            return true;
          }
          if (!on_data(data, len)) {
            stopped = true;
            return false;
          }
          return true;
        });
    if (stopped) {
      out.status = 200;
      out.header = [](const std::string&) { return std::string(); };
      return out;
    }
    if (!res) {
      if (res.error() == httplib::Error::Canceled) {
        out.status = 200;
        out.header = [](const std::string&) { return std::string(); };
        return out;
      }
      return ConnectionError(httplib::to_string(res.error()));
    }
    out.status = status;
    out.body = std::move(error_body);
  } else {
    if (method == "GET") {
      res = http_->Get(path.c_str(), hs);
    } else if (method == "POST") {
      res = http_->Post(path.c_str(), hs, body, content_type.c_str());
    } else if (method == "DELETE") {
      res = http_->Delete(path.c_str(), hs);
    } else {
      return InvalidArgument("unsupported method " + method);
    }
    if (!res) return ConnectionError(httplib::to_string(res.error()));
    out.status = res->status;
    out.body = res->body;
  }
  auto headers = std::make_shared<httplib::Headers>(res->headers);
  out.header = [headers](const std::string& name) {
    auto it = headers->find(name);
    return it == headers->end() ? std::string() : it->second;
  };
  return out;
}

namespace {

Result<nlohmann::json> JsonReply(int status, const std::string& body) {
  if (status / 100 != 2) return FromReply(status, body);
  try {
    return nlohmann::json::parse(body);
  } catch (const std::exception& e) {
    return Internal(std::string("unreadable reply from berthd: ") + e.what());
  }
}

}  // namespace

Result<nlohmann::json> ApiClient::Get(const std::string& path) {
  ASSIGN_OR_RETURN(Reply r, Send("GET", path, "", ""));
  return JsonReply(r.status, r.body);
}

Result<nlohmann::json> ApiClient::Post(const std::string& path, const std::string& body,
                                       const std::string& content_type) {
  ASSIGN_OR_RETURN(Reply r, Send("POST", path, body, content_type));
  return JsonReply(r.status, r.body);
}

Result<nlohmann::json> ApiClient::Delete(const std::string& path) {
  ASSIGN_OR_RETURN(Reply r, Send("DELETE", path, "", ""));
  return JsonReply(r.status, r.body);
}

Result<std::string> ApiClient::GetText(const std::string& path) {
  ASSIGN_OR_RETURN(Reply r, Send("GET", path, "", ""));
  if (r.status / 100 != 2) return FromReply(r.status, r.body);
  return r.body;
}

Status ApiClient::CopyLog(const std::string& path,
                          const std::function<void(const std::string& text)>& out,
                          const std::function<void(int64_t discarded)>& on_gap) {
  const char sep = path.find('?') == std::string::npos ? '?' : '&';
  int64_t offset = 0;
  while (true) {
    std::string url = path + sep + "offset=" + std::to_string(offset);
    ASSIGN_OR_RETURN(Reply res, Send("GET", url, "", ""));
    if (res.status / 100 != 2) return FromReply(res.status, res.body);
    auto header = [&](const char* name) -> int64_t {
      std::string v = res.header(name);
      try {
        return v.empty() ? -1 : std::stoll(v);
      } catch (const std::exception&) {
        return -1;
      }
    };
    int64_t start = header("X-Berth-Log-Start"), next = header("X-Berth-Log-Next"),
            end = header("X-Berth-Log-End");
    if (start > offset && on_gap) on_gap(start - offset);
    if (!res.body.empty()) out(res.body);
    // A server without paging answers everything at once; an empty page or
    // the end reached means done.
    if (next < 0 || end < 0 || res.body.empty() || next >= end) return Status::Ok();
    offset = next;
  }
}

Status ApiClient::Stream(
    const std::string& path,
    const std::function<bool(const std::string&, const std::string&)>& on_event) {
  std::string buf;
  bool stopped = false;
  auto on_data = [&](const char* data, size_t len) {
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
  };
  ASSIGN_OR_RETURN(Reply r, Send("GET", path, "", "", on_data, {{"Accept", "text/event-stream"}}));
  if (stopped) return Status::Ok();
  if (r.status / 100 != 2) return FromReply(r.status, r.body);
  return Status::Ok();
}

}  // namespace berth::cli
