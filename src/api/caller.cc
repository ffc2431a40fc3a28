#include "api/caller.h"

#include <cstdlib>

namespace berth::api {
namespace {

Status CheckUserName(const std::string& name, const std::string& field) {
  if (name.empty() || name.size() > 64)
    return InvalidArgument(field + ": a user name must be 1 to 64 characters");
  if (name[0] == '-') return InvalidArgument(field + ": a user name must not start with '-'");
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == '@' || c == '$';
    if (!ok)
      return InvalidArgument(field + ": \"" + name +
                             "\" is not a user name (letters, digits, . _ - @ $)");
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> RequestUser(const http::Request& req, const store::Store& store) {
  if (req.HasHeader("X-Berth-Job")) {
    std::string v = req.Header("X-Berth-Job");
    char* end = nullptr;
    long long id = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end || id <= 0)
      return InvalidArgument("X-Berth-Job: must be a job id (a positive integer), got \"" + v +
                             "\"");
    auto job = store.GetJob(static_cast<model::JobId>(id));
    if (!job.ok()) return InvalidArgument("X-Berth-Job: no job " + v);
    if (!job->spec.user.empty()) return job->spec.user;
  }
  if (req.HasHeader("X-Berth-User")) {
    std::string name = req.Header("X-Berth-User");
    RETURN_IF_ERROR(CheckUserName(name, "X-Berth-User"));
    return name;
  }
  return std::string(kAnonymousUser);
}

Status CheckClaimedUser(const std::string& claimed, const std::string& caller,
                        const std::string& field) {
  if (claimed.empty() || claimed == caller) return Status::Ok();
  return InvalidArgument(field + ": \"" + claimed + "\" is not the caller (\"" + caller +
                         "\"); berthd records who submits, so leave " + field + " out");
}

}  // namespace berth::api
