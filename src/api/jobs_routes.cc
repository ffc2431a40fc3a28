// Jobs: submit, list, get, cancel.
#include <sstream>

#include "api/caller.h"
#include "api/routes.h"
#include "model/job.h"

namespace berth::api {
namespace {

using model::JobId;
using model::JobState;
using nlohmann::json;

// Per-user and per-queue limits on submission (auth.limits): jobs pending
// at once, and a job larger than the user's GPU limit (it could never
// start). The GPUs held at once are checked when a job is submitted as
// well: a refusal says what is held.
Status CheckSubmitLimits(const RouteContext& ctx, const model::JobSpec& spec) {
  if (!ctx.auth.config) return Status::Ok();
  auth::AuthConfig config = ctx.auth.config();
  const auth::Limit& mine = config.limits.ForUser(spec.user);
  auto q = config.limits.queues.find(spec.queue);
  bool queue_limited = q != config.limits.queues.end();
  if (!mine.gpus && !mine.pending_jobs && !queue_limited) return Status::Ok();
  store::JobFilter f;
  f.states = {JobState::kPending, JobState::kScheduled, JobState::kRunning};
  ASSIGN_OR_RETURN(auto active, ctx.store.ListJobs(f));
  auth::Usage user_usage, queue_usage;
  for (const auto& j : active) {
    bool waiting = j.state == JobState::kPending;
    MilliGpu held = waiting ? 0 : model::HeldGpus(j);
    if (j.spec.user == spec.user) {
      user_usage.gpus += held;
      user_usage.pending_jobs += waiting ? 1 : 0;
    }
    if (j.spec.queue == spec.queue) {
      queue_usage.gpus += held;
      queue_usage.pending_jobs += waiting ? 1 : 0;
    }
  }
  auth::LimitRequest r;
  r.gpus = model::MinRequestedGpus(spec);
  r.phase = auth::LimitRequest::kSubmit;
  return auth::CheckLimits(spec.user, spec.queue, user_usage, queue_usage, r, config.limits);
}

void Submit(const RouteContext& ctx, const http::Request& req, http::Response& res) {
  if (Status st = AuthorizeRequest(req, auth::Action::kSubmit, "", "a job"); !st.ok())
    return ReplyError(res, st);
  auto spec = model::ParseJobSpec(req.body);
  if (!spec.ok()) return ReplyError(res, spec.status());
  auto user = RequestUser(req);
  if (!user.ok()) return ReplyError(res, user.status());
  if (Status st = CheckClaimedUser(spec->user, *user, "metadata.user"); !st.ok())
    return ReplyError(res, st);
  spec->user = *user;
  if (Status st = CheckSubmitLimits(ctx, *spec); !st.ok()) return ReplyError(res, st);
  auto job = ctx.controller.Submit(std::move(*spec));
  if (!job.ok()) return ReplyError(res, job.status());
  RecordAudit(ctx.store, ctx.clock, req, "submitted", job->id, job->spec.user,
              "job " + std::to_string(job->id));
  ReplyJson(res, 201, model::JobToJson(*job));
}

// A job as `req`'s caller may see it: everyone sees its state and spec;
// its environment (where secrets are passed) only its owner or an admin.
json JobFor(const http::Request& req, const model::Job& job) {
  json j = model::JobToJson(job);
  if (job.spec.env.empty() || AuthorizeRequest(req, auth::Action::kReadData, job.spec.user).ok())
    return j;
  // "spec" holds the job's document, whose own "spec" has the env.
  if (j.contains("spec") && j["spec"].is_object() && j["spec"].contains("spec") &&
      j["spec"]["spec"].is_object() && j["spec"]["spec"].contains("env"))
    j["spec"]["spec"]["env"] = "(hidden: only " + job.spec.user + " or an admin may read it)";
  return j;
}

void List(const RouteContext& ctx, const http::Request& req, http::Response& res) {
  store::JobFilter f;
  if (req.HasParam("state")) {
    std::stringstream ss(req.Param("state"));
    std::string one;
    while (std::getline(ss, one, ',')) {
      if (one.empty()) continue;
      auto st = model::ParseJobState(one);
      if (!st.ok()) return ReplyError(res, st.status().WithContext("state"));
      f.states.push_back(*st);
    }
  }
  f.user = req.Param("user");
  f.queue = req.Param("queue");
  if (req.HasParam("limit")) {
    try {
      f.limit = std::stoll(req.Param("limit"));
    } catch (const std::exception&) {
      return ReplyError(res, InvalidArgument("limit: must be an integer"));
    }
  }
  f.newest_first = Truthy(req.Param("newest"));
  auto jobs = ctx.store.ListJobs(f);
  if (!jobs.ok()) return ReplyError(res, jobs.status());
  json items = json::array();
  for (const auto& j : *jobs) items.push_back(JobFor(req, j));
  ReplyJson(res, 200, {{"items", items}});
}

void Get(const RouteContext& ctx, const http::Request& req, http::Response& res) {
  auto id = ParseJobId(req.Capture("id"));
  if (!id.ok()) return ReplyError(res, id.status());
  auto job = ctx.store.GetJob(*id);
  if (!job.ok()) return ReplyError(res, job.status());
  json j = JobFor(req, *job);
  if (job->spec.training) {
    auto ts = ctx.store.GetTrainingStatus(*id);
    if (ts.ok() && *ts) j["training"] = **ts;
  }
  if (job->state == JobState::kPending) {
    std::string why = ctx.controller.WaitingReason(*id);
    if (!why.empty()) j["waitingReason"] = why;
  }
  if (ctx.hooks.job_usage) {
    json usage = ctx.hooks.job_usage(*id);
    if (!usage.is_null()) j["gpuUsage"] = usage;
  }
  ReplyJson(res, 200, j);
}

void Cancel(const RouteContext& ctx, const http::Request& req, http::Response& res) {
  auto id = ParseJobId(req.Capture("id"));
  if (!id.ok()) return ReplyError(res, id.status());
  auto before = ctx.store.GetJob(*id);
  if (!before.ok()) return ReplyError(res, before.status());
  if (Status st = AuthorizeRequest(req, auth::Action::kChange, before->spec.user,
                                   "job " + std::to_string(*id));
      !st.ok())
    return ReplyError(res, st);
  auto job = ctx.controller.Cancel(*id);
  if (!job.ok()) return ReplyError(res, job.status());
  RecordAudit(ctx.store, ctx.clock, req, "cancelled", *id, job->spec.user,
              "job " + std::to_string(*id));
  ReplyJson(res, 200, model::JobToJson(*job));
}

}  // namespace

void RegisterJobRoutes(http::Router& r, const RouteContext& ctx) {
  auto bind = [&ctx](void (*fn)(const RouteContext&, const http::Request&, http::Response&)) {
    return [&ctx, fn](const http::Request& req, http::Response& res) { fn(ctx, req, res); };
  };
  r.Post("/api/v1/jobs", bind(Submit));
  r.Get("/api/v1/jobs", bind(List));
  r.Get("/api/v1/jobs/{id}", bind(Get));
  r.Post("/api/v1/jobs/{id}/cancel", bind(Cancel));
  r.Delete("/api/v1/jobs/{id}", bind(Cancel));
}

}  // namespace berth::api
