// What berthd may change without a restart, reread from its configuration
// file on SIGHUP: the log level and the `auth:` section (public /metrics,
// the session lifetime, per-user and per-queue limits). Everything else in
// the file (listen, dataDir, gpus, scheduler, store, executor, telemetry)
// takes effect at the next start; a reload that finds those changed says so
// in the log and keeps the running values.
//
// A bad file changes nothing: the reload is refused with the file's error
// and the running configuration stays.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "auth/auth_config.h"
#include "common/status.h"

namespace berth::daemon {

struct ReloadableConfig {
  std::string log_level = "info";
  auth::AuthConfig auth;
  // Every other top-level key of the file as read (YAML text), to tell
  // which of them a later reload finds changed.
  std::map<std::string, std::string> fixed;
};

// Reads the reloadable parts of the YAML file at `path` (absent keys keep
// their defaults). Other keys are not checked here (LoadConfigFile does).
Result<ReloadableConfig> LoadReloadableConfig(const std::string& path);

struct ReloadPlan {
  ReloadableConfig next;
  std::vector<std::string> changes;       // "logLevel: info -> debug"
  std::vector<std::string> need_restart;  // "listen: changed (takes effect at the next start)"
};

// Rereads `path` and compares it with `current` (what was read at start or
// at the last reload). InvalidArgument naming the field when the file is bad.
Result<ReloadPlan> PlanReload(const std::string& path, const ReloadableConfig& current);

// The live reloadable configuration, read by request handlers on any thread
// and replaced whole by the signal thread.
class ReloadableConfigHolder {
 public:
  explicit ReloadableConfigHolder(ReloadableConfig initial)
      : current_(std::make_shared<const ReloadableConfig>(std::move(initial))) {}
  std::shared_ptr<const ReloadableConfig> Get() const {
    std::lock_guard<std::mutex> l(mu_);
    return current_;
  }
  void Set(ReloadableConfig next) {
    auto p = std::make_shared<const ReloadableConfig>(std::move(next));
    std::lock_guard<std::mutex> l(mu_);
    current_ = std::move(p);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const ReloadableConfig> current_;
};

}  // namespace berth::daemon
