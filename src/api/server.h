// The REST/JSON API of berthd (cpp-httplib). Routes:
//   GET  /healthz, /api/v1/health        liveness and a summary
//   POST /api/v1/jobs                    submit a Job document (YAML or JSON)
//   GET  /api/v1/jobs?state=&user=&queue=&limit=
//   GET  /api/v1/jobs/{id}
//   POST /api/v1/jobs/{id}/cancel        (also DELETE /api/v1/jobs/{id})
//   GET  /api/v1/jobs/{id}/logs[?follow=true]   text, or server-sent events when following
//   GET  /api/v1/events?after=SEQ&job=ID[&follow=true]  JSON list, or server-sent events
//   GET  /api/v1/gpus                    nodes, GPUs and the jobs holding them
//   GET  /metrics                        Prometheus text format
// Errors are JSON: {"error": {"code": "invalid_argument", "message": "..."}}.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/status.h"
#include "controllers/job_controller.h"
#include "exec/executor.h"
#include "gpu/inventory.h"
#include "store/store.h"

namespace httplib {
class Server;
struct Response;
}

namespace berth::api {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 7420;  // 0: pick a free port
  int threads = 64;  // long-lived streams (SSE) each hold one
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
  // Registers more routes (pipelines, ...) on the server before it starts.
  std::function<void(httplib::Server&)> extra_routes;
};

class ApiServer {
 public:
  ApiServer(controllers::JobController& controller, store::Store& store, exec::Executor& executor,
            const gpu::Inventory& inventory, const Clock& clock, ServerOptions options,
            ApiHooks hooks = {});
  ~ApiServer();

  // Binds and starts serving on a background thread. Returns once listening.
  Status Start();
  // Stops accepting and closes streams. Idempotent.
  void Stop();
  int port() const { return port_; }

 private:
  void Routes();

  controllers::JobController& controller_;
  store::Store& store_;
  exec::Executor& executor_;
  const gpu::Inventory& inventory_;
  const Clock& clock_;
  ServerOptions options_;
  ApiHooks hooks_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
};

// HTTP status for a Status code (400, 404, 409, 422, 503, 500).
int HttpStatusFor(const Status& st);
nlohmann::json ErrorJson(const Status& st);
// Replies with `body` as JSON, or with the JSON error for `st`. For route
// handlers registered through ApiHooks::extra_routes too.
void ReplyJson(httplib::Response& res, int status, const nlohmann::json& body);
void ReplyError(httplib::Response& res, const Status& st);

}  // namespace berth::api
