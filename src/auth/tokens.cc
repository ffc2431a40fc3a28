#include "auth/tokens.h"

#include <algorithm>

#include "auth/crypto.h"
#include "auth/principal.h"
#include "common/secure_random.h"

namespace berth::auth {
namespace {

bool IsLowerHex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace

Result<ParsedToken> ParseToken(std::string_view text) {
  const std::string_view prefix = kTokenPrefix;
  const size_t id_len = kTokenIdBytes * 2, secret_len = kTokenSecretBytes * 2;
  if (text.substr(0, prefix.size()) != prefix)
    return Unauthenticated(
        "malformed token: a Berth token starts with \"berth_\" (berth token create)");
  std::string_view rest = text.substr(prefix.size());
  if (rest.size() != id_len + 1 + secret_len || rest[id_len] != '_')
    return Unauthenticated("malformed token: expected berth_<16 hex digits>_<64 hex digits>");
  std::string_view id = rest.substr(0, id_len), secret = rest.substr(id_len + 1);
  if (!IsLowerHex(id) || !IsLowerHex(secret))
    return Unauthenticated("malformed token: its id and secret are lower-case hex digits");
  return ParsedToken{std::string(id), std::string(secret)};
}

Result<NewToken> TokenService::Make(const std::string& user, TimeMs expires,
                                    std::optional<int64_t> job, const std::string& description,
                                    const std::string& actor) {
  RETURN_IF_ERROR(CheckUserName(user, "user"));
  if (description.size() > 256) return InvalidArgument("description: at most 256 characters");
  for (unsigned char c : description)
    if (c < 0x20 || c == 0x7f)
      return InvalidArgument("description: must not contain control characters");
  const TimeMs now = clock_.Now();
  // A fresh id collides with an existing one with probability ~n/2^64; try
  // again rather than fail if it ever does.
  for (int attempt = 0;; ++attempt) {
    ASSIGN_OR_RETURN(std::string id_bytes, SecureRandomBytes(kTokenIdBytes));
    ASSIGN_OR_RETURN(std::string secret_bytes, SecureRandomBytes(kTokenSecretBytes));
    NewToken t;
    std::string secret = HexEncode(secret_bytes);
    t.record.id = HexEncode(id_bytes);
    t.record.user = user;
    t.record.hash = Sha256Hex(secret);
    t.record.created = now;
    t.record.expires = expires;
    t.record.job = job;
    t.record.description = description;
    t.token = kTokenPrefix + t.record.id + "_" + secret;
    Status st = store_.InsertToken(t.record, actor, now);
    if (st.code() == StatusCode::kAlreadyExists && attempt < 3) continue;
    RETURN_IF_ERROR(st);
    return t;
  }
}

Result<NewToken> TokenService::Create(const std::string& user, std::optional<DurationMs> ttl,
                                      const std::string& description, const std::string& actor) {
  TimeMs expires = 0;
  if (ttl) {
    if (*ttl <= 0) return InvalidArgument("expires: must be a positive duration (e.g. 30d)");
    if (*ttl > kMaxTokenTtl) return InvalidArgument("expires: at most 3650d");
    expires = clock_.Now() + *ttl;
  }
  RETURN_IF_ERROR(CheckUserName(user, "user"));
  ASSIGN_OR_RETURN(auto existing, store_.ListTokens(user, /*with_job=*/false));
  const TimeMs now = clock_.Now();
  size_t live = std::count_if(existing.begin(), existing.end(), [&](const store::TokenRecord& t) {
    return !t.revoked && (!t.expires || t.expires > now);
  });
  if (live >= kMaxLiveTokensPerUser)
    return FailedPrecondition(
        "user " + user + " holds " + std::to_string(live) +
        " live tokens, the most allowed; revoke some first (berth token list)");
  return Make(user, expires, std::nullopt, description, actor);
}

Result<NewToken> TokenService::CreateForJob(int64_t job, const std::string& owner) {
  if (job <= 0) return InvalidArgument("job: must be a job id (a positive integer)");
  std::string actor = "job:" + std::to_string(job);
  return Make(owner, 0, job, "task token of job " + std::to_string(job), actor);
}

Result<int> TokenService::RevokeForJob(int64_t job) {
  return store_.RevokeJobTokens(job, clock_.Now());
}

Result<store::TokenRecord> TokenService::Verify(std::string_view token) {
  ASSIGN_OR_RETURN(ParsedToken p, ParseToken(token));
  ASSIGN_OR_RETURN(std::optional<store::TokenRecord> rec, store_.GetToken(p.id));
  const std::string hash = Sha256Hex(p.secret);
  // The same comparison for an unknown id, so that timing does not tell
  // which ids exist.
  static const std::string kNoHash(64, '0');
  const bool match = ConstantTimeEqual(hash, rec ? rec->hash : kNoHash);
  if (!rec || !match) return Unauthenticated("invalid token (unknown id or wrong secret)");
  const TimeMs now = clock_.Now();
  if (rec->revoked)
    return Unauthenticated("token " + rec->id + " was revoked at " + FormatTime(rec->revoked));
  if (rec->expires && now >= rec->expires)
    return Unauthenticated("token " + rec->id + " expired at " + FormatTime(rec->expires) +
                           " (berth token create makes a new one)");
  if (now - rec->last_used >= kTouchInterval) {
    // Best effort: a failed write must not refuse a valid token.
    if (store_.TouchToken(rec->id, now).ok()) rec->last_used = now;
  }
  return *rec;
}

}  // namespace berth::auth
