#include "auth/authorize.h"

namespace berth::auth {
namespace {

std::string Gpus(MilliGpu m) { return FormatMilli(m) + (m == kWholeGpu ? " GPU" : " GPUs"); }

std::string Jobs(int64_t n) { return std::to_string(n) + (n == 1 ? " job" : " jobs"); }

// Checks one Limit for a subject ("user alice", "queue default").
Status CheckOne(const std::string& subject, const std::string& key, const Limit& limit,
                const Usage& usage, const LimitRequest& r) {
  if (limit.gpus) {
    if (r.gpus > *limit.gpus)
      return FailedPrecondition(subject + " may hold at most " + Gpus(*limit.gpus) + " at once (" +
                                key + ".gpus); this job asks for " + Gpus(r.gpus) +
                                ", so it could never start");
    if (r.phase == LimitRequest::kStart && usage.gpus + r.gpus > *limit.gpus)
      return FailedPrecondition(subject + " may hold at most " + Gpus(*limit.gpus) + " at once (" +
                                key + ".gpus); " + Gpus(usage.gpus) +
                                " are held and this job asks for " + Gpus(r.gpus));
  }
  if (limit.pending_jobs && r.phase == LimitRequest::kSubmit &&
      usage.pending_jobs + 1 > *limit.pending_jobs)
    return FailedPrecondition(subject + " may have at most " + Jobs(*limit.pending_jobs) +
                              " pending (" + key + ".pendingJobs); " + Jobs(usage.pending_jobs) +
                              " are waiting already");
  return Status::Ok();
}

}  // namespace

const char* ActionName(Action a) {
  switch (a) {
    case Action::kRead:
      return "read";
    case Action::kSubmit:
      return "submit";
    case Action::kChange:
      return "change";
    case Action::kReadData:
      return "read the logs, artifacts and parameters of";
    case Action::kAdmin:
      return "administer";
  }
  return "unknown";
}

Status Authorize(const Principal& p, Action action, const std::string& owner,
                 const std::string& what) {
  const std::string who = p.Describe() + " (" + RoleName(p.role) + ")";
  const std::string object = what.empty() ? "this" : what;
  switch (action) {
    case Action::kRead:
      return Status::Ok();
    case Action::kSubmit:
      if (p.role == Role::kViewer)
        return PermissionDenied(who + " is read-only: submitting needs the role user or admin");
      return Status::Ok();
    case Action::kChange:
    case Action::kReadData:
      if (p.IsAdmin()) return Status::Ok();
      if (action == Action::kChange && p.role == Role::kViewer)
        return PermissionDenied(who + " is read-only: only " +
                                (owner.empty() ? std::string("its owner") : owner) +
                                " (the owner) or an admin may change " + object);
      if (!owner.empty() && p.user == owner) return Status::Ok();
      return PermissionDenied("only " + (owner.empty() ? std::string("its owner") : owner) +
                              " (the owner) or an admin may " + ActionName(action) + " " + object +
                              "; the request comes from " + who);
    case Action::kAdmin:
      if (p.IsAdmin()) return Status::Ok();
      return PermissionDenied("only an admin may do this; the request comes from " + who);
  }
  return PermissionDenied("unknown action");
}

Status CheckLimits(const std::string& user, const std::string& queue, const Usage& user_usage,
                   const Usage& queue_usage, const LimitRequest& request,
                   const LimitsConfig& limits) {
  const bool own = limits.users.count(user) > 0;
  RETURN_IF_ERROR(CheckOne("user " + user,
                           own ? "auth.limits.users." + user : std::string("auth.limits.default"),
                           limits.ForUser(user), user_usage, request));
  auto q = limits.queues.find(queue);
  if (q != limits.queues.end())
    RETURN_IF_ERROR(
        CheckOne("queue " + queue, "auth.limits.queues." + queue, q->second, queue_usage, request));
  return Status::Ok();
}

}  // namespace berth::auth
