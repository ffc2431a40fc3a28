#include "auth/token_routes.h"

#include <algorithm>

#include "auth/authorize.h"
#include "http/status_map.h"
#include "model/spec_reader.h"

namespace berth::auth {
namespace {

using nlohmann::json;

json TimeOrNull(TimeMs t) { return t ? json(FormatTime(t)) : json(nullptr); }

// The request body as a JSON object ("" is {}); InvalidArgument otherwise.
Result<json> BodyObject(const std::string& body) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) return json::object();
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument("body: not valid JSON");
  if (!j.is_object()) return InvalidArgument("body: must be a JSON object");
  return j;
}

Result<std::string> StringField(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return std::string();
  if (!j[key].is_string()) return InvalidArgument(std::string(key) + ": must be a string");
  return j[key].get<std::string>();
}

Status CheckKnown(const json& j, std::initializer_list<const char*> keys) {
  for (const auto& [k, v] : j.items()) {
    if (std::find_if(keys.begin(), keys.end(), [&](const char* x) { return k == x; }) == keys.end())
      return InvalidArgument(k + ": unknown field (known: " + [&] {
        std::string s;
        for (const char* x : keys) s += (s.empty() ? "" : ", ") + std::string(x);
        return s;
      }() + ")");
  }
  return Status::Ok();
}

Status NoJobTokens(const Principal& p) {
  if (p.via == Via::kJobToken)
    return PermissionDenied("a job's token (" + p.actor +
                            ") cannot manage tokens or sessions; use your own token or the socket");
  return Status::Ok();
}

bool IsTokenId(const std::string& id) {
  if (id.size() != kTokenIdBytes * 2) return false;
  return std::all_of(id.begin(), id.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

int HttpStatusOf(const Status& st) { return http::HttpStatusFor(st); }

RouteReply ErrorReply(const Status& st) {
  RouteReply r;
  r.status = HttpStatusOf(st);
  r.body = {{"error", {{"code", StatusCodeName(st.code())}, {"message", st.message()}}}};
  if (st.code() == StatusCode::kUnauthenticated)
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"berth\"");
  return r;
}

json TokenJson(const store::TokenRecord& t) {
  json j{{"id", t.id},
         {"user", t.user},
         {"created", TimeOrNull(t.created)},
         {"expires", TimeOrNull(t.expires)},
         {"lastUsed", TimeOrNull(t.last_used)},
         {"revoked", TimeOrNull(t.revoked)},
         {"description", t.description}};
  j["job"] = t.job ? json(*t.job) : json(nullptr);
  return j;
}

json PrincipalJson(const Principal& p) {
  json j{{"user", p.user}, {"role", RoleName(p.role)}, {"actor", p.actor}, {"via", ViaName(p.via)}};
  j["uid"] = p.uid ? json(static_cast<int64_t>(*p.uid)) : json(nullptr);
  j["job"] = p.job ? json(*p.job) : json(nullptr);
  return j;
}

RouteReply AuthRoutes::CreateToken(const Principal& p, const std::string& body) {
  auto run = [&]() -> Result<RouteReply> {
    RETURN_IF_ERROR(NoJobTokens(p));
    ASSIGN_OR_RETURN(json j, BodyObject(body));
    RETURN_IF_ERROR(CheckKnown(j, {"user", "expires", "description"}));
    ASSIGN_OR_RETURN(std::string user, StringField(j, "user"));
    ASSIGN_OR_RETURN(std::string description, StringField(j, "description"));
    if (user.empty()) user = p.user;
    RETURN_IF_ERROR(CheckUserName(user, "user"));
    if (user != p.user && !p.IsAdmin())
      return PermissionDenied("only an admin may create a token for another user (" + user +
                              "); the request comes from " + p.Describe() + " (" +
                              RoleName(p.role) + ")");
    std::optional<DurationMs> ttl;
    if (j.contains("expires") && !j["expires"].is_null()) {
      std::string text;
      if (j["expires"].is_string()) {
        text = j["expires"].get<std::string>();
      } else if (j["expires"].is_number_integer()) {
        text = std::to_string(j["expires"].get<int64_t>());
      } else {
        return InvalidArgument("expires: must be a duration such as \"30d\" or \"12h\"");
      }
      auto d = model::ParseDuration(text);
      if (!d.ok()) return InvalidArgument("expires: " + d.status().message());
      ttl = *d;
    }
    ASSIGN_OR_RETURN(NewToken t, auth_.tokens().Create(user, ttl, description, p.actor));
    RouteReply r;
    r.status = 201;
    r.body = TokenJson(t.record);
    r.body["token"] = t.token;
    r.body["note"] = "the token is shown only now; berthd keeps only its hash";
    return r;
  };
  auto r = run();
  return r.ok() ? *r : ErrorReply(r.status());
}

RouteReply AuthRoutes::ListTokens(const Principal& p, const std::string& user, bool with_jobs) {
  auto run = [&]() -> Result<RouteReply> {
    RETURN_IF_ERROR(NoJobTokens(p));
    std::string who = user;
    if (!who.empty()) RETURN_IF_ERROR(CheckUserName(who, "user"));
    if (!p.IsAdmin()) {
      if (!who.empty() && who != p.user)
        return PermissionDenied("only an admin may list the tokens of another user (" + who + ")");
      who = p.user;
    }
    ASSIGN_OR_RETURN(auto tokens, store_.ListTokens(who, with_jobs));
    json items = json::array();
    for (const auto& t : tokens) items.push_back(TokenJson(t));
    return RouteReply{200, json{{"items", items}}, {}};
  };
  auto r = run();
  return r.ok() ? *r : ErrorReply(r.status());
}

RouteReply AuthRoutes::RevokeToken(const Principal& p, const std::string& id) {
  auto run = [&]() -> Result<RouteReply> {
    RETURN_IF_ERROR(NoJobTokens(p));
    if (!IsTokenId(id))
      return InvalidArgument("token id: expected 16 hex digits (the id berth token list shows)");
    ASSIGN_OR_RETURN(std::optional<store::TokenRecord> t, store_.GetToken(id));
    // Someone else's token is as good as absent: ids are not secrets, but
    // whose they are is nobody else's business.
    if (!t || (t->user != p.user && !p.IsAdmin())) return NotFound("no token " + id);
    ASSIGN_OR_RETURN(bool changed, store_.RevokeToken(id, p.actor, clock_.Now()));
    ASSIGN_OR_RETURN(t, store_.GetToken(id));
    RouteReply r{200, TokenJson(*t), {}};
    r.body["alreadyRevoked"] = !changed;
    return r;
  };
  auto r = run();
  return r.ok() ? *r : ErrorReply(r.status());
}

RouteReply AuthRoutes::Login(const Principal& p, bool tls, const AuthConfig& config) {
  auto run = [&]() -> Result<RouteReply> {
    if (p.via != Via::kToken || p.token_id.empty())
      return PermissionDenied(
          "a browser session is made from a user's token: send "
          "\"Authorization: Bearer <token>\" (not a job's token or the socket)");
    if (p.actor != p.user)
      return PermissionDenied("a service acting for a user cannot open a session for them");
    DurationMs ttl = config.session_ttl;
    ASSIGN_OR_RETURN(std::optional<store::TokenRecord> t, store_.GetToken(p.token_id));
    if (t && t->expires) ttl = std::min(ttl, t->expires - clock_.Now());
    if (ttl <= 0) return Unauthenticated("token " + p.token_id + " has expired");
    ASSIGN_OR_RETURN(NewSession s, auth_.sessions().Create(p.user, p.token_id, ttl));
    RouteReply r;
    r.status = 201;
    r.body = {{"user", p.user},
              {"role", RoleName(p.role)},
              {"csrf", s.csrf},
              {"csrfHeader", kCsrfHeader},
              {"expires", FormatTime(s.record.expires)}};
    r.headers.emplace_back("Set-Cookie", SessionSetCookie(s.cookie_value, ttl, tls));
    return r;
  };
  auto r = run();
  return r.ok() ? *r : ErrorReply(r.status());
}

RouteReply AuthRoutes::Logout(const Principal& p, const std::string& session_cookie, bool tls) {
  auto run = [&]() -> Result<RouteReply> {
    if (p.via != Via::kSession || session_cookie.empty())
      return InvalidArgument("no session to end: this request did not come with a session cookie");
    ASSIGN_OR_RETURN(bool ended, auth_.sessions().End(session_cookie));
    RouteReply r{200, json{{"ended", ended}}, {}};
    r.headers.emplace_back("Set-Cookie", SessionClearCookie(tls));
    return r;
  };
  auto r = run();
  return r.ok() ? *r : ErrorReply(r.status());
}

RouteReply AuthRoutes::WhoAmI(const Principal& p) { return RouteReply{200, PrincipalJson(p), {}}; }

RouteReply AuthRoutes::ListUsers(const Principal& p) {
  auto run = [&]() -> Result<RouteReply> {
    ASSIGN_OR_RETURN(auto users, store_.ListUsers());
    json items = json::array();
    for (const auto& u : users)
      items.push_back({{"name", u.name}, {"role", u.role}, {"created", TimeOrNull(u.created)}});
    return RouteReply{200, json{{"items", items}}, {}};
  };
  auto r = run();
  return r.ok() ? *r : ErrorReply(r.status());
}

RouteReply AuthRoutes::SetUserRole(const Principal& p, const std::string& name,
                                   const std::string& body) {
  auto run = [&]() -> Result<RouteReply> {
    RETURN_IF_ERROR(Authorize(p, Action::kAdmin, "", "set a user's role"));
    RETURN_IF_ERROR(CheckUserName(name, "user"));
    ASSIGN_OR_RETURN(json j, BodyObject(body));
    RETURN_IF_ERROR(CheckKnown(j, {"role"}));
    ASSIGN_OR_RETURN(std::string role_text, StringField(j, "role"));
    ASSIGN_OR_RETURN(Role role, ParseRole(role_text, "role"));
    ASSIGN_OR_RETURN(Role current, auth_.RoleOf(name));
    if (current == Role::kAdmin && role != Role::kAdmin && (name == "root" || name == p.user))
      return FailedPrecondition("user " + name +
                                " stays admin (root, the daemon's account, or "
                                "yourself: ask another admin)");
    RETURN_IF_ERROR(store_.PutUser({name, RoleName(role), 0}, p.actor, clock_.Now()));
    return RouteReply{200, json{{"name", name}, {"role", RoleName(role)}}, {}};
  };
  auto r = run();
  return r.ok() ? *r : ErrorReply(r.status());
}

}  // namespace berth::auth
