// The REST/JSON API of berthd, served by http::Server (src/http). Routes,
// grouped by resource in their own files (api/routes.h):
//   GET  /healthz, /api/v1/health        liveness and a summary       health_routes.cc
//   GET  /metrics                        Prometheus text format       health_routes.cc
//   POST /api/v1/jobs                    submit a Job document (YAML or JSON)   jobs_routes.cc
//   GET  /api/v1/jobs?state=&user=&queue=&limit=
//   GET  /api/v1/jobs/{id}
//   POST /api/v1/jobs/{id}/cancel        (also DELETE /api/v1/jobs/{id})
//   GET  /api/v1/jobs/{id}/logs[?follow=true]   text, or server-sent events   job_logs_routes.cc
//   GET  /api/v1/events?after=SEQ&job=ID[&follow=true]  JSON list, or SSE      events_routes.cc
//   GET  /api/v1/gpus                    nodes, GPUs and the jobs holding them  gpus_routes.cc
//   tokens, sessions, whoami, users      auth::AuthRoutes (auth/token_routes.h)  auth_routes.cc
//   pipelines and cron schedules: pipeline_routes.h (registered by the daemon)
// Errors are JSON: {"error": {"code": "invalid_argument", "message": "..."}}.
// The daemon listens on TCP (host:port) and on a Unix socket; a request's
// http::Request::peer carries the caller's uid from the kernel on the socket.
// Every request but /healthz (and /metrics if so configured) must carry an
// identity (ApiAuth); routes find it with api::Caller (api/caller.h).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "auth/auth_config.h"
#include "auth/authenticator.h"
#include "common/clock.h"
#include "common/status.h"
#include "controllers/job_controller.h"
#include "exec/executor.h"
#include "gpu/inventory.h"
#include "http/message.h"
#include "http/router.h"
#include "store/store.h"

namespace berth::http {
class Server;
}

namespace berth::api {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 7420;   // 0: pick a free port
  int threads = 64;  // request workers; streams (SSE) have their own pool
  int max_streams = 512;
  // A Unix socket to listen on as well (empty: none), created with this mode.
  std::string unix_socket;
  mode_t unix_socket_mode = 0666;
  std::string version;
  std::string policy;
  std::string data_dir;  // shown by /healthz (with the pid): which daemon answers
};

// Extra sections contributed by other parts of the daemon (GPU telemetry).
struct ApiHooks {
  // Appended to /metrics (already in Prometheus text format).
  std::function<std::string()> extra_metrics;
  // Telemetry for one GPU as JSON (utilization, memory, ...), or null.
  std::function<nlohmann::json(const std::string& node, int gpu)> gpu_telemetry;
  // A job's GPU usage over its life, or null.
  std::function<nlohmann::json(model::JobId)> job_usage;
  // The drain covering a GPU ({reason, source, actor, time, node}), or null;
  // and drain (reason set) or undrain a GPU (gpu -1: the node). gpus_routes.cc.
  std::function<nlohmann::json(const std::string& node, int gpu)> gpu_drain;
  std::function<Status(const std::string& node, int gpu, bool drain, const std::string& reason,
                       const std::string& actor)>
      set_drain;
  // Every drain ([{node, gpu (-1: node), reason, source, actor, time}]), so
  // a drained GPU that left the inventory (lost) is still listed.
  std::function<nlohmann::json()> drains;
  // Registers more routes (pipelines, ...) on the server before it starts.
  std::function<void(http::Router&)> extra_routes;
};

// Who asks (docs/security.md). Every request but /healthz (and /metrics
// when auth.publicMetrics is set) is authenticated by `authenticator`;
// without one, every such request is refused: there is no way to serve the
// API unauthenticated.
struct ApiAuth {
  auth::Authenticator* authenticator = nullptr;
  store::AuthStore* store = nullptr;
  // The live `auth:` configuration (it may change on SIGHUP); default: {}.
  std::function<auth::AuthConfig()> config;
  bool tls = false;  // Secure cookies
};

// What route handlers use (api/routes.h); owned by the ApiServer.
struct RouteContext {
  controllers::JobController& controller;
  store::Store& store;
  exec::Executor& executor;
  const gpu::Inventory& inventory;
  const Clock& clock;
  ServerOptions options;
  ApiHooks hooks;
  ApiAuth auth;
};

class ApiServer {
 public:
  ApiServer(controllers::JobController& controller, store::Store& store, exec::Executor& executor,
            const gpu::Inventory& inventory, const Clock& clock, ServerOptions options,
            ApiHooks hooks = {}, ApiAuth auth = {});
  ~ApiServer();

  // Binds and starts serving on background threads. Returns once listening.
  Status Start();
  // Stops accepting and closes streams. Idempotent.
  void Stop();
  int port() const { return port_; }

 private:
  // Authenticates `req` (setting its context to the Principal) unless its
  // route is public; false when it answered `res` with the refusal.
  bool Authenticate(http::Request& req, http::Response& res);
  RouteContext ctx_;
  http::Router router_;
  std::unique_ptr<http::Server> server_;
  int port_ = 0;
};

// HTTP status for a Status code: http::HttpStatusFor (http/status_map.h).
int HttpStatusFor(const Status& st);
nlohmann::json ErrorJson(const Status& st);
// Replies with `body` as JSON, or with the JSON error for `st`. For route
// handlers registered through ApiHooks::extra_routes too.
void ReplyJson(http::Response& res, int status, const nlohmann::json& body);
void ReplyError(http::Response& res, const Status& st);

}  // namespace berth::api
