#include "api/server.h"

#include "api/routes.h"
#include "common/log.h"
#include "http/server.h"
#include "http/status_map.h"

namespace berth::api {

using nlohmann::json;

int HttpStatusFor(const Status& st) { return http::HttpStatusFor(st); }

json ErrorJson(const Status& st) {
  return {{"error",
           {{
                "code",
                StatusCodeName(st.code()),
            },
            {"message", st.message()}}}};
}

void ReplyJson(http::Response& res, int status, const json& body) {
  res.status = status;
  res.SetContent(body.dump() + "\n", "application/json");
}

void ReplyError(http::Response& res, const Status& st) {
  ReplyJson(res, HttpStatusFor(st), ErrorJson(st));
}

Result<model::JobId> ParseJobId(const std::string& s) {
  try {
    size_t pos = 0;
    long long v = std::stoll(s, &pos);
    if (pos == s.size() && v > 0) return static_cast<model::JobId>(v);
  } catch (const std::exception&) {
  }
  return InvalidArgument("job id: must be a positive integer, got \"" + s + "\"");
}

bool Truthy(const std::string& v) { return v == "1" || v == "true" || v == "yes"; }

std::string SseEvent(const std::string& event, const std::string& data, int64_t id) {
  std::string out;
  if (id) out += "id: " + std::to_string(id) + "\n";
  if (!event.empty()) out += "event: " + event + "\n";
  size_t start = 0;
  while (true) {
    size_t nl = data.find('\n', start);
    out += "data: ";
    out.append(data, start, nl == std::string::npos ? std::string::npos : nl - start);
    out += "\n";
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  out += "\n";
  return out;
}

void StartEventStream(http::Response& res) {
  res.status = 200;
  res.headers.Set("Content-Type", "text/event-stream");
  res.headers.Set("Cache-Control", "no-cache");
}

ApiServer::ApiServer(controllers::JobController& controller, store::Store& store,
                     exec::Executor& executor, const gpu::Inventory& inventory, const Clock& clock,
                     ServerOptions options, ApiHooks hooks, ApiAuth auth)
    : ctx_{controller,       store,          executor, inventory, clock, std::move(options),
           std::move(hooks), std::move(auth)} {}

bool ApiServer::Authenticate(http::Request& req, http::Response& res) {
  auth::AuthConfig config = ctx_.auth.config ? ctx_.auth.config() : auth::AuthConfig{};
  if (auth::IsPublic(req.path, config)) return true;
  if (!ctx_.auth.authenticator) {
    ReplyError(res, Unavailable("berthd was started without authentication; it serves nothing"));
    return false;
  }
  std::optional<uid_t> peer_uid;
  if (req.peer.kind == http::Peer::Kind::kUnix && req.peer.has_credentials) peer_uid = req.peer.uid;
  auth::Credentials c = auth::CredentialsFromRequest(
      req.method,
      [&req](std::string_view name) -> std::optional<std::string> {
        if (!req.headers.Has(name)) return std::nullopt;
        return req.headers.Get(name);
      },
      peer_uid, static_cast<int64_t>(req.body.size()));
  auto p = ctx_.auth.authenticator->Authenticate(c);
  if (!p.ok()) {
    if (p.status().code() == StatusCode::kUnauthenticated)
      res.headers.Set("WWW-Authenticate", "Bearer realm=\"berth\"");
    spdlog::debug("refused {} {} from {}: {}", req.method, req.path, req.peer.address,
                  p.status().message());
    ReplyError(res, p.status());
    return false;
  }
  req.context = std::move(*p);
  return true;
}

ApiServer::~ApiServer() { Stop(); }

Status ApiServer::Start() {
  RegisterHealthRoutes(router_, ctx_);
  RegisterJobRoutes(router_, ctx_);
  RegisterJobLogRoutes(router_, ctx_);
  RegisterEventRoutes(router_, ctx_);
  RegisterGpuRoutes(router_, ctx_);
  RegisterAuthRoutes(router_, ctx_);
  if (ctx_.hooks.extra_routes) ctx_.hooks.extra_routes(router_);

  http::ServerOptions hopts;
  hopts.workers = ctx_.options.threads;
  hopts.max_streams = ctx_.options.max_streams;
  hopts.max_body_bytes = 16u << 20;
  hopts.read_timeout_ms = 30000;
  server_ = std::make_unique<http::Server>(hopts, [this](http::Request& req, http::Response& res) {
    if (Authenticate(req, res)) router_.Dispatch(req, res);
  });
  auto port = server_->ListenTcp(ctx_.options.host, ctx_.options.port);
  if (!port.ok()) return port.status();
  port_ = *port;
  if (!ctx_.options.unix_socket.empty()) {
    Status st = server_->ListenUnix(ctx_.options.unix_socket, ctx_.options.unix_socket_mode);
    if (!st.ok()) return st;
  }
  return server_->Start();
}

void ApiServer::Stop() {
  if (server_) server_->Stop();
}

}  // namespace berth::api
