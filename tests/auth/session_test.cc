// Sessions, CSRF and Origin, act-as, roles, and the request-shape rules.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "auth_test_util.h"

#include <cctype>
#include <map>

namespace berth::auth {
namespace {

using ::testing::HasSubstr;

struct Browser {
  std::string cookie, csrf;
};

class SessionTest : public AuthTest {
 protected:
  // Logs alice in with her token, as POST /api/v1/sessions does.
  Browser Login(const std::string& user = "alice", bool tls = false) {
    Principal p = Token(user);
    AuthConfig cfg;
    RouteReply r = routes_->Login(p, tls, cfg);
    EXPECT_EQ(r.status, 201) << r.body.dump();
    Browser b;
    b.csrf = r.body.value("csrf", "");
    for (const auto& [k, v] : r.headers)
      if (k == "Set-Cookie") b.cookie = CookieValue(v, kSessionCookie).value_or("");
    last_set_cookie_ = r.headers.empty() ? "" : r.headers[0].second;
    return b;
  }

  // A request from the dashboard's page at http://berth.lab:7420.
  Credentials FromPage(const Browser& b, const std::string& method, bool with_csrf = true) {
    Credentials c;
    c.session = b.cookie;
    if (with_csrf) c.csrf = b.csrf;
    c.method = method;
    c.host = "berth.lab:7420";
    if (method != "GET") {
      c.origin = "http://berth.lab:7420";
      c.content_type = "application/json";
      c.content_length = 2;
    }
    return c;
  }

  std::string last_set_cookie_;
};

TEST_F(SessionTest, ATokenLoginSetsAStrictHttpOnlyCookie) {
  Browser b = Login();
  EXPECT_EQ(b.cookie.size(), 64u);
  EXPECT_EQ(b.csrf.size(), 64u);
  EXPECT_THAT(last_set_cookie_, HasSubstr("HttpOnly"));
  EXPECT_THAT(last_set_cookie_, HasSubstr("SameSite=Strict"));
  EXPECT_THAT(last_set_cookie_, ::testing::Not(HasSubstr("Secure")));
  Login("alice", /*tls=*/true);
  EXPECT_THAT(last_set_cookie_, HasSubstr("; Secure"));
  // Only the hash of the cookie is stored.
  EXPECT_TRUE(auth_store_->GetSession(b.cookie).ok());
  EXPECT_FALSE(*auth_store_->GetSession(b.cookie));
}

TEST_F(SessionTest, AnEventSourceGetWithTheCookieIsAllowed) {
  Browser b = Login();
  Credentials c;
  c.session = b.cookie;  // an EventSource sends the cookie and nothing else
  c.method = "GET";
  c.host = "berth.lab:7420";
  auto p = auth_->Authenticate(c);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->user, "alice");
  EXPECT_EQ(p->via, Via::kSession);
}

TEST_F(SessionTest, AChangeNeedsTheCsrfHeaderAndASameOriginOrigin) {
  Browser b = Login();
  auto ok = auth_->Authenticate(FromPage(b, "POST"));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();

  auto no_csrf = auth_->Authenticate(FromPage(b, "POST", /*with_csrf=*/false));
  EXPECT_EQ(no_csrf.status().code(), StatusCode::kPermissionDenied);
  EXPECT_THAT(no_csrf.status().message(), HasSubstr("X-Berth-CSRF"));

  Credentials wrong = FromPage(b, "DELETE");
  wrong.csrf = std::string(64, '0');
  EXPECT_EQ(auth_->Authenticate(wrong).status().code(), StatusCode::kPermissionDenied);

  Credentials no_origin = FromPage(b, "POST");
  no_origin.origin.clear();
  auto r = auth_->Authenticate(no_origin);
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_THAT(r.status().message(), HasSubstr("Origin"));
}

TEST_F(SessionTest, ACrossSitePostIsRefusedWhateverItCarries) {
  Browser b = Login();
  Credentials c = FromPage(b, "POST");
  c.origin = "https://evil.example";
  auto r = auth_->Authenticate(c);
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_THAT(r.status().message(), HasSubstr("cross-site"));
  // The audit's request: a text/plain POST with a foreign Origin over the socket.
  Credentials sock;
  sock.peer_uid = 0;
  sock.method = "POST";
  sock.host = "127.0.0.1:7420";
  sock.origin = "http://attacker.test";
  sock.content_type = "text/plain";
  sock.content_length = 40;
  EXPECT_EQ(auth_->Authenticate(sock).status().code(), StatusCode::kPermissionDenied);
  // A token does not make it acceptable either.
  Credentials tok;
  tok.bearer = auth_->tokens().Create("alice", std::nullopt, "", "alice")->token;
  tok.method = "GET";
  tok.host = "127.0.0.1:7420";
  tok.origin = "null";
  EXPECT_EQ(auth_->Authenticate(tok).status().code(), StatusCode::kPermissionDenied);
}

TEST_F(SessionTest, AChangeWithAFormContentTypeIsRefusedEvenSameOrigin) {
  Credentials c;
  c.peer_uid = 1001;
  c.method = "POST";
  c.content_type = "text/plain;charset=UTF-8";
  c.content_length = 10;
  auto r = auth_->Authenticate(c);
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_THAT(r.status().message(), HasSubstr("application/json"));
  c.content_type = "application/yaml";
  EXPECT_TRUE(auth_->Authenticate(c).ok());
  c.content_type = "Application/JSON; charset=utf-8";
  EXPECT_TRUE(auth_->Authenticate(c).ok());
  c.content_type = "";
  c.content_length = 0;  // a bodiless POST (cancel) needs no type
  EXPECT_TRUE(auth_->Authenticate(c).ok());
}

TEST_F(SessionTest, RevokingTheTokenOrLoggingOutEndsTheSession) {
  Principal p = Token("alice");
  RouteReply r = routes_->Login(p, false, AuthConfig{});
  ASSERT_EQ(r.status, 201);
  Browser b{CookieValue(r.headers[0].second, kSessionCookie).value_or(""), r.body["csrf"]};
  ASSERT_TRUE(auth_->Authenticate(FromPage(b, "GET")).ok());
  RouteReply rv = routes_->RevokeToken(p, p.token_id);
  ASSERT_EQ(rv.status, 200) << rv.body.dump();
  auto gone = auth_->Authenticate(FromPage(b, "GET"));
  EXPECT_EQ(gone.status().code(), StatusCode::kUnauthenticated);

  Browser b2 = Login();
  auto p2 = auth_->Authenticate(FromPage(b2, "DELETE"));
  ASSERT_TRUE(p2.ok());
  RouteReply out = routes_->Logout(*p2, b2.cookie, false);
  EXPECT_EQ(out.status, 200);
  EXPECT_EQ(out.body["ended"], true);
  EXPECT_THAT(out.headers[0].second, HasSubstr("Max-Age=0"));
  EXPECT_EQ(auth_->Authenticate(FromPage(b2, "GET")).status().code(), StatusCode::kUnauthenticated);
}

TEST_F(SessionTest, ASessionExpires) {
  Browser b = Login();
  clock_.Advance(AuthConfig{}.session_ttl);
  auto r = auth_->Authenticate(FromPage(b, "GET"));
  EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated);
  EXPECT_THAT(r.status().message(), HasSubstr("expired"));
}

TEST_F(SessionTest, OnlyAUserTokenMayOpenASession) {
  Credentials sock;
  sock.peer_uid = 1001;
  RouteReply r = routes_->Login(*auth_->Authenticate(sock), false, AuthConfig{});
  EXPECT_EQ(r.status, 403);
}

TEST_F(AuthTest, AServiceActingForAUserRecordsBoth) {
  SetRole("hub", "service");
  Principal hub = Token("hub");
  EXPECT_EQ(hub.role, Role::kService);
  auto t = auth_->tokens().Create("hub", std::nullopt, "", "hub");
  Credentials c;
  c.bearer = t->token;
  c.act_as = "alice";
  auto p = auth_->Authenticate(c);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->user, "alice");
  EXPECT_EQ(p->actor, "hub");
  EXPECT_EQ(p->role, Role::kUser);
  EXPECT_EQ(p->uid, std::optional<uid_t>(1001));
  EXPECT_EQ(p->Describe(), "hub for alice");
  // Not for an admin.
  c.act_as = "root";
  auto r = auth_->Authenticate(c);
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_THAT(r.status().message(), HasSubstr("may not act for root"));
  // Nobody else may act for anyone.
  Credentials a;
  a.bearer = auth_->tokens().Create("bob", std::nullopt, "", "bob")->token;
  a.act_as = "alice";
  auto denied = auth_->Authenticate(a);
  EXPECT_EQ(denied.status().code(), StatusCode::kPermissionDenied);
  EXPECT_THAT(denied.status().message(), HasSubstr("only a service account"));
  // What the service makes records it as the actor.
  RouteReply made = routes_->CreateToken(*p, "{}");
  ASSERT_EQ(made.status, 201) << made.body.dump();
  EXPECT_EQ(made.body["user"], "alice");
  auto events = store_->EventsSince(0, 100);
  EXPECT_EQ(events->back().data["actor"], "hub");
  EXPECT_EQ(events->back().data["user"], "alice");
}

TEST_F(AuthTest, SocketPeersGetTheirAccountAndRole) {
  auto as = [&](uid_t uid) {
    Credentials c;
    c.peer_uid = uid;
    return auth_->Authenticate(c);
  };
  EXPECT_EQ(as(0)->role, Role::kAdmin);
  EXPECT_EQ(as(0)->user, "root");
  EXPECT_EQ(as(kDaemonUid)->role, Role::kAdmin);
  EXPECT_EQ(as(1001)->role, Role::kUser);
  EXPECT_EQ(as(1001)->user, "alice");
  EXPECT_EQ(as(1001)->via, Via::kSocket);
  SetRole("vic", "viewer");
  EXPECT_EQ(as(1004)->role, Role::kViewer);
  // The users table cannot demote root.
  SetRole("root", "viewer");
  EXPECT_EQ(as(0)->role, Role::kAdmin);
  // auth.admins (the configuration, read at each request) makes admins.
  admins_.insert("alice");
  EXPECT_EQ(as(1001)->role, Role::kAdmin);
  EXPECT_EQ(Token("alice").role, Role::kAdmin);
  admins_.clear();
  EXPECT_EQ(as(1001)->role, Role::kUser);
  auto nobody = as(4242);
  EXPECT_EQ(nobody.status().code(), StatusCode::kUnauthenticated);
  EXPECT_THAT(nobody.status().message(), HasSubstr("uid 4242 has no account"));
  auto none = auth_->Authenticate(Credentials{});
  EXPECT_EQ(none.status().code(), StatusCode::kUnauthenticated);
  EXPECT_THAT(none.status().message(), HasSubstr("no credentials"));
}

TEST(AuthHelpers, HeadersAreParsed) {
  EXPECT_EQ(BearerToken("Bearer abc"), std::optional<std::string>("abc"));
  EXPECT_EQ(BearerToken("bearer  abc "), std::optional<std::string>("abc"));
  EXPECT_EQ(BearerToken("Basic abc"), std::nullopt);
  EXPECT_EQ(CookieValue("a=1; berth_session=xyz; b=2", "berth_session"),
            std::optional<std::string>("xyz"));
  EXPECT_EQ(CookieValue("xberth_session=1", "berth_session"), std::nullopt);
  EXPECT_TRUE(OriginMatchesHost("http://localhost:7420", "localhost:7420"));
  EXPECT_TRUE(OriginMatchesHost("https://Berth.Lab", "berth.lab:443"));
  EXPECT_TRUE(OriginMatchesHost("http://berth.lab:80", "berth.lab"));
  EXPECT_FALSE(OriginMatchesHost("http://localhost:7421", "localhost:7420"));
  EXPECT_FALSE(OriginMatchesHost("null", "localhost:7420"));
  EXPECT_FALSE(OriginMatchesHost("http://evil.test", "localhost:7420"));
  EXPECT_FALSE(OriginMatchesHost("file://", "localhost:7420"));
  EXPECT_FALSE(OriginMatchesHost("http://localhost:7420", ""));
  EXPECT_TRUE(IsChange("POST"));
  EXPECT_TRUE(IsChange("DELETE"));
  EXPECT_FALSE(IsChange("GET"));
  EXPECT_FALSE(IsChange("HEAD"));
}

TEST(AuthHelpers, CredentialsComeFromTheRequestsHeaders) {
  std::map<std::string, std::string> h = {{"authorization", "Bearer tok"},
                                          {"cookie", "x=1; berth_session=abc"},
                                          {"x-berth-csrf", "c"},
                                          {"origin", "http://h:1"},
                                          {"host", "h:1"},
                                          {"content-type", "application/json"}};
  auto header = [&](std::string_view name) -> std::optional<std::string> {
    std::string k(name);
    for (auto& ch : k) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    auto it = h.find(k);
    if (it == h.end()) return std::nullopt;
    return it->second;
  };
  Credentials c = CredentialsFromRequest("POST", header, 1001, 12);
  EXPECT_EQ(c.bearer, std::optional<std::string>("tok"));
  EXPECT_EQ(c.session, std::optional<std::string>("abc"));
  EXPECT_EQ(c.csrf, std::optional<std::string>("c"));
  EXPECT_EQ(c.act_as, std::nullopt);
  EXPECT_EQ(c.origin, "http://h:1");
  EXPECT_EQ(c.host, "h:1");
  EXPECT_EQ(c.peer_uid, std::optional<uid_t>(1001));
  EXPECT_EQ(c.content_length, 12);
  // Another scheme is not ignored (which would fall back to the socket's uid): it is a bad token.
  h["authorization"] = "Basic dXNlcjpwdw==";
  EXPECT_EQ(CredentialsFromRequest("GET", header, 0, 0).bearer, std::optional<std::string>(""));
}

TEST(AuthHelpers, OnlyHealthzAndOptionallyMetricsArePublic) {
  AuthConfig c;
  EXPECT_TRUE(IsPublic("/healthz", c));
  EXPECT_TRUE(IsPublic("/healthz?x=1", c));
  EXPECT_FALSE(IsPublic("/metrics", c));
  EXPECT_FALSE(IsPublic("/api/v1/jobs", c));
  EXPECT_FALSE(IsPublic("/healthz/../api/v1/jobs", c));
  c.public_metrics = true;
  EXPECT_TRUE(IsPublic("/metrics", c));
}

}  // namespace
}  // namespace berth::auth
