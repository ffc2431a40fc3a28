// Tokens, browser sessions, whoami and users: auth::AuthRoutes (the logic,
// auth/token_routes.h) served over HTTP.
//   POST   /api/v1/tokens            {user?, expires?, description?}
//   GET    /api/v1/tokens[?user=U&jobs=true]
//   DELETE /api/v1/tokens/{id}       (also POST /api/v1/tokens/{id}/revoke)
//   POST   /api/v1/sessions          a token login -> Set-Cookie + {csrf}
//   DELETE /api/v1/sessions          logout
//   GET    /api/v1/whoami
//   GET    /api/v1/users
//   PUT    /api/v1/users/{name}      {role}  (admin)
#include <memory>

#include "api/caller.h"
#include "api/routes.h"
#include "auth/token_routes.h"

namespace berth::api {
namespace {

void Reply(http::Response& res, const auth::RouteReply& r) {
  ReplyJson(res, r.status, r.body);
  for (const auto& [k, v] : r.headers) res.headers.Add(k, v);
}

}  // namespace

void RegisterAuthRoutes(http::Router& r, const RouteContext& ctx) {
  if (!ctx.auth.authenticator || !ctx.auth.store) return;
  auto routes =
      std::make_shared<auth::AuthRoutes>(*ctx.auth.authenticator, *ctx.auth.store, ctx.clock);
  const bool tls = ctx.auth.tls;
  auto config = [&ctx] { return ctx.auth.config ? ctx.auth.config() : auth::AuthConfig{}; };
  r.Post("/api/v1/tokens", [routes](const http::Request& req, http::Response& res) {
    Reply(res, routes->CreateToken(Caller(req), req.body));
  });
  r.Get("/api/v1/tokens", [routes](const http::Request& req, http::Response& res) {
    Reply(res, routes->ListTokens(Caller(req), req.Param("user"), Truthy(req.Param("jobs"))));
  });
  auto revoke = [routes](const http::Request& req, http::Response& res) {
    Reply(res, routes->RevokeToken(Caller(req), req.Capture("id")));
  };
  r.Delete("/api/v1/tokens/{id}", revoke);
  r.Post("/api/v1/tokens/{id}/revoke", revoke);
  r.Post("/api/v1/sessions", [routes, tls, config](const http::Request& req, http::Response& res) {
    Reply(res, routes->Login(Caller(req), tls, config()));
  });
  r.Delete("/api/v1/sessions", [routes, tls](const http::Request& req, http::Response& res) {
    std::string cookie = auth::CookieValue(req.Header("Cookie"), auth::kSessionCookie).value_or("");
    Reply(res, routes->Logout(Caller(req), cookie, tls));
  });
  r.Get("/api/v1/whoami", [routes](const http::Request& req, http::Response& res) {
    Reply(res, routes->WhoAmI(Caller(req)));
  });
  r.Get("/api/v1/users", [routes](const http::Request& req, http::Response& res) {
    Reply(res, routes->ListUsers(Caller(req)));
  });
  r.Put("/api/v1/users/{name}", [routes](const http::Request& req, http::Response& res) {
    Reply(res, routes->SetUserRole(Caller(req), req.Capture("name"), req.body));
  });
}

}  // namespace berth::api
