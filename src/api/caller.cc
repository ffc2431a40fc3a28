#include "api/caller.h"

#include <any>

#include "common/log.h"

namespace berth::api {

const auth::Principal& Caller(const http::Request& req) {
  static const auth::Principal kNobody;
  const auto* p = std::any_cast<auth::Principal>(&req.context);
  return p ? *p : kNobody;
}

Result<std::string> RequestUser(const http::Request& req) {
  const auth::Principal& p = Caller(req);
  if (p.user.empty()) return Unauthenticated("this request carries no identity");
  return p.user;
}

Status AuthorizeRequest(const http::Request& req, auth::Action action, const std::string& owner,
                        const std::string& what) {
  return auth::Authorize(Caller(req), action, owner, what);
}

Status CheckClaimedUser(const std::string& claimed, const std::string& caller,
                        const std::string& field) {
  if (claimed.empty() || claimed == caller) return Status::Ok();
  return InvalidArgument(field + ": \"" + claimed + "\" is not the caller (\"" + caller +
                         "\"); berthd records who submits, so leave " + field +
                         " out (a service account acts for a user with X-Berth-Act-As)");
}

void RecordAudit(store::Store& store, const Clock& clock, const http::Request& req,
                 const std::string& action, model::JobId job, const std::string& owner,
                 const std::string& what) {
  const auth::Principal& p = Caller(req);
  nlohmann::json data{{"action", action},
                      {"actor", p.actor},
                      {"user", p.user},
                      {"owner", owner},
                      {"via", auth::ViaName(p.via)}};
  if (p.job) data["actorJob"] = *p.job;
  Status st =
      store.AppendEvent("Audit", job, p.Describe() + " " + action + " " + what, clock.Now(), data);
  if (!st.ok()) spdlog::warn("could not record who made a change ({}): {}", action, st.ToString());
}

}  // namespace berth::api
