#include "daemon/reloadable_config.h"

#include <fstream>
#include <set>
#include <sstream>

#include "model/spec_reader.h"

namespace berth::daemon {
namespace {

Result<YAML::Node> ReadYaml(const std::string& path) {
  std::ifstream in(path);
  if (!in) return InvalidArgument("--config: cannot read \"" + path + "\"");
  std::stringstream ss;
  ss << in.rdbuf();
  auto root = model::ParseDocument(ss.str());
  if (!root.ok()) return root.status().WithContext(path);
  if (!root->IsNull() && !root->IsMap()) return InvalidArgument(path + ": must be a map");
  return *root;
}

std::string OnOff(bool b) { return b ? "true" : "false"; }

std::string LimitsText(const auth::LimitsConfig& l) {
  auto one = [](const auth::Limit& x) {
    std::string s = "{";
    if (x.gpus) s += "gpus: " + FormatMilli(*x.gpus);
    if (x.pending_jobs)
      s += std::string(x.gpus ? ", " : "") + "pendingJobs: " + std::to_string(*x.pending_jobs);
    return s + "}";
  };
  std::string s = "default " + one(l.default_user);
  for (const auto& [n, x] : l.users) s += ", user " + n + " " + one(x);
  for (const auto& [n, x] : l.queues) s += ", queue " + n + " " + one(x);
  return s;
}

}  // namespace

Result<ReloadableConfig> LoadReloadableConfig(const std::string& path) {
  ASSIGN_OR_RETURN(YAML::Node root, ReadYaml(path));
  ReloadableConfig c;
  if (root.IsNull()) return c;
  model::SpecReader r(root, "");
  RETURN_IF_ERROR(r.String("logLevel", &c.log_level).WithContext(path));
  static const char* kLevels[] = {"trace", "debug", "info", "warn", "error"};
  bool known = false;
  for (const char* l : kLevels) known |= c.log_level == l;
  if (!known)
    return InvalidArgument(path + ": logLevel: must be trace, debug, info, warn or error, got \"" +
                           c.log_level + "\"");
  RETURN_IF_ERROR(auth::ParseAuthConfig(r.Child("auth"), &c.auth).WithContext(path));
  for (const auto& kv : root) {
    std::string key = kv.first.as<std::string>("");
    if (key != "logLevel" && key != "auth") c.fixed[key] = YAML::Dump(kv.second);
  }
  return c;
}

Result<ReloadPlan> PlanReload(const std::string& path, const ReloadableConfig& current) {
  ReloadPlan plan;
  ASSIGN_OR_RETURN(plan.next, LoadReloadableConfig(path));
  const ReloadableConfig& n = plan.next;
  if (n.log_level != current.log_level)
    plan.changes.push_back("logLevel: " + current.log_level + " -> " + n.log_level);
  if (n.auth.admins != current.auth.admins) {
    std::string names;
    for (const std::string& a : n.auth.admins) names += (names.empty() ? "" : ", ") + a;
    plan.changes.push_back("auth.admins: [" + names + "]");
  }
  if (n.auth.public_metrics != current.auth.public_metrics)
    plan.changes.push_back("auth.publicMetrics: " + OnOff(current.auth.public_metrics) + " -> " +
                           OnOff(n.auth.public_metrics));
  if (n.auth.session_ttl != current.auth.session_ttl)
    plan.changes.push_back("auth.sessionTtl: " + FormatDuration(current.auth.session_ttl) + " -> " +
                           FormatDuration(n.auth.session_ttl) + " (for sessions opened from now)");
  if (LimitsText(n.auth.limits) != LimitsText(current.auth.limits))
    plan.changes.push_back("auth.limits: " + LimitsText(n.auth.limits));

  std::set<std::string> keys;
  for (const auto& [k, v] : current.fixed) keys.insert(k);
  for (const auto& [k, v] : n.fixed) keys.insert(k);
  for (const std::string& k : keys) {
    auto a = current.fixed.find(k), b = n.fixed.find(k);
    if (a == current.fixed.end() || b == n.fixed.end() || a->second != b->second)
      plan.need_restart.push_back(k + ": changed (takes effect at the next start)");
  }
  return plan;
}

}  // namespace berth::daemon
