#include "api/server.h"

#include "api/routes.h"
#include "common/log.h"
#include "http/server.h"

namespace berth::api {

using nlohmann::json;

int HttpStatusFor(const Status& st) {
  switch (st.code()) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
      return 409;
    case StatusCode::kUnschedulable:
      return 422;
    case StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

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
                     ServerOptions options, ApiHooks hooks)
    : ctx_{controller, store, executor, inventory, clock, std::move(options), std::move(hooks)} {}

ApiServer::~ApiServer() { Stop(); }

Status ApiServer::Start() {
  RegisterHealthRoutes(router_, ctx_);
  RegisterJobRoutes(router_, ctx_);
  RegisterJobLogRoutes(router_, ctx_);
  RegisterEventRoutes(router_, ctx_);
  RegisterGpuRoutes(router_, ctx_);
  if (ctx_.hooks.extra_routes) ctx_.hooks.extra_routes(router_);

  http::ServerOptions hopts;
  hopts.workers = ctx_.options.threads;
  hopts.max_streams = ctx_.options.max_streams;
  hopts.max_body_bytes = 16u << 20;
  hopts.read_timeout_ms = 30000;
  server_ = std::make_unique<http::Server>(
      hopts, [this](http::Request& req, http::Response& res) { router_.Dispatch(req, res); });
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
