#include "api/server.h"

#include <httplib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "api/caller.h"
#include "api/log_pages.h"
#include "common/log.h"
#include "common/net.h"
#include "model/job.h"

namespace berth::api {

using nlohmann::json;
using model::JobId;
using model::JobState;

int HttpStatusFor(const Status& st) {
  switch (st.code()) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition: return 409;
    case StatusCode::kUnschedulable: return 422;
    case StatusCode::kUnavailable: return 503;
    default: return 500;
  }
}

json ErrorJson(const Status& st) {
  return {{"error", {{"code", StatusCodeName(st.code()), }, {"message", st.message()}}}};
}

void ReplyJson(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump() + "\n", "application/json");
}

void ReplyError(httplib::Response& res, const Status& st) {
  ReplyJson(res, HttpStatusFor(st), ErrorJson(st));
}

namespace {

void Reply(httplib::Response& res, int status, const json& body) { ReplyJson(res, status, body); }

Result<JobId> ParseId(const std::string& s) {
  try {
    size_t pos = 0;
    long long v = std::stoll(s, &pos);
    if (pos == s.size() && v > 0) return static_cast<JobId>(v);
  } catch (const std::exception&) {
  }
  return InvalidArgument("job id: must be a positive integer, got \"" + s + "\"");
}

bool Truthy(const std::string& v) { return v == "1" || v == "true" || v == "yes"; }

std::string SseEvent(const std::string& event, const std::string& data, int64_t id = 0) {
  std::string out;
  if (id) out += "id: " + std::to_string(id) + "\n";
  if (!event.empty()) out += "event: " + event + "\n";
  size_t start = 0;
  while (true) {
    size_t nl = data.find('\n', start);
    out += "data: " + data.substr(start, nl == std::string::npos ? std::string::npos : nl - start) + "\n";
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  out += "\n";
  return out;
}

std::string MetricLabel(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

ApiServer::ApiServer(controllers::JobController& controller, store::Store& store,
                     exec::Executor& executor, const gpu::Inventory& inventory, const Clock& clock,
                     ServerOptions options, ApiHooks hooks)
    : controller_(controller),
      store_(store),
      executor_(executor),
      inventory_(inventory),
      clock_(clock),
      options_(std::move(options)),
      hooks_(std::move(hooks)),
      server_(std::make_unique<httplib::Server>()) {}

ApiServer::~ApiServer() { Stop(); }

Status ApiServer::Start() {
  int threads = options_.threads;
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server_->set_tcp_nodelay(true);
  server_->set_keep_alive_max_count(100000);
  // An idle keep-alive connection holds a worker until this passes, and
  // shutdown waits for it: keep it short (busy clients are not idle).
  server_->set_keep_alive_timeout(1);
  server_->set_payload_max_length(16 << 20);
  server_->set_read_timeout(30, 0);
  server_->set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    spdlog::error("request failed: {}", what);
    ReplyError(res, Internal(what));
  });
  // httplib's default sets SO_REUSEPORT, with which a second daemon binds the
  // same port and the kernel splits connections between two stores. Only
  // SO_REUSEADDR (restart over TIME_WAIT connections): a port in use fails.
  server_->set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  Routes();
  if (options_.port == 0) {
    port_ = server_->bind_to_any_port(options_.host);
    if (port_ <= 0) return IoError("cannot listen on " + options_.host + ": no free port");
  } else {
    if (!server_->bind_to_port(options_.host, options_.port)) {
      std::string why = BindError(options_.host, options_.port);
      return IoError("cannot listen on " + options_.host + ":" + std::to_string(options_.port) + ": " +
                     (why.empty() ? "address in use or not available" : why) +
                     (why == std::strerror(EADDRINUSE) ? " (another process listens on port " +
                                                             std::to_string(options_.port) + ")"
                                                       : ""));
    }
    port_ = options_.port;
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return Status::Ok();
}

void ApiServer::Stop() {
  stopping_ = true;
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

void ApiServer::Routes() {
  httplib::Server& s = *server_;

  auto health = [this](const httplib::Request&, httplib::Response& res) {
    auto stats = controller_.GetStats();
    int gpus = 0;
    for (const auto& n : inventory_.Nodes()) gpus += static_cast<int>(n.gpus.size());
    Reply(res, 200,
          {{"status", "ok"},
           {"version", options_.version},
           {"policy", options_.policy},
           {"inventory", inventory_.Describe()},
           {"gpus", gpus},
           {"pid", static_cast<int64_t>(::getpid())},
           {"dataDir", options_.data_dir},
           {"time", FormatTime(clock_.Now())}});
  };
  s.Get("/healthz", health);
  s.Get("/api/v1/health", health);

  s.Post("/api/v1/jobs", [this](const httplib::Request& req, httplib::Response& res) {
    auto spec = model::ParseJobSpec(req.body);
    if (!spec.ok()) return ReplyError(res, spec.status());
    auto user = RequestUser(req, store_);
    if (!user.ok()) return ReplyError(res, user.status());
    if (Status st = CheckClaimedUser(spec->user, *user, "metadata.user"); !st.ok())
      return ReplyError(res, st);
    spec->user = *user;
    auto job = controller_.Submit(std::move(*spec));
    if (!job.ok()) return ReplyError(res, job.status());
    Reply(res, 201, model::JobToJson(*job));
  });

  s.Get("/api/v1/jobs", [this](const httplib::Request& req, httplib::Response& res) {
    store::JobFilter f;
    if (req.has_param("state")) {
      std::string states = req.get_param_value("state");
      std::stringstream ss(states);
      std::string one;
      while (std::getline(ss, one, ',')) {
        if (one.empty()) continue;
        auto st = model::ParseJobState(one);
        if (!st.ok()) return ReplyError(res, st.status().WithContext("state"));
        f.states.push_back(*st);
      }
    }
    f.user = req.get_param_value("user");
    f.queue = req.get_param_value("queue");
    if (req.has_param("limit")) {
      try {
        f.limit = std::stoll(req.get_param_value("limit"));
      } catch (const std::exception&) {
        return ReplyError(res, InvalidArgument("limit: must be an integer"));
      }
    }
    f.newest_first = Truthy(req.get_param_value("newest"));
    auto jobs = store_.ListJobs(f);
    if (!jobs.ok()) return ReplyError(res, jobs.status());
    json items = json::array();
    for (const auto& j : *jobs) items.push_back(model::JobToJson(j));
    Reply(res, 200, {{"items", items}});
  });

  s.Get(R"(/api/v1/jobs/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    auto id = ParseId(req.matches[1]);
    if (!id.ok()) return ReplyError(res, id.status());
    auto job = store_.GetJob(*id);
    if (!job.ok()) return ReplyError(res, job.status());
    json j = model::JobToJson(*job);
    if (job->spec.training) {
      auto ts = store_.GetTrainingStatus(*id);
      if (ts.ok() && *ts) j["training"] = **ts;
    }
    if (job->state == JobState::kPending) {
      std::string why = controller_.WaitingReason(*id);
      if (!why.empty()) j["waitingReason"] = why;
    }
    if (hooks_.job_usage) {
      json usage = hooks_.job_usage(*id);
      if (!usage.is_null()) j["gpuUsage"] = usage;
    }
    Reply(res, 200, j);
  });

  auto cancel = [this](const httplib::Request& req, httplib::Response& res) {
    auto id = ParseId(req.matches[1]);
    if (!id.ok()) return ReplyError(res, id.status());
    auto job = controller_.Cancel(*id);
    if (!job.ok()) return ReplyError(res, job.status());
    Reply(res, 200, model::JobToJson(*job));
  };
  s.Post(R"(/api/v1/jobs/([^/]+)/cancel)", cancel);
  s.Delete(R"(/api/v1/jobs/([^/]+))", cancel);

  s.Get(R"(/api/v1/jobs/([^/]+)/logs)", [this](const httplib::Request& req, httplib::Response& res) {
    auto id = ParseId(req.matches[1]);
    if (!id.ok()) return ReplyError(res, id.status());
    auto job = store_.GetJob(*id);
    if (!job.ok()) return ReplyError(res, job.status());
    JobId jid = *id;
    int worker = 0;  // training jobs: ?worker=N reads rank N's log
    if (req.has_param("worker")) {
      try {
        worker = std::stoi(req.get_param_value("worker"));
      } catch (const std::exception&) {
        worker = -1;
      }
      int workers = job->spec.training ? job->spec.training->MaxWorkers() : 1;
      if (worker < 0 || worker >= workers)
        return ReplyError(res, InvalidArgument("worker: must be a rank from 0 to " +
                                               std::to_string(workers - 1)));
    }
    if (!Truthy(req.get_param_value("follow"))) {
      auto page = ParseLogPage(req);
      if (!page.ok()) return ReplyError(res, page.status());
      exec::LogChunk chunk;
      if (job->attempts > 0) {
        auto read = executor_.ReadLog({jid, worker, job->attempts}, page->offset, page->limit);
        if (!read.ok()) return ReplyError(res, read.status());
        chunk = std::move(read).value();
      }
      return ReplyLogPage(res, chunk);
    }
    // Follow: server-sent events, one event per batch of complete lines,
    // then an "end" event with the final state once the job has ended.
    struct FollowState {
      int attempt = 0;
      int64_t offset = 0;
      std::string partial;
      bool ended = false;
    };
    auto st = std::make_shared<FollowState>();
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider(
        "text/event-stream", [this, jid, worker, st](size_t, httplib::DataSink& sink) {
          if (stopping_) {
            sink.done();
            return true;
          }
          int64_t seq = store_.LastEventSeq();
          auto job = store_.GetJob(jid);
          if (!job.ok()) {
            sink.done();
            return true;
          }
          if (job->attempts != st->attempt) {  // a new attempt (requeue): start its log
            st->attempt = job->attempts;
            st->offset = 0;
            if (!st->partial.empty()) {
              std::string e = SseEvent("", st->partial);
              sink.write(e.data(), e.size());
              st->partial.clear();
            }
          }
          std::string chunk;
          if (st->attempt > 0) {
            auto read = executor_.ReadLog({jid, worker, st->attempt}, st->offset, 1 << 20);
            if (read.ok()) {
              chunk = std::move(read->data);
              st->offset = read->next;
            }
          }
          bool terminal = model::IsTerminal(job->state);
          if (!chunk.empty()) {
            std::string text = st->partial + chunk;
            size_t last_nl = text.rfind('\n');
            if (last_nl == std::string::npos) {
              st->partial = text;
            } else {
              st->partial = text.substr(last_nl + 1);
              std::string e = SseEvent("", text.substr(0, last_nl));
              if (!sink.write(e.data(), e.size())) return false;
            }
            if (chunk.size() == (1 << 20)) return true;  // more to read right away
          }
          if (terminal) {
            if (!st->partial.empty()) {
              std::string e = SseEvent("", st->partial);
              sink.write(e.data(), e.size());
              st->partial.clear();
            }
            json end = {{"state", model::JobStateName(job->state)},
                        {"exitCode", job->exit_code ? json(*job->exit_code) : json(nullptr)},
                        {"message", job->message}};
            std::string e = SseEvent("end", end.dump());
            sink.write(e.data(), e.size());
            sink.done();
            return true;
          }
          if (!sink.is_writable()) return false;
          // Wake on the next event (the job ending) or poll the file soon.
          store_.WaitForEvent(seq, chunk.empty() ? 50 : 0);
          return true;
        });
  });

  s.Get("/api/v1/events", [this](const httplib::Request& req, httplib::Response& res) {
    int64_t after = 0;
    JobId job = 0;
    try {
      if (req.has_param("after")) after = std::stoll(req.get_param_value("after"));
      if (req.has_param("job")) job = std::stoll(req.get_param_value("job"));
    } catch (const std::exception&) {
      return ReplyError(res, InvalidArgument("after, job: must be integers"));
    }
    if (!Truthy(req.get_param_value("follow"))) {
      auto evs = store_.EventsSince(after, 10000, job);
      if (!evs.ok()) return ReplyError(res, evs.status());
      json items = json::array();
      for (const auto& e : *evs) items.push_back(store::EventToJson(e));
      return Reply(res, 200, {{"items", items}});
    }
    auto cursor = std::make_shared<int64_t>(after);
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream", [this, cursor, job](size_t, httplib::DataSink& sink) {
          if (stopping_) {
            sink.done();
            return true;
          }
          auto evs = store_.EventsSince(*cursor, 1000, job);
          if (!evs.ok()) return false;
          for (const auto& e : *evs) {
            std::string out = SseEvent(e.type, store::EventToJson(e).dump(), e.seq);
            if (!sink.write(out.data(), out.size())) return false;
            *cursor = e.seq;
          }
          if (!evs->empty()) return true;
          if (!sink.is_writable()) return false;
          int64_t last = store_.WaitForEvent(*cursor, 1000);
          if (last <= *cursor) {  // keep-alive comment so dead clients are noticed
            static const std::string kPing = ": ping\n\n";
            if (!sink.write(kPing.data(), kPing.size())) return false;
          }
          return true;
        });
  });

  s.Get("/api/v1/gpus", [this](const httplib::Request&, httplib::Response& res) {
    auto holders = controller_.GpuHolders();
    json nodes = json::array();
    for (const auto& n : inventory_.Nodes()) {
      json jn = model::ToJson(n);
      for (auto& g : jn["gpus"]) {
        int idx = g["index"];
        json held = json::array();
        MilliGpu used = 0;
        for (const auto& h : holders) {
          if (h.node != n.name || h.gpu != idx) continue;
          held.push_back({{"job", h.job}, {"user", h.user}, {"queue", h.queue}, {"name", h.name},
                          {"share", FormatMilli(h.share)}});
          used += h.share;
        }
        g["jobs"] = held;
        g["allocated"] = FormatMilli(used);
        if (hooks_.gpu_telemetry) {
          json t = hooks_.gpu_telemetry(n.name, idx);
          if (!t.is_null()) g["telemetry"] = t;
        }
      }
      nodes.push_back(jn);
    }
    Reply(res, 200, {{"nodes", nodes}});
  });

  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    auto st = controller_.GetStats();
    std::string out;
    out += "# HELP berth_jobs Active jobs by state and queue.\n# TYPE berth_jobs gauge\n";
    for (const auto& [k, v] : st.active_by_state_queue)
      out += "berth_jobs{state=\"" + MetricLabel(k.first) + "\",queue=\"" + MetricLabel(k.second) +
             "\"} " + std::to_string(v) + "\n";
    out += "# HELP berth_jobs_finished_total Jobs that ended since the daemon started.\n"
           "# TYPE berth_jobs_finished_total counter\n";
    for (const auto& [k, v] : st.finished_by_state_queue)
      out += "berth_jobs_finished_total{state=\"" + MetricLabel(k.first) + "\",queue=\"" +
             MetricLabel(k.second) + "\"} " + std::to_string(v) + "\n";
    out += "# HELP berth_gpus Schedulable GPUs.\n# TYPE berth_gpus gauge\nberth_gpus " +
           FormatMilli(st.gpus_total_milli) + "\n";
    out += "# HELP berth_gpus_allocated GPUs allocated to jobs (fractions count).\n"
           "# TYPE berth_gpus_allocated gauge\nberth_gpus_allocated " +
           FormatMilli(st.gpus_allocated_milli) + "\n";
    out += "# HELP berth_gpus_free GPUs not allocated.\n# TYPE berth_gpus_free gauge\nberth_gpus_free " +
           FormatMilli(st.gpus_total_milli - st.gpus_allocated_milli) + "\n";
    out += "# HELP berth_queue_wait_seconds Time from submission to scheduling.\n"
           "# TYPE berth_queue_wait_seconds histogram\n";
    int64_t cum = 0;
    for (size_t i = 0; i < st.wait_counts.size(); ++i) {
      cum += st.wait_counts[i];
      std::string le = i < st.wait_bounds.size() ? fmt::format("{}", st.wait_bounds[i]) : "+Inf";
      out += "berth_queue_wait_seconds_bucket{le=\"" + le + "\"} " + std::to_string(cum) + "\n";
    }
    out += "berth_queue_wait_seconds_sum " + fmt::format("{}", st.wait_sum) + "\n";
    out += "berth_queue_wait_seconds_count " + std::to_string(st.wait_count) + "\n";
    out += "# HELP berth_preemptions_total Jobs preempted and requeued.\n"
           "# TYPE berth_preemptions_total counter\nberth_preemptions_total " +
           std::to_string(st.preemptions) + "\n";
    out += "# HELP berth_scheduling_cycles_total Scheduling cycles run.\n"
           "# TYPE berth_scheduling_cycles_total counter\nberth_scheduling_cycles_total " +
           std::to_string(st.cycles) + "\n";
    if (hooks_.extra_metrics) out += hooks_.extra_metrics();
    res.status = 200;
    res.set_content(out, "text/plain; version=0.0.4; charset=utf-8");
  });

  if (hooks_.extra_routes) hooks_.extra_routes(s);

  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 404)
      return Reply(res, 404, ErrorJson(NotFound("no route for " + req.method + " " + req.path)));
    // cpp-httplib's own refusals (a malformed request, a body over the
    // limit) are the client's doing: invalid_argument, as docs/api.md says,
    // keeping the HTTP status cpp-httplib chose.
    if (res.status == 413)
      return Reply(res, 413, ErrorJson(InvalidArgument("request body is larger than 16 MiB")));
    if (res.status / 100 == 4)
      return Reply(res, res.status,
                   ErrorJson(InvalidArgument("HTTP " + std::to_string(res.status) + ": cannot serve " +
                                             req.method + " " + req.path)));
    Reply(res, res.status, ErrorJson(Status(StatusCode::kInternal, "HTTP " + std::to_string(res.status))));
  });
}

}  // namespace berth::api
