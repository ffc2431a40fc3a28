// The `auth:` section of berthd's configuration file:
//
//   auth:
//     admins: [alice, bob]     # admins besides root and the daemon's own account
//     publicMetrics: false     # true: /metrics needs no identity (a Prometheus scraper)
//     sessionTtl: 12h          # how long a browser session lasts
//     limits:
//       default: {gpus: 8, pendingJobs: 200}     # every user without a line of their own
//       users:   {alice: {gpus: 16}}
//       queues:  {interactive: {gpus: 2, pendingJobs: 20}}
//
// Everything here may change at run time (SIGHUP, daemon/reloadable_config.h).
// There is no switch that turns authentication off.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>

#include "common/clock.h"
#include "common/quantity.h"
#include "common/status.h"
#include "model/spec_reader.h"

namespace berth::auth {

// Absent: no limit.
struct Limit {
  std::optional<MilliGpu> gpus;         // held at once, in milli-GPU
  std::optional<int64_t> pending_jobs;  // waiting in the queue at once
};

struct LimitsConfig {
  Limit default_user;                   // users without an entry of their own
  std::map<std::string, Limit> users;   // replaces default_user for that user
  std::map<std::string, Limit> queues;  // the whole queue, every user together

  const Limit& ForUser(const std::string& user) const;
};

struct AuthConfig {
  std::set<std::string> admins;  // user names with the admin role
  bool public_metrics = false;
  DurationMs session_ttl = 12 * kHour;
  LimitsConfig limits;
};

// Reads the `auth` map under `r` (a null node keeps the defaults). Errors
// name the field: "auth.limits.users.alice.gpus: must be >= 0".
Status ParseAuthConfig(model::SpecReader r, AuthConfig* out);

// Whether `path` (without its query) is served without an identity:
// /healthz always, /metrics when publicMetrics is set. Nothing else.
bool IsPublic(const std::string& path, const AuthConfig& config);

}  // namespace berth::auth
