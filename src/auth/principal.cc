#include "auth/principal.h"

namespace berth::auth {

const char* RoleName(Role r) {
  switch (r) {
    case Role::kAdmin:
      return "admin";
    case Role::kUser:
      return "user";
    case Role::kViewer:
      return "viewer";
    case Role::kService:
      return "service";
  }
  return "unknown";
}

const char* ViaName(Via v) {
  switch (v) {
    case Via::kSocket:
      return "socket";
    case Via::kToken:
      return "token";
    case Via::kSession:
      return "session";
    case Via::kJobToken:
      return "job-token";
  }
  return "unknown";
}

Result<Role> ParseRole(const std::string& s, const std::string& field) {
  for (Role r : {Role::kAdmin, Role::kUser, Role::kViewer, Role::kService})
    if (s == RoleName(r)) return r;
  return InvalidArgument(field + ": must be admin, user, viewer or service, got \"" + s + "\"");
}

std::string Principal::Describe() const {
  if (actor.empty() || actor == user) return user;
  return actor + " for " + user;
}

Status CheckUserName(const std::string& name, const std::string& field) {
  if (name.empty() || name.size() > 64)
    return InvalidArgument(field + ": a user name must be 1 to 64 characters");
  if (name[0] == '-') return InvalidArgument(field + ": a user name must not start with '-'");
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == '@' || c == '$';
    if (!ok) return InvalidArgument(field + ": not a user name (letters, digits, . _ - @ $ only)");
  }
  return Status::Ok();
}

}  // namespace berth::auth
