#include "auth/sessions.h"

#include "auth/crypto.h"
#include "common/secure_random.h"

namespace berth::auth {
namespace {

constexpr size_t kSessionIdBytes = 32;
constexpr size_t kCsrfBytes = 32;

}  // namespace

Result<NewSession> SessionService::Create(const std::string& user, const std::string& token_id,
                                          DurationMs ttl) {
  if (ttl <= 0) return InvalidArgument("session ttl: must be positive");
  ASSIGN_OR_RETURN(std::string id, SecureRandomBytes(kSessionIdBytes));
  ASSIGN_OR_RETURN(std::string csrf, SecureRandomBytes(kCsrfBytes));
  const TimeMs now = clock_.Now();
  NewSession s;
  s.cookie_value = HexEncode(id);
  s.csrf = HexEncode(csrf);
  s.record.id_hash = Sha256Hex(s.cookie_value);
  s.record.user = user;
  s.record.csrf = s.csrf;
  s.record.token_id = token_id;
  s.record.created = now;
  s.record.expires = now + ttl;
  RETURN_IF_ERROR(store_.InsertSession(s.record, now));
  return s;
}

Result<store::SessionRecord> SessionService::Verify(std::string_view cookie_value) {
  if (cookie_value.size() != kSessionIdBytes * 2)
    return Unauthenticated("invalid session cookie (log in again with a token)");
  // Looked up by its hash: the stored key is not the cookie, and a lookup
  // by hash leaks nothing useful through timing.
  ASSIGN_OR_RETURN(std::optional<store::SessionRecord> rec,
                   store_.GetSession(Sha256Hex(cookie_value)));
  if (!rec) return Unauthenticated("unknown session (log in again with a token)");
  if (rec->revoked) return Unauthenticated("session ended (logged out or its token revoked)");
  if (clock_.Now() >= rec->expires)
    return Unauthenticated("session expired at " + FormatTime(rec->expires) +
                           " (log in again with a token)");
  return *rec;
}

Result<bool> SessionService::End(std::string_view cookie_value) {
  return store_.RevokeSession(Sha256Hex(cookie_value), clock_.Now());
}

std::string SessionSetCookie(const std::string& cookie_value, DurationMs ttl, bool tls) {
  std::string c = std::string(kSessionCookie) + "=" + cookie_value +
                  "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" + std::to_string(ttl / 1000);
  if (tls) c += "; Secure";
  return c;
}

std::string SessionClearCookie(bool tls) {
  std::string c = std::string(kSessionCookie) + "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0";
  if (tls) c += "; Secure";
  return c;
}

std::optional<std::string> CookieValue(std::string_view header, std::string_view name) {
  size_t pos = 0;
  while (pos < header.size()) {
    size_t end = header.find(';', pos);
    if (end == std::string_view::npos) end = header.size();
    std::string_view part = header.substr(pos, end - pos);
    while (!part.empty() && (part.front() == ' ' || part.front() == '\t')) part.remove_prefix(1);
    while (!part.empty() && (part.back() == ' ' || part.back() == '\t')) part.remove_suffix(1);
    size_t eq = part.find('=');
    if (eq != std::string_view::npos && part.substr(0, eq) == name)
      return std::string(part.substr(eq + 1));
    pos = end + 1;
  }
  return std::nullopt;
}

}  // namespace berth::auth
