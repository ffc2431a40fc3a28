// Who a request acts for, once authenticated (authenticator.h), and the
// small vocabulary around it: roles, how the caller proved itself, user names.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "common/status.h"

namespace berth::auth {

// admin: everything. user: submits work and changes their own. viewer: reads
// state only. service: a program (a JupyterHub spawner) that may act for a
// named non-admin user (X-Berth-Act-As).
enum class Role { kAdmin, kUser, kViewer, kService };

// How the caller proved who it is.
enum class Via {
  kSocket,    // the Unix socket: the kernel's SO_PEERCRED uid
  kToken,     // Authorization: Bearer berth_<id>_<secret>
  kSession,   // the browser's session cookie (from a token login)
  kJobToken,  // a task's BERTH_TOKEN, scoped to its job
};

const char* RoleName(Role r);
const char* ViaName(Via v);
// "admin", "user", "viewer", "service"; InvalidArgument naming `field` otherwise.
Result<Role> ParseRole(const std::string& s, const std::string& field);

struct Principal {
  std::string user;          // whose authority the request uses: the owner of what it makes
  std::optional<uid_t> uid;  // that user's Unix uid, when the account exists here
  Role role = Role::kViewer;
  // Who really asked: the user themself, the service account acting for
  // `user`, or "job:<id>" for a job's token. The audit trail records both.
  std::string actor;
  Via via = Via::kSocket;
  std::optional<int64_t> job;  // set for a job-scoped token
  std::string token_id;        // the token's public id (via token or job-token)

  bool IsAdmin() const { return role == Role::kAdmin; }
  // "alice", "hub for alice", "job:12 for alice": for messages and logs.
  std::string Describe() const;
};

// A user name must be 1 to 64 of [A-Za-z0-9._@$-], not starting with '-'
// (what useradd accepts, and safe in a path, a header and a log line).
Status CheckUserName(const std::string& name, const std::string& field);

}  // namespace berth::auth
