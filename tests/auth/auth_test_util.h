// A store, an auth store and an Authenticator on a fresh database in a
// temporary directory, with a manual clock and made-up accounts.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "auth/authenticator.h"
#include "auth/token_routes.h"
#include "common/clock.h"
#include "store/auth_store.h"
#include "store/store.h"

namespace berth::auth {

class AuthTest : public ::testing::Test {
 protected:
  static constexpr uid_t kDaemonUid = 990;
  static constexpr TimeMs kStart = 1'800'000'000'000;

  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "berth_auth_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto s = store::Store::Open(dir_ + "/berth.db");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    auto a = store::AuthStore::Open(*store_, dir_ + "/berth.db");
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    auth_store_ = std::move(a).value();
    AuthenticatorOptions o;
    o.daemon_uid = kDaemonUid;
    o.name_of_uid = [this](uid_t uid) -> std::optional<std::string> {
      auto it = accounts_.find(uid);
      if (it == accounts_.end()) return std::nullopt;
      return it->second;
    };
    o.uid_of_name = [this](const std::string& name) -> std::optional<uid_t> {
      for (const auto& [uid, n] : accounts_)
        if (n == name) return uid;
      return std::nullopt;
    };
    o.configured_admin = [this](const std::string& name) { return admins_.count(name) > 0; };
    auth_ = std::make_unique<Authenticator>(*auth_store_, store_.get(), clock_, o);
    routes_ = std::make_unique<AuthRoutes>(*auth_, *auth_store_, clock_);
  }
  void TearDown() override {
    routes_.reset();
    auth_.reset();
    auth_store_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // A principal for `user` as if it came through its own token.
  Principal Token(const std::string& user) {
    auto t = auth_->tokens().Create(user, std::nullopt, "", user);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    Credentials c;
    c.bearer = t->token;
    auto p = auth_->Authenticate(c);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return *p;
  }

  Result<Principal> Bearer(const std::string& token, const std::string& method = "GET") {
    Credentials c;
    c.bearer = token;
    c.method = method;
    return auth_->Authenticate(c);
  }

  void SetRole(const std::string& user, const std::string& role) {
    ASSERT_TRUE(auth_store_->PutUser({user, role, 0}, "test", clock_.Now()).ok());
  }

  std::string dir_;
  std::set<std::string> admins_;  // auth.admins
  ManualClock clock_{kStart};
  std::map<uid_t, std::string> accounts_ = {{0, "root"},   {kDaemonUid, "berth"}, {1001, "alice"},
                                            {1002, "bob"}, {1003, "hub"},         {1004, "vic"}};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<store::AuthStore> auth_store_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<AuthRoutes> routes_;
};

}  // namespace berth::auth
