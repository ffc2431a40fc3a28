// GET /api/v1/jobs/{id}/logs: a page of the log (api/log_pages.h), or with
// follow=true server-sent events, one per batch of complete lines, then an
// "end" event with the final state once the job has ended.
#include "api/caller.h"
#include "api/log_pages.h"
#include "api/routes.h"
#include "model/job.h"

namespace berth::api {
namespace {

using model::JobId;
using nlohmann::json;

constexpr int64_t kFollowRead = 1 << 20;

// Follows one worker's log across the job's attempts until the job ends or
// the client goes away.
void FollowLog(const RouteContext& ctx, JobId jid, int worker, http::StreamWriter& w) {
  int attempt = 0;
  int64_t offset = 0;
  std::string partial;  // the last line, until its newline arrives
  while (w.Open()) {
    int64_t seq = ctx.store.LastEventSeq();
    auto job = ctx.store.GetJob(jid);
    if (!job.ok()) return;
    if (job->attempts != attempt) {  // a new attempt (requeue): start its log
      attempt = job->attempts;
      offset = 0;
      if (!partial.empty() && !w.Write(SseEvent("", partial))) return;
      partial.clear();
    }
    std::string chunk;
    if (attempt > 0) {
      auto read = ctx.executor.ReadLog({jid, worker, attempt}, offset, kFollowRead);
      if (read.ok()) {
        chunk = std::move(read->data);
        offset = read->next;
      }
    }
    bool terminal = model::IsTerminal(job->state);
    if (!chunk.empty()) {
      std::string text = partial + chunk;
      size_t last_nl = text.rfind('\n');
      if (last_nl == std::string::npos) {
        partial = std::move(text);
      } else {
        partial = text.substr(last_nl + 1);
        if (!w.Write(SseEvent("", text.substr(0, last_nl)))) return;
      }
      if (static_cast<int64_t>(chunk.size()) == kFollowRead) continue;  // more to read right away
    }
    if (terminal) {
      if (!partial.empty() && !w.Write(SseEvent("", partial))) return;
      json end = {{"state", model::JobStateName(job->state)},
                  {"exitCode", job->exit_code ? json(*job->exit_code) : json(nullptr)},
                  {"message", job->message}};
      w.Write(SseEvent("end", end.dump()));
      return;
    }
    // Wake on the next event (the job ending) or poll the file soon.
    ctx.store.WaitForEvent(seq, chunk.empty() ? 50 : 0);
  }
}

void Logs(const RouteContext& ctx, const http::Request& req, http::Response& res) {
  auto id = ParseJobId(req.Capture("id"));
  if (!id.ok()) return ReplyError(res, id.status());
  auto job = ctx.store.GetJob(*id);
  if (!job.ok()) return ReplyError(res, job.status());
  if (Status st = AuthorizeRequest(req, auth::Action::kReadData, job->spec.user,
                                   "job " + std::to_string(*id));
      !st.ok())
    return ReplyError(res, st);
  JobId jid = *id;
  int worker = 0;  // training jobs: ?worker=N reads rank N's log
  if (req.HasParam("worker")) {
    try {
      worker = std::stoi(req.Param("worker"));
    } catch (const std::exception&) {
      worker = -1;
    }
    int workers = job->spec.training ? job->spec.training->MaxWorkers() : 1;
    if (worker < 0 || worker >= workers)
      return ReplyError(
          res, InvalidArgument("worker: must be a rank from 0 to " + std::to_string(workers - 1)));
  }
  if (!Truthy(req.Param("follow"))) {
    auto page = ParseLogPage(req);
    if (!page.ok()) return ReplyError(res, page.status());
    exec::LogChunk chunk;
    if (job->attempts > 0) {
      auto read = ctx.executor.ReadLog({jid, worker, job->attempts}, page->offset, page->limit);
      if (!read.ok()) return ReplyError(res, read.status());
      chunk = std::move(read).value();
    }
    return ReplyLogPage(res, std::move(chunk));
  }
  StartEventStream(res);
  res.headers.Set("X-Accel-Buffering", "no");
  res.stream = [&ctx, jid, worker](http::StreamWriter& w) { FollowLog(ctx, jid, worker, w); };
}

}  // namespace

void RegisterJobLogRoutes(http::Router& r, const RouteContext& ctx) {
  r.Get("/api/v1/jobs/{id}/logs",
        [&ctx](const http::Request& req, http::Response& res) { Logs(ctx, req, res); });
}

}  // namespace berth::api
