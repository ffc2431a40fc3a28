#include "auth/auth_config.h"

#include "auth/principal.h"

namespace berth::auth {
namespace {

Status ParseLimit(model::SpecReader r, Limit* out) {
  if (!r.IsMap())
    return InvalidArgument(r.path() + ": must be a map like {gpus: 4, pendingJobs: 100}");
  if (r.Has("gpus")) {
    int64_t g = 0;
    RETURN_IF_ERROR(r.Milli("gpus", &g));
    if (g < 0) return r.Error("gpus", "must be >= 0");
    out->gpus = g;
  }
  if (r.Has("pendingJobs")) {
    int64_t p = 0;
    RETURN_IF_ERROR(r.Int("pendingJobs", &p));
    if (p < 0) return r.Error("pendingJobs", "must be >= 0");
    out->pending_jobs = p;
  }
  return r.CheckNoUnknown();
}

Status ParseLimitMap(model::SpecReader r, bool user_names, std::map<std::string, Limit>* out) {
  if (r.node().IsNull()) return Status::Ok();
  if (!r.IsMap()) return InvalidArgument(r.path() + ": must be a map of names to limits");
  for (const auto& kv : r.node()) {
    std::string name = kv.first.as<std::string>("");
    if (user_names) RETURN_IF_ERROR(CheckUserName(name, r.ChildPath(name)));
    if (name.empty()) return InvalidArgument(r.path() + ": a name must not be empty");
    Limit l;
    RETURN_IF_ERROR(ParseLimit(r.Child(name), &l));
    (*out)[name] = l;
  }
  return Status::Ok();
}

}  // namespace

const Limit& LimitsConfig::ForUser(const std::string& user) const {
  auto it = users.find(user);
  return it == users.end() ? default_user : it->second;
}

Status ParseAuthConfig(model::SpecReader r, AuthConfig* out) {
  if (r.node().IsNull()) return Status::Ok();
  if (!r.IsMap()) return InvalidArgument(r.path() + ": must be a map");
  try {
    AuthConfig c = *out;
    if (r.Has("admins")) {
      std::vector<std::string> admins;
      RETURN_IF_ERROR(r.StringList("admins", &admins));
      c.admins.clear();
      for (const std::string& a : admins) {
        RETURN_IF_ERROR(CheckUserName(a, r.ChildPath("admins")));
        c.admins.insert(a);
      }
    }
    RETURN_IF_ERROR(r.Bool("publicMetrics", &c.public_metrics));
    RETURN_IF_ERROR(r.Duration("sessionTtl", &c.session_ttl));
    if (c.session_ttl < kMinute || c.session_ttl > 30 * 24 * kHour)
      return r.Error("sessionTtl", "must be between 1m and 30d");
    model::SpecReader lim = r.Child("limits");
    if (!lim.node().IsNull()) {
      if (!lim.IsMap()) return InvalidArgument(lim.path() + ": must be a map");
      c.limits = LimitsConfig{};
      model::SpecReader def = lim.Child("default");
      if (!def.node().IsNull()) RETURN_IF_ERROR(ParseLimit(def, &c.limits.default_user));
      RETURN_IF_ERROR(ParseLimitMap(lim.Child("users"), true, &c.limits.users));
      RETURN_IF_ERROR(ParseLimitMap(lim.Child("queues"), false, &c.limits.queues));
      RETURN_IF_ERROR(lim.CheckNoUnknown());
    }
    RETURN_IF_ERROR(r.CheckNoUnknown());
    *out = std::move(c);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(r.path() + ": " + e.msg);
  }
  return Status::Ok();
}

bool IsPublic(const std::string& path, const AuthConfig& config) {
  std::string p = path.substr(0, path.find('?'));
  if (p == "/healthz") return true;
  return config.public_metrics && p == "/metrics";
}

}  // namespace berth::auth
