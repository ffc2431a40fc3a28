// Browser sessions. A browser cannot keep a token safe from page scripts,
// and an EventSource cannot send an Authorization header, so a token login
// (POST /api/v1/sessions with the token) makes a server-side session: a
// random id in an HttpOnly, SameSite=Strict cookie (Secure under TLS), of
// which only SHA-256 is stored, plus a CSRF value the page reads from the
// login reply and sends as X-Berth-CSRF on every change. Sessions expire,
// end on logout, and end when the token that made them is revoked.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/status.h"
#include "store/auth_store.h"

namespace berth::auth {

inline constexpr char kSessionCookie[] = "berth_session";
inline constexpr char kCsrfHeader[] = "X-Berth-CSRF";

struct NewSession {
  std::string cookie_value;  // goes only into Set-Cookie
  std::string csrf;          // goes into the reply body for the page
  store::SessionRecord record;
};

class SessionService {
 public:
  SessionService(store::AuthStore& store, const Clock& clock) : store_(store), clock_(clock) {}

  Result<NewSession> Create(const std::string& user, const std::string& token_id, DurationMs ttl);
  // The live session for a cookie value; Unauthenticated with the reason.
  Result<store::SessionRecord> Verify(std::string_view cookie_value);
  // Ends the session; false when it was not live.
  Result<bool> End(std::string_view cookie_value);

 private:
  store::AuthStore& store_;
  const Clock& clock_;
};

// Set-Cookie values: the session's (HttpOnly; SameSite=Strict; Path=/;
// Max-Age; Secure when `tls`) and the one that clears it on logout.
std::string SessionSetCookie(const std::string& cookie_value, DurationMs ttl, bool tls);
std::string SessionClearCookie(bool tls);

// The value of cookie `name` in a Cookie header ("a=1; berth_session=x"),
// nullopt when absent.
std::optional<std::string> CookieValue(std::string_view cookie_header, std::string_view name);

}  // namespace berth::auth
