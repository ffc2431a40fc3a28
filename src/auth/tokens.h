// API tokens: berth_<id>_<secret>, where <id> (16 hex digits) is public and
// names the token in lists and logs, and <secret> is 32 bytes from the
// kernel's random source (64 hex digits). Only SHA-256(secret) is stored,
// so the database (or a backup of it) grants nothing; the token itself is
// shown once, when it is made. A token may expire, is revocable, and records
// when it was last used. Job-scoped tokens are made for one job's task
// (BERTH_TOKEN), act for its owner and are revoked when the job ends.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/status.h"
#include "store/auth_store.h"

namespace berth::auth {

inline constexpr char kTokenPrefix[] = "berth_";
inline constexpr size_t kTokenIdBytes = 8;
inline constexpr size_t kTokenSecretBytes = 32;
// The longest lifetime a token may be given (and the longest --expires).
inline constexpr DurationMs kMaxTokenTtl = 3650LL * 24 * kHour;
// The most live (unrevoked, unexpired) tokens a user may hold, job tokens aside.
inline constexpr size_t kMaxLiveTokensPerUser = 100;

struct ParsedToken {
  std::string id;
  std::string secret;
};

// Splits "berth_<id>_<secret>"; Unauthenticated saying what is wrong with
// its shape (never echoing the secret).
Result<ParsedToken> ParseToken(std::string_view text);

struct NewToken {
  std::string token;          // berth_<id>_<secret>: show it once, never store it
  store::TokenRecord record;  // what was stored
};

class TokenService {
 public:
  // How often last_used is written for a busy token.
  static constexpr DurationMs kTouchInterval = kMinute;

  TokenService(store::AuthStore& store, const Clock& clock) : store_(store), clock_(clock) {}

  // A token for `user` lasting `ttl` (nullopt: until revoked), recorded as
  // made by `actor`. InvalidArgument for a bad name, ttl or description;
  // FailedPrecondition when the user holds kMaxLiveTokensPerUser already.
  Result<NewToken> Create(const std::string& user, std::optional<DurationMs> ttl,
                          const std::string& description, const std::string& actor);

  // A token for job `job`'s task, acting for `owner` until the job ends.
  Result<NewToken> CreateForJob(int64_t job, const std::string& owner);
  // Revokes job `job`'s tokens (call when it reaches a terminal state);
  // returns how many were live. Idempotent.
  Result<int> RevokeForJob(int64_t job);

  // The stored record of `token` when it is genuine, unrevoked and
  // unexpired; Unauthenticated with the reason otherwise. The secret is
  // compared in constant time, and an unknown id costs the same comparison.
  Result<store::TokenRecord> Verify(std::string_view token);

 private:
  Result<NewToken> Make(const std::string& user, TimeMs expires, std::optional<int64_t> job,
                        const std::string& description, const std::string& actor);
  store::AuthStore& store_;
  const Clock& clock_;
};

}  // namespace berth::auth
