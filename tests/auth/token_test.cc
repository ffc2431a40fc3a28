// Tokens: made, verified, hashed at rest, revoked, expired, job-scoped.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "auth/crypto.h"
#include "auth/tokens.h"
#include "auth_test_util.h"
#include "model/job.h"
#include "store/migrations.h"

namespace berth::auth {
namespace {

using ::testing::HasSubstr;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST_F(AuthTest, TokenRoundTripActsForItsUser) {
  auto t = auth_->tokens().Create("alice", std::nullopt, "laptop", "alice");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_THAT(t->token, ::testing::MatchesRegex("berth_[0-9a-f]{16}_[0-9a-f]{64}"));
  auto p = Bearer(t->token);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->user, "alice");
  EXPECT_EQ(p->actor, "alice");
  EXPECT_EQ(p->via, Via::kToken);
  EXPECT_EQ(p->role, Role::kUser);
  EXPECT_EQ(p->uid, std::optional<uid_t>(1001));
  EXPECT_EQ(p->token_id, t->record.id);
  EXPECT_FALSE(p->job);
}

TEST_F(AuthTest, TheDatabaseHoldsOnlyTheHashOfTheSecret) {
  auto t = auth_->tokens().Create("alice", std::nullopt, "", "alice");
  ASSERT_TRUE(t.ok());
  auto parsed = ParseToken(t->token);
  ASSERT_TRUE(parsed.ok());
  ASSERT_TRUE(Bearer(t->token).ok());
  // Every file of the database (the main file and its write-ahead log).
  std::string all;
  for (const auto& e : std::filesystem::directory_iterator(dir_)) all += ReadAll(e.path());
  ASSERT_THAT(all, HasSubstr(t->record.id));                    // the row is there...
  EXPECT_THAT(all, HasSubstr(Sha256Hex(parsed->secret)));       // ...with the hash...
  EXPECT_THAT(all, ::testing::Not(HasSubstr(parsed->secret)));  // ...and never the secret
  auto rec = auth_store_->GetToken(t->record.id);
  ASSERT_TRUE(rec.ok() && *rec);
  EXPECT_EQ((*rec)->hash, Sha256Hex(parsed->secret));
}

TEST_F(AuthTest, AWrongSecretOrMalformedTokenIsRefused) {
  auto t = auth_->tokens().Create("alice", std::nullopt, "", "alice");
  ASSERT_TRUE(t.ok());
  std::string wrong = t->token;
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  auto p = Bearer(wrong);
  EXPECT_EQ(p.status().code(), StatusCode::kUnauthenticated);
  EXPECT_THAT(p.status().message(), HasSubstr("invalid token"));
  for (std::string bad : {std::string("berth_xyz"), std::string("ghp_abc"), std::string(""),
                          "berth_" + std::string(16, 'A') + "_" + std::string(64, 'a')}) {
    auto q = Bearer(bad);
    EXPECT_EQ(q.status().code(), StatusCode::kUnauthenticated) << bad;
    EXPECT_THAT(q.status().message(), HasSubstr("malformed token")) << bad;
  }
  // An unknown id with a well-formed secret: refused the same way.
  auto u = Bearer("berth_" + std::string(16, 'a') + "_" + std::string(64, 'b'));
  EXPECT_EQ(u.status().code(), StatusCode::kUnauthenticated);
  EXPECT_THAT(u.status().message(), HasSubstr("invalid token"));
}

TEST_F(AuthTest, SecretsAreComparedInConstantTime) {
  EXPECT_TRUE(ConstantTimeEqual("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEqual("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEqual("abc", "abcd"));
  auto t = auth_->tokens().Create("alice", std::nullopt, "", "alice");
  ASSERT_TRUE(t.ok());
  long before = ConstantTimeCompareCount();
  ASSERT_TRUE(Bearer(t->token).ok());
  EXPECT_EQ(ConstantTimeCompareCount(), before + 1);
  // An unknown id costs the same comparison.
  before = ConstantTimeCompareCount();
  EXPECT_FALSE(Bearer("berth_" + std::string(16, 'a') + "_" + std::string(64, 'b')).ok());
  EXPECT_EQ(ConstantTimeCompareCount(), before + 1);
}

TEST_F(AuthTest, ARevokedTokenIsRefusedWithTheReason) {
  auto t = auth_->tokens().Create("alice", std::nullopt, "", "alice");
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE(Bearer(t->token).ok());
  auto r = auth_store_->RevokeToken(t->record.id, "alice", clock_.Now());
  ASSERT_TRUE(r.ok() && *r);
  auto p = Bearer(t->token);
  EXPECT_EQ(p.status().code(), StatusCode::kUnauthenticated);
  EXPECT_THAT(p.status().message(), HasSubstr("was revoked"));
  // Revoking twice changes nothing.
  auto again = auth_store_->RevokeToken(t->record.id, "alice", clock_.Now());
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  // The audit trail has both events, with the actor.
  auto events = store_->EventsSince(0, 100);
  ASSERT_TRUE(events.ok());
  std::vector<std::string> types;
  for (const auto& e : *events) types.push_back(e.type);
  EXPECT_THAT(types, ::testing::ElementsAre("TokenCreated", "TokenRevoked"));
  EXPECT_EQ((*events)[1].data["actor"], "alice");
}

TEST_F(AuthTest, AnExpiredTokenIsRefused) {
  auto t = auth_->tokens().Create("alice", 30 * 24 * kHour, "", "alice");
  ASSERT_TRUE(t.ok());
  clock_.Advance(30 * 24 * kHour - 1);
  EXPECT_TRUE(Bearer(t->token).ok());
  clock_.Advance(1);
  auto p = Bearer(t->token);
  EXPECT_EQ(p.status().code(), StatusCode::kUnauthenticated);
  EXPECT_THAT(p.status().message(), HasSubstr("expired"));
  EXPECT_EQ(auth_->tokens().Create("alice", 0, "", "alice").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(auth_->tokens().Create("alice", kMaxTokenTtl + 1, "", "alice").status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(AuthTest, AUserHoldsABoundedNumberOfLiveTokens) {
  std::string first;
  for (size_t i = 0; i < kMaxLiveTokensPerUser; ++i) {
    auto t = auth_->tokens().Create("alice", std::nullopt, "", "alice");
    ASSERT_TRUE(t.ok()) << i << ": " << t.status().ToString();
    if (i == 0) first = t->record.id;
  }
  auto over = auth_->tokens().Create("alice", std::nullopt, "", "alice");
  EXPECT_EQ(over.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(over.status().message(), HasSubstr("revoke some first"));
  EXPECT_TRUE(auth_->tokens().Create("bob", std::nullopt, "", "bob").ok());
  ASSERT_TRUE(auth_store_->RevokeToken(first, "alice", clock_.Now()).ok());
  EXPECT_TRUE(auth_->tokens().Create("alice", std::nullopt, "", "alice").ok());
}

TEST_F(AuthTest, LastUsedIsRecordedAtMostOncePerInterval) {
  auto t = auth_->tokens().Create("alice", std::nullopt, "", "alice");
  ASSERT_TRUE(t.ok());
  auto last_used = [&] { return (*auth_store_->GetToken(t->record.id))->last_used; };
  EXPECT_EQ(last_used(), 0);
  ASSERT_TRUE(Bearer(t->token).ok());
  EXPECT_EQ(last_used(), kStart);
  clock_.Advance(TokenService::kTouchInterval - 1);
  ASSERT_TRUE(Bearer(t->token).ok());
  EXPECT_EQ(last_used(), kStart);
  clock_.Advance(1);
  ASSERT_TRUE(Bearer(t->token).ok());
  EXPECT_EQ(last_used(), kStart + TokenService::kTouchInterval);
}

TEST_F(AuthTest, AJobTokenActsForTheOwnerUntilTheJobEnds) {
  model::JobSpec spec;
  spec.name = "train";
  spec.user = "alice";
  spec.command = {"true"};
  auto id = store_->SubmitJob(spec, clock_.Now());
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  auto t = auth_->tokens().CreateForJob(*id, "alice");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  auto p = Bearer(t->token);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->user, "alice");
  EXPECT_EQ(p->via, Via::kJobToken);
  EXPECT_EQ(p->actor, "job:" + std::to_string(*id));
  EXPECT_EQ(p->job, std::optional<int64_t>(*id));
  auto n = auth_->tokens().RevokeForJob(*id);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(*auth_->tokens().RevokeForJob(*id), 0);  // idempotent
  EXPECT_EQ(Bearer(t->token).status().code(), StatusCode::kUnauthenticated);
}

TEST_F(AuthTest, AJobTokenIsRefusedOnceItsJobEndedEvenIfNotRevoked) {
  model::JobSpec spec;
  spec.name = "train";
  spec.user = "root";
  spec.command = {"true"};
  auto id = store_->SubmitJob(spec, clock_.Now());
  ASSERT_TRUE(id.ok());
  auto t = auth_->tokens().CreateForJob(*id, "root");
  ASSERT_TRUE(t.ok());
  auto p = Bearer(t->token);
  ASSERT_TRUE(p.ok());
  // An admin's job hands its task no more than a user's rights.
  EXPECT_EQ(p->role, Role::kUser);
  ASSERT_TRUE(store_
                  ->Transition(*id, model::JobState::kPending, model::JobState::kCancelled, {}, "",
                               "", clock_.Now())
                  .ok());
  auto q = Bearer(t->token);
  EXPECT_EQ(q.status().code(), StatusCode::kUnauthenticated);
  EXPECT_THAT(q.status().message(), HasSubstr("has ended"));
  // ...and it was revoked on the way.
  EXPECT_NE((*auth_store_->GetToken(t->record.id))->revoked, 0);
}

TEST_F(AuthTest, TheSchemaHasTheAuthTables) {
  EXPECT_EQ(store_->SchemaVersion(), store::LatestSchemaVersion());
  EXPECT_GE(store_->SchemaVersion(), 6);
  EXPECT_EQ(store::SchemaMigrations()[5].version, 6);
  // A role outside the four is refused by the table itself.
  EXPECT_FALSE(auth_store_->PutUser({"alice", "superuser", 0}, "test", clock_.Now()).ok());
}

}  // namespace
}  // namespace berth::auth
