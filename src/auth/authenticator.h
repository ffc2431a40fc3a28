// Credentials -> Principal: the one place berthd decides who is asking.
//
// The HTTP front end fills a transport-neutral Credentials from the
// connection and the request (the Unix socket's SO_PEERCRED uid, the
// Authorization header, the session cookie, Origin, Host, ...) and calls
// Authenticate before any route except the public ones (IsPublic in
// auth_config.h). There is no way to turn this off.
//
// What is checked, in order (docs/security.md):
//  1. A request whose Origin is not its Host is refused, whatever it
//     carries (cross-site requests, DNS rebinding through a browser).
//  2. A change (any method but GET, HEAD, OPTIONS) with a body must say it
//     is JSON or YAML: the content types a cross-site form or a simple
//     fetch can send (text/plain, form encodings) are refused.
//  3. One credential decides, the first present of: a bearer token (a
//     user's or a job's), the session cookie, the socket peer's uid. None:
//     Unauthenticated.
//  4. A session used for a change must carry X-Berth-CSRF equal to its
//     CSRF value and an Origin equal to Host. (Reads need neither, so an
//     EventSource with the cookie works.)
//  5. X-Berth-Act-As: only a service account may act for another user, and
//     never for an admin; the Principal then names both.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>

#include "auth/principal.h"
#include "auth/sessions.h"
#include "auth/tokens.h"
#include "common/clock.h"
#include "common/status.h"
#include "store/auth_store.h"
#include "store/store.h"

namespace berth::auth {

inline constexpr char kActAsHeader[] = "X-Berth-Act-As";

struct Credentials {
  std::optional<uid_t> peer_uid;       // Unix socket: SO_PEERCRED
  std::optional<std::string> bearer;   // the token of "Authorization: Bearer <token>"
  std::optional<std::string> session;  // the berth_session cookie's value
  std::optional<std::string> csrf;     // X-Berth-CSRF
  std::optional<std::string> act_as;   // X-Berth-Act-As
  std::string origin;                  // Origin ("" when absent)
  std::string host;                    // Host
  std::string method = "GET";
  std::string content_type;    // Content-Type ("" when absent)
  int64_t content_length = 0;  // body bytes
};

// Fills Credentials from a request: `header(name)` returns a header's value
// (case-insensitive name) or nullopt; `peer_uid` is the socket peer's uid
// (nullopt over TCP). Reads Authorization, Cookie, X-Berth-CSRF,
// X-Berth-Act-As, Origin, Host, Content-Type.
Credentials CredentialsFromRequest(
    std::string method, const std::function<std::optional<std::string>(std::string_view)>& header,
    std::optional<uid_t> peer_uid, int64_t content_length);

// The token of an Authorization header value ("Bearer <token>", the scheme
// case-insensitive); nullopt when it is not a bearer credential.
std::optional<std::string> BearerToken(std::string_view authorization);

// Whether an Origin header value names the same host and port as Host
// ("http://h:7420" and "h:7420"; default ports 80/443 may be omitted).
bool OriginMatchesHost(std::string_view origin, std::string_view host);

// Whether `method` changes state (anything but GET, HEAD, OPTIONS).
bool IsChange(std::string_view method);

struct AuthenticatorOptions {
  // The daemon's own uid: like root, its socket peers are admins.
  uid_t daemon_uid = 0;
  // Account lookups; the defaults use getpwuid_r / getpwnam_r.
  std::function<std::optional<std::string>(uid_t)> name_of_uid;
  std::function<std::optional<uid_t>(const std::string&)> uid_of_name;
  // Whether a user is an admin by configuration (auth.admins); may change
  // at run time. Null: nobody besides root and the daemon's account.
  std::function<bool(const std::string&)> configured_admin;
};

class Authenticator {
 public:
  // `jobs` (may be null) lets a job token be refused as soon as its job
  // has ended, even if its revocation was lost to a crash.
  Authenticator(store::AuthStore& store, const store::Store* jobs, const Clock& clock,
                AuthenticatorOptions options);

  Result<Principal> Authenticate(const Credentials& c);

  // A user's role: root, the daemon's own account and auth.admins are
  // admins whatever the users table says; then the users table; else `user`.
  Result<Role> RoleOf(const std::string& user);

  TokenService& tokens() { return tokens_; }
  SessionService& sessions() { return sessions_; }

 private:
  Result<Principal> FromToken(const std::string& token);
  Result<Principal> FromSession(const Credentials& c);
  Result<Principal> FromPeer(uid_t uid);
  Result<Principal> ActAs(Principal p, const std::string& target);

  store::AuthStore& store_;
  const store::Store* jobs_;
  const Clock& clock_;
  AuthenticatorOptions options_;
  std::string daemon_user_;
  TokenService tokens_;
  SessionService sessions_;
};

}  // namespace berth::auth
