#include "auth/authenticator.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <vector>

#include "auth/crypto.h"
#include "model/job.h"

namespace berth::auth {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<std::string> DefaultNameOfUid(uid_t uid) {
  struct passwd pw, *out = nullptr;
  std::vector<char> buf(16384);
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &out) != 0 || !out || !out->pw_name ||
      !*out->pw_name)
    return std::nullopt;
  return std::string(out->pw_name);
}

std::optional<uid_t> DefaultUidOfName(const std::string& name) {
  struct passwd pw, *out = nullptr;
  std::vector<char> buf(16384);
  if (::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &out) != 0 || !out)
    return std::nullopt;
  return out->pw_uid;
}

// "host:port" with the scheme's default port dropped, lower case.
std::string NormalAuthority(std::string_view authority, std::string_view scheme) {
  std::string a = Lower(Trim(authority));
  if (scheme == "http" && a.size() > 3 && a.ends_with(":80")) a.resize(a.size() - 3);
  if (scheme == "https" && a.size() > 4 && a.ends_with(":443")) a.resize(a.size() - 4);
  return a;
}

bool IsBodyTypeAllowed(std::string_view content_type) {
  std::string media = Lower(Trim(content_type.substr(0, content_type.find(';'))));
  return media == "application/json" || media == "application/yaml" ||
         media == "application/x-yaml" || media == "text/yaml";
}

}  // namespace

std::optional<std::string> BearerToken(std::string_view authorization) {
  std::string_view v = Trim(authorization);
  if (v.size() < 7 || Lower(v.substr(0, 7)) != "bearer ") return std::nullopt;
  return std::string(Trim(v.substr(7)));
}

Credentials CredentialsFromRequest(
    std::string method, const std::function<std::optional<std::string>(std::string_view)>& header,
    std::optional<uid_t> peer_uid, int64_t content_length) {
  Credentials c;
  c.peer_uid = peer_uid;
  c.method = std::move(method);
  c.content_length = content_length;
  if (auto a = header("Authorization")) {
    c.bearer = BearerToken(*a);
    // Some other scheme: present it as a malformed token rather than
    // falling back to a weaker credential.
    if (!c.bearer) c.bearer = std::string();
  }
  if (auto cookie = header("Cookie")) c.session = CookieValue(*cookie, kSessionCookie);
  c.csrf = header(kCsrfHeader);
  c.act_as = header(kActAsHeader);
  c.origin = header("Origin").value_or("");
  c.host = header("Host").value_or("");
  c.content_type = header("Content-Type").value_or("");
  return c;
}

bool OriginMatchesHost(std::string_view origin, std::string_view host) {
  size_t sep = origin.find("://");
  if (sep == std::string_view::npos || host.empty()) return false;  // also "null"
  std::string scheme = Lower(origin.substr(0, sep));
  if (scheme != "http" && scheme != "https") return false;
  std::string_view authority = origin.substr(sep + 3);
  if (authority.empty() || authority.find('/') != std::string_view::npos) return false;
  // Host carries no scheme: compare against both default ports' forms.
  return NormalAuthority(authority, scheme) == NormalAuthority(host, scheme);
}

bool IsChange(std::string_view method) {
  return !(method == "GET" || method == "HEAD" || method == "OPTIONS");
}

Authenticator::Authenticator(store::AuthStore& store, const store::Store* jobs, const Clock& clock,
                             AuthenticatorOptions options)
    : store_(store),
      jobs_(jobs),
      clock_(clock),
      options_(std::move(options)),
      tokens_(store, clock),
      sessions_(store, clock) {
  if (!options_.name_of_uid) options_.name_of_uid = DefaultNameOfUid;
  if (!options_.uid_of_name) options_.uid_of_name = DefaultUidOfName;
  daemon_user_ = options_.name_of_uid(options_.daemon_uid).value_or("root");
}

Result<Role> Authenticator::RoleOf(const std::string& user) {
  if (user == "root" || user == daemon_user_) return Role::kAdmin;
  if (options_.configured_admin && options_.configured_admin(user)) return Role::kAdmin;
  ASSIGN_OR_RETURN(std::optional<store::UserRecord> rec, store_.GetUser(user));
  if (!rec) return Role::kUser;
  return ParseRole(rec->role, "users table: role of " + user);
}

Result<Principal> Authenticator::Authenticate(const Credentials& c) {
  if (!c.origin.empty() && !OriginMatchesHost(c.origin, c.host))
    return PermissionDenied("cross-site request refused: Origin \"" + c.origin +
                            "\" is not this server (Host \"" + c.host + "\")");
  const bool change = IsChange(c.method);
  if (change && c.content_length > 0 && !IsBodyTypeAllowed(c.content_type))
    return PermissionDenied(
        "refused: a request that changes state must send its body as Content-Type "
        "application/json or application/yaml, got \"" +
        c.content_type + "\" (the types a cross-site form can send are not accepted)");

  Result<Principal> p = Unauthenticated("");
  if (c.bearer) {
    p = FromToken(*c.bearer);
  } else if (c.session) {
    p = FromSession(c);
  } else if (c.peer_uid) {
    p = FromPeer(*c.peer_uid);
  } else {
    return Unauthenticated(
        "no credentials: use the Unix socket in berthd's data directory, or send "
        "\"Authorization: Bearer <token>\" (berth token create)");
  }
  if (!p.ok()) return p;
  if (c.act_as) return ActAs(std::move(*p), *c.act_as);
  return p;
}

Result<Principal> Authenticator::FromToken(const std::string& token) {
  ASSIGN_OR_RETURN(store::TokenRecord rec, tokens_.Verify(token));
  Principal p;
  p.user = rec.user;
  p.uid = options_.uid_of_name(rec.user);
  ASSIGN_OR_RETURN(p.role, RoleOf(rec.user));
  p.actor = rec.user;
  p.via = Via::kToken;
  p.token_id = rec.id;
  if (rec.job) {
    if (jobs_) {
      auto job = jobs_->GetJob(*rec.job);
      if (!job.ok() || model::IsTerminal(job->state)) {
        (void)tokens_.RevokeForJob(*rec.job);
        return Unauthenticated("token " + rec.id + " belonged to job " + std::to_string(*rec.job) +
                               ", which has ended");
      }
    }
    // A task acts for its owner with no more than a user's rights: an
    // admin's job does not hand admin rights to whatever it runs.
    if (p.role == Role::kAdmin || p.role == Role::kService) p.role = Role::kUser;
    p.via = Via::kJobToken;
    p.job = rec.job;
    p.actor = "job:" + std::to_string(*rec.job);
  }
  return p;
}

Result<Principal> Authenticator::FromSession(const Credentials& c) {
  ASSIGN_OR_RETURN(store::SessionRecord s, sessions_.Verify(*c.session));
  if (IsChange(c.method)) {
    if (!c.csrf || !ConstantTimeEqual(*c.csrf, s.csrf))
      return PermissionDenied(std::string("refused: a change made with a session cookie must carry "
                                          "the session's CSRF value in the ") +
                              kCsrfHeader + " header");
    if (c.origin.empty())
      return PermissionDenied(
          "refused: a change made with a session cookie must carry an Origin header");
  }
  Principal p;
  p.user = s.user;
  p.uid = options_.uid_of_name(s.user);
  ASSIGN_OR_RETURN(p.role, RoleOf(s.user));
  p.actor = s.user;
  p.via = Via::kSession;
  return p;
}

Result<Principal> Authenticator::FromPeer(uid_t uid) {
  std::optional<std::string> name = options_.name_of_uid(uid);
  if (!name)
    return Unauthenticated("uid " + std::to_string(uid) +
                           " has no account on this machine (getpwuid found none)");
  Status valid = CheckUserName(*name, "account of uid " + std::to_string(uid));
  if (!valid.ok()) return Unauthenticated(valid.message());
  Principal p;
  p.user = *name;
  p.uid = uid;
  if (uid == 0 || uid == options_.daemon_uid) {
    p.role = Role::kAdmin;
  } else {
    ASSIGN_OR_RETURN(p.role, RoleOf(*name));
  }
  p.actor = *name;
  p.via = Via::kSocket;
  return p;
}

Result<Principal> Authenticator::ActAs(Principal p, const std::string& target) {
  if (p.role != Role::kService)
    return PermissionDenied(std::string(kActAsHeader) + ": only a service account may act for " +
                            "another user; " + p.user + " is " + RoleName(p.role));
  Status valid = CheckUserName(target, kActAsHeader);
  if (!valid.ok()) return valid;
  ASSIGN_OR_RETURN(Role role, RoleOf(target));
  if (role == Role::kAdmin || role == Role::kService)
    return PermissionDenied(std::string(kActAsHeader) + ": a service may not act for " + target +
                            ", who is " + RoleName(role));
  Principal out;
  out.user = target;
  out.uid = options_.uid_of_name(target);
  out.role = role;
  out.actor = p.user;
  out.via = p.via;
  out.job = p.job;
  out.token_id = p.token_id;
  return out;
}

}  // namespace berth::auth
