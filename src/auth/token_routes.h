// The logic of the authentication routes, as functions of (Principal,
// request data) -> (HTTP status, JSON body, headers), so the HTTP layer
// only authenticates, calls one of these and writes the reply:
//
//   POST   /api/v1/tokens        {user?, expires?, description?} -> 201 {token (shown once), id,
//   ...} GET    /api/v1/tokens[?user=U&jobs=true]                      -> {items: [...]} DELETE
//   /api/v1/tokens/{id}                                    -> {id, revoked, ...} POST
//   /api/v1/sessions      (with a bearer token)            -> 201 {user, csrf, expires} +
//   Set-Cookie DELETE /api/v1/sessions      (with the cookie)                -> {ended} +
//   Set-Cookie clearing it GET    /api/v1/whoami                                         -> {user,
//   role, actor, via, job?} GET    /api/v1/users                                          ->
//   {items: [{name, role}]} PUT    /api/v1/users/{name}  {role}                           -> {name,
//   role} (admin only)
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <utility>
#include <vector>

#include "auth/auth_config.h"
#include "auth/authenticator.h"
#include "auth/principal.h"
#include "common/clock.h"
#include "common/status.h"

namespace berth::auth {

struct RouteReply {
  int status = 200;
  nlohmann::json body;
  std::vector<std::pair<std::string, std::string>> headers;  // e.g. {"Set-Cookie", ...}
};

// http::HttpStatusFor (http/status_map.h): the API's one mapping.
int HttpStatusOf(const Status& st);
// {"error": {"code": "permission_denied", "message": ...}}, the API's error form.
RouteReply ErrorReply(const Status& st);

// {id, user, created, expires, lastUsed, revoked, description, job}: never
// the hash. Times RFC 3339; null when never.
nlohmann::json TokenJson(const store::TokenRecord& t);
nlohmann::json PrincipalJson(const Principal& p);

class AuthRoutes {
 public:
  AuthRoutes(Authenticator& auth, store::AuthStore& store, const Clock& clock)
      : auth_(auth), store_(store), clock_(clock) {}

  RouteReply CreateToken(const Principal& p, const std::string& body);
  // `user`: "" for the caller's own (an admin: everyone's); `with_jobs`:
  // include job-scoped tokens.
  RouteReply ListTokens(const Principal& p, const std::string& user, bool with_jobs);
  RouteReply RevokeToken(const Principal& p, const std::string& id);

  // A token login (the principal must have come through a bearer token).
  // The session lasts config.session_ttl, never past the token's expiry.
  RouteReply Login(const Principal& p, bool tls, const AuthConfig& config);
  RouteReply Logout(const Principal& p, const std::string& session_cookie, bool tls);

  RouteReply WhoAmI(const Principal& p);
  RouteReply ListUsers(const Principal& p);
  RouteReply SetUserRole(const Principal& p, const std::string& name, const std::string& body);

 private:
  Authenticator& auth_;
  store::AuthStore& store_;
  const Clock& clock_;
};

}  // namespace berth::auth
