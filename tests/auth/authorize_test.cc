// Roles and ownership, limits, the token routes and the auth configuration.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <cstdlib>

#include "auth/authorize.h"
#include "auth_test_util.h"

namespace berth::auth {
namespace {

using ::testing::HasSubstr;

Principal P(const std::string& user, Role role) {
  Principal p;
  p.user = user;
  p.actor = user;
  p.role = role;
  return p;
}

TEST(Authorize, EveryoneReadsStateOnlyTheOwnerOrAnAdminChangesOrReadsData) {
  Principal alice = P("alice", Role::kUser), bob = P("bob", Role::kUser),
            root = P("root", Role::kAdmin), vic = P("vic", Role::kViewer);
  for (const Principal& p : {alice, bob, root, vic})
    EXPECT_TRUE(Authorize(p, Action::kRead, "bob", "job 12").ok());
  for (Action a : {Action::kChange, Action::kReadData}) {
    EXPECT_TRUE(Authorize(bob, a, "bob", "job 12").ok());
    EXPECT_TRUE(Authorize(root, a, "bob", "job 12").ok());
    Status st = Authorize(alice, a, "bob", "job 12");
    EXPECT_EQ(st.code(), StatusCode::kPermissionDenied);
    EXPECT_THAT(st.message(), HasSubstr("only bob (the owner) or an admin"));
    EXPECT_THAT(st.message(), HasSubstr("job 12"));
    EXPECT_THAT(st.message(), HasSubstr("alice (user)"));
  }
  Status logs = Authorize(alice, Action::kReadData, "bob", "run 3");
  EXPECT_THAT(logs.message(), HasSubstr("read the logs, artifacts and parameters of run 3"));
  // A viewer submits and changes nothing, not even what bears its name.
  Status sub = Authorize(vic, Action::kSubmit);
  EXPECT_EQ(sub.code(), StatusCode::kPermissionDenied);
  EXPECT_THAT(sub.message(), HasSubstr("read-only"));
  EXPECT_EQ(Authorize(vic, Action::kChange, "vic", "job 1").code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(Authorize(alice, Action::kSubmit).ok());
  EXPECT_TRUE(Authorize(root, Action::kAdmin).ok());
  Status adm = Authorize(alice, Action::kAdmin);
  EXPECT_EQ(adm.code(), StatusCode::kPermissionDenied);
  EXPECT_THAT(adm.message(), HasSubstr("only an admin"));
}

TEST(Authorize, AServiceActingForAUserHasThatUsersRights) {
  Principal p = P("alice", Role::kUser);
  p.actor = "hub";
  EXPECT_TRUE(Authorize(p, Action::kChange, "alice", "notebook nb1").ok());
  Status st = Authorize(p, Action::kChange, "bob", "notebook nb2");
  EXPECT_THAT(st.message(), HasSubstr("hub for alice (user)"));
}

TEST(Limits, RefusalsNameTheLimitAndTheNumbers) {
  LimitsConfig l;
  l.default_user.gpus = 4000;
  l.default_user.pending_jobs = 2;
  l.users["alice"].gpus = 8000;
  l.queues["interactive"].gpus = 1000;
  l.queues["interactive"].pending_jobs = 5;
  using R = LimitRequest;
  // Within every limit.
  EXPECT_TRUE(CheckLimits("bob", "default", {2000, 1}, {}, R{2000, R::kStart}, l).ok());
  // Held + request past the user's GPUs: wait.
  Status st = CheckLimits("bob", "default", {3000, 0}, {}, R{2000, R::kStart}, l);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(st.message(),
            "user bob may hold at most 4 GPUs at once (auth.limits.default.gpus); 3 GPUs are "
            "held and this job asks for 2 GPUs");
  // A request larger than the limit can never start: said at submission.
  st = CheckLimits("bob", "default", {}, {}, R{5000, R::kSubmit}, l);
  EXPECT_THAT(st.message(), HasSubstr("could never start"));
  // alice has her own line.
  EXPECT_TRUE(CheckLimits("alice", "default", {}, {}, R{6000, R::kSubmit}, l).ok());
  st = CheckLimits("alice", "default", {4000, 0}, {}, R{6000, R::kStart}, l);
  EXPECT_THAT(st.message(), HasSubstr("auth.limits.users.alice.gpus"));
  // Pending jobs.
  st = CheckLimits("bob", "default", {0, 2}, {}, R{0, R::kSubmit}, l);
  EXPECT_EQ(st.message(),
            "user bob may have at most 2 jobs pending (auth.limits.default.pendingJobs); 2 jobs "
            "are waiting already");
  // The pending count does not hold a job back from starting.
  EXPECT_TRUE(CheckLimits("bob", "default", {0, 2}, {}, R{0, R::kStart}, l).ok());
  // The queue's limits, all users together.
  st = CheckLimits("alice", "interactive", {}, {500, 0}, R{1000, R::kStart}, l);
  EXPECT_THAT(st.message(), HasSubstr("queue interactive may hold at most 1 GPU at once "
                                      "(auth.limits.queues.interactive.gpus)"));
  st = CheckLimits("alice", "interactive", {}, {0, 5}, R{500, R::kSubmit}, l);
  EXPECT_THAT(st.message(), HasSubstr("auth.limits.queues.interactive.pendingJobs"));
  // No limits configured: anything goes.
  EXPECT_TRUE(
      CheckLimits("bob", "x", {100000, 1000}, {}, R{64000, R::kStart}, LimitsConfig{}).ok());
}

TEST(AuthConfigFile, ParsesAndNamesBadFields) {
  auto parse = [](const std::string& yaml, AuthConfig* c) {
    YAML::Node root = YAML::Load(yaml);
    model::SpecReader r(root, "");
    return ParseAuthConfig(r.Child("auth"), c);
  };
  AuthConfig c;
  Status st = parse(R"(
auth:
  admins: [alice, bob]
  publicMetrics: true
  sessionTtl: 2h
  limits:
    default: {gpus: 4, pendingJobs: 10}
    users: {alice: {gpus: 0.5}}
    queues: {interactive: {pendingJobs: 3}}
)",
                    &c);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(c.public_metrics);
  EXPECT_EQ(c.admins, (std::set<std::string>{"alice", "bob"}));
  EXPECT_EQ(c.session_ttl, 2 * kHour);
  EXPECT_EQ(c.limits.default_user.gpus, std::optional<MilliGpu>(4000));
  EXPECT_EQ(c.limits.ForUser("alice").gpus, std::optional<MilliGpu>(500));
  EXPECT_EQ(c.limits.queues["interactive"].pending_jobs, std::optional<int64_t>(3));
  AuthConfig d;
  st = parse("auth: {limits: {users: {alice: {gpus: -1}}}}", &d);
  EXPECT_THAT(st.message(), HasSubstr("auth.limits.users.alice.gpus"));
  st = parse("auth: {limits: {users: {\"a b\": {gpus: 1}}}}", &d);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  st = parse("auth: {enabled: false}", &d);
  EXPECT_THAT(st.message(), HasSubstr("enabled"));  // no switch turns it off
  st = parse("auth: {admins: [\"a b\"]}", &d);
  EXPECT_THAT(st.message(), HasSubstr("auth.admins"));
  st = parse("auth: {sessionTtl: 1s}", &d);
  EXPECT_THAT(st.message(), HasSubstr("auth.sessionTtl"));
  EXPECT_TRUE(parse("logLevel: info", &d).ok());  // no auth section: defaults
}

TEST_F(AuthTest, TokenRoutesCreateListAndRevoke) {
  Principal alice = Token("alice"), bob = Token("bob");
  Credentials root_sock;
  root_sock.peer_uid = 0;
  Principal root = *auth_->Authenticate(root_sock);

  RouteReply made = routes_->CreateToken(alice, R"({"expires": "30d", "description": "laptop"})");
  ASSERT_EQ(made.status, 201) << made.body.dump();
  std::string token = made.body["token"];
  std::string id = made.body["id"];
  EXPECT_EQ(made.body["user"], "alice");
  EXPECT_EQ(made.body["expires"], FormatTime(kStart + 30 * 24 * kHour));
  EXPECT_FALSE(made.body.contains("hash"));
  EXPECT_TRUE(Bearer(token).ok());

  // Only an admin makes tokens for others.
  RouteReply other = routes_->CreateToken(alice, R"({"user": "bob"})");
  EXPECT_EQ(other.status, 403);
  EXPECT_THAT(other.body["error"]["message"].get<std::string>(), HasSubstr("only an admin"));
  RouteReply for_bob = routes_->CreateToken(root, R"({"user": "bob"})");
  EXPECT_EQ(for_bob.status, 201) << for_bob.body.dump();

  // Bad input names the field.
  EXPECT_EQ(routes_->CreateToken(alice, R"({"expires": "soon"})").status, 400);
  EXPECT_EQ(routes_->CreateToken(alice, R"({"expires": true})").status, 400);
  EXPECT_EQ(routes_->CreateToken(alice, R"({"expire": "1d"})").status, 400);
  EXPECT_EQ(routes_->CreateToken(alice, R"([1])").status, 400);
  EXPECT_EQ(routes_->CreateToken(alice, R"({"description": "a\u0007b"})").status, 400);
  EXPECT_EQ(routes_->CreateToken(alice, R"({"user": "../x"})").status, 400);

  // Lists: your own; an admin sees everyone's; never a hash.
  RouteReply mine = routes_->ListTokens(alice, "", false);
  ASSERT_EQ(mine.status, 200);
  for (const auto& t : mine.body["items"]) {
    EXPECT_EQ(t["user"], "alice");
    EXPECT_FALSE(t.contains("hash"));
  }
  EXPECT_EQ(mine.body["items"].size(), 2u);  // Token("alice") and "laptop"
  EXPECT_EQ(routes_->ListTokens(alice, "bob", false).status, 403);
  EXPECT_EQ(routes_->ListTokens(root, "", false).body["items"].size(), 4u);
  EXPECT_EQ(routes_->ListTokens(root, "bob", false).body["items"].size(), 2u);

  // Revoke: someone else's token is not found; the owner and admins may.
  EXPECT_EQ(routes_->RevokeToken(bob, id).status, 404);
  EXPECT_EQ(routes_->RevokeToken(alice, "zz").status, 400);
  RouteReply rv = routes_->RevokeToken(alice, id);
  ASSERT_EQ(rv.status, 200) << rv.body.dump();
  EXPECT_EQ(rv.body["alreadyRevoked"], false);
  EXPECT_FALSE(rv.body["revoked"].is_null());
  EXPECT_EQ(Bearer(token).status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(routes_->RevokeToken(root, id).body["alreadyRevoked"], true);
  EXPECT_EQ(routes_->RevokeToken(root, for_bob.body["id"]).status, 200);
}

TEST_F(AuthTest, AJobTokenCannotMakeTokens) {
  model::JobSpec spec;
  spec.name = "j";
  spec.user = "alice";
  spec.command = {"true"};
  auto id = store_->SubmitJob(spec, clock_.Now());
  ASSERT_TRUE(id.ok());
  auto p = Bearer(auth_->tokens().CreateForJob(*id, "alice")->token);
  ASSERT_TRUE(p.ok());
  RouteReply r = routes_->CreateToken(*p, "{}");
  EXPECT_EQ(r.status, 403);
  EXPECT_THAT(r.body["error"]["message"].get<std::string>(), HasSubstr("a job's token"));
  EXPECT_EQ(routes_->ListTokens(*p, "", false).status, 403);
  // Job tokens stay out of lists unless asked for.
  Principal alice = Token("alice");
  EXPECT_EQ(routes_->ListTokens(alice, "", false).body["items"].size(), 1u);
  EXPECT_EQ(routes_->ListTokens(alice, "", true).body["items"].size(), 2u);
}

TEST_F(AuthTest, OnlyAnAdminSetsRoles) {
  Principal alice = Token("alice");
  Credentials root_sock;
  root_sock.peer_uid = 0;
  Principal root = *auth_->Authenticate(root_sock);
  EXPECT_EQ(routes_->SetUserRole(alice, "bob", R"({"role": "admin"})").status, 403);
  EXPECT_EQ(routes_->SetUserRole(root, "bob", R"({"role": "boss"})").status, 400);
  RouteReply r = routes_->SetUserRole(root, "vic", R"({"role": "viewer"})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(*auth_->RoleOf("vic"), Role::kViewer);
  EXPECT_EQ(routes_->SetUserRole(root, "root", R"({"role": "user"})").status, 409);
  EXPECT_EQ(routes_->ListUsers(alice).body["items"].size(), 1u);
  RouteReply who = routes_->WhoAmI(alice);
  EXPECT_EQ(who.body["user"], "alice");
  EXPECT_EQ(who.body["via"], "token");
  EXPECT_EQ(HttpStatusOf(Unauthenticated("x")), 401);
  EXPECT_EQ(HttpStatusOf(PermissionDenied("x")), 403);
  EXPECT_EQ(ErrorReply(Unauthenticated("x")).headers.at(0).first, "WWW-Authenticate");
}

// The real account lookup: a throwaway Unix account made for the test
// (root only), mapped through getpwuid by a default Authenticator.
TEST(RealAccounts, ASocketPeerIsItsAccountByGetpwuid) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to add a throwaway account";
  if (std::system("command -v useradd >/dev/null 2>&1") != 0) GTEST_SKIP() << "no useradd";
  const std::string name = "berthauth" + std::to_string(::getpid() % 100000);
  ASSERT_EQ(std::system(("useradd --no-create-home --shell /usr/sbin/nologin " + name).c_str()), 0);
  struct Cleanup {
    std::string n;
    ~Cleanup() { (void)!std::system(("userdel " + n + " 2>/dev/null").c_str()); }
  } cleanup{name};
  struct passwd* pw = ::getpwnam(name.c_str());
  ASSERT_NE(pw, nullptr);
  const uid_t uid = pw->pw_uid;

  std::string tmpl = (std::filesystem::temp_directory_path() / "berth_auth_XXXXXX").string();
  ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
  {
    auto store = store::Store::Open(tmpl + "/berth.db");
    ASSERT_TRUE(store.ok());
    auto as = store::AuthStore::Open(**store, tmpl + "/berth.db");
    ASSERT_TRUE(as.ok());
    SystemClock& clock = SystemClock::Default();
    AuthenticatorOptions o;
    o.daemon_uid = ::geteuid();
    Authenticator auth(**as, store->get(), clock, o);
    Credentials c;
    c.peer_uid = uid;
    auto p = auth.Authenticate(c);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    EXPECT_EQ(p->user, name);
    EXPECT_EQ(p->uid, std::optional<uid_t>(uid));
    EXPECT_EQ(p->role, Role::kUser);
    // A token for that user carries its uid too (getpwnam).
    auto t = auth.tokens().Create(name, std::nullopt, "", "root");
    ASSERT_TRUE(t.ok());
    Credentials tc;
    tc.bearer = t->token;
    EXPECT_EQ(auth.Authenticate(tc)->uid, std::optional<uid_t>(uid));
    c.peer_uid = 0;
    EXPECT_EQ(auth.Authenticate(c)->role, Role::kAdmin);
  }
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace berth::auth
