// Identity and access on a real berthd (docs/security.md): real Unix
// accounts made by the test (useradd; the test must run as root, else it is
// skipped saying so) talk to berthd through its Unix socket (the kernel
// tells berthd their uid) or with their tokens over TCP. A user sees every
// job's state but cannot cancel or read the logs of another's job; a revoked
// token, a cross-site request and a request without credentials are refused;
// /healthz stays open; work started inside a task acts for the task's owner.
#include <fcntl.h>
#include <grp.h>
#include <httplib.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "harness.h"

namespace berth::testing {
namespace {

using nlohmann::json;

// A Unix account for the test's lifetime.
class UnixUser {
 public:
  explicit UnixUser(const std::string& suffix)
      : name_("bt" + std::to_string(::getpid() % 100000) + suffix) {
    RunCommand({"/usr/sbin/userdel", name_});  // a leftover of a killed run
    CommandResult r =
        RunCommand({"/usr/sbin/useradd", "-M", "-N", "-s", "/usr/sbin/nologin", name_});
    error_ = r.err;
    struct passwd* pw = ::getpwnam(name_.c_str());
    if (r.exit_code == 0 && pw) {
      uid_ = pw->pw_uid;
      gid_ = pw->pw_gid;
      ok_ = true;
    }
  }
  ~UnixUser() {
    if (ok_) RunCommand({"/usr/sbin/userdel", name_});
  }
  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  const std::string& name() const { return name_; }

  // Runs the berth CLI as this account against `d`'s socket.
  CommandResult Cli(const Daemon& d, std::vector<std::string> args) const {
    args.insert(args.begin(), {BinDir() + "/berth", "--server", d.socket_url()});
    std::string outf = "/tmp/berth-as-" + std::to_string(::getpid()) + "-" + name_;
    std::string errf = outf + ".err";
    pid_t pid = ::fork();
    if (pid == 0) {
      int o = ::open(outf.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int e = ::open(errf.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(o, 1);
      ::dup2(e, 2);
      if (::setgroups(0, nullptr) != 0 || ::setgid(gid_) != 0 || ::setuid(uid_) != 0) ::_exit(126);
      ::setenv("HOME", "/tmp", 1);
      ::unsetenv("BERTH_TOKEN");
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    CommandResult r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = ReadFile(outf);
    r.err = ReadFile(errf);
    ::unlink(outf.c_str());
    ::unlink(errf.c_str());
    return r;
  }

 private:
  std::string name_;
  std::string error_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  bool ok_ = false;
};

// Skips the test unless it runs as root with useradd available.
#define REQUIRE_ROOT()                                                                    \
  do {                                                                                    \
    if (::geteuid() != 0)                                                                 \
      GTEST_SKIP() << "needs root: it makes Unix accounts (useradd) to act as users";     \
    if (::access("/usr/sbin/useradd", X_OK) != 0) GTEST_SKIP() << "no /usr/sbin/useradd"; \
  } while (0)

std::unique_ptr<httplib::Client> Tcp(const Daemon& d) {
  auto c = std::make_unique<httplib::Client>(d.url());
  c->set_connection_timeout(5, 0);
  c->set_read_timeout(10, 0);
  return c;
}

httplib::Headers Bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

// A daemon whose socket other accounts can reach (the data directory is
// the test's, mode 0700 otherwise).
void OpenDataDir(const Daemon& d) { ::chmod(d.data_dir().c_str(), 0711); }

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(IdentityAccess, AUserCannotCancelOrReadTheLogsOfAnothersJob) {
  REQUIRE_ROOT();
  UnixUser a("a"), b("b");
  ASSERT_TRUE(a.ok()) << a.error();
  ASSERT_TRUE(b.ok()) << b.error();
  Daemon d;
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  OpenDataDir(d);

  // B's job, through the socket: B owns it, whatever B's environment says.
  CommandResult sub = b.Cli(d, {"run", "-e", "PASSWORD=hunter2", "--name", "bjob", "--", "/bin/sh",
                                "-c", "echo secret-of-b; sleep 60"});
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  std::string id = Trim(sub.out);
  EXPECT_EQ(d.Job(id)["user"], b.name());
  ASSERT_TRUE(
      WaitFor([&] { return Has(d.GetText("/api/v1/jobs/" + id + "/logs"), "secret-of-b"); }));

  // A sees its state...
  CommandResult ps = a.Cli(d, {"ps", "-a"});
  EXPECT_EQ(ps.exit_code, 0) << ps.err;
  EXPECT_TRUE(Has(ps.out, "bjob")) << ps.out;
  // ... but can neither cancel it nor read its logs, through the socket.
  CommandResult cancel = a.Cli(d, {"cancel", id});
  EXPECT_NE(cancel.exit_code, 0);
  EXPECT_TRUE(Has(cancel.err, "only " + b.name() + " (the owner) or an admin may change job " + id))
      << cancel.err;
  CommandResult logs = a.Cli(d, {"logs", id});
  EXPECT_NE(logs.exit_code, 0);
  EXPECT_FALSE(Has(logs.out, "secret-of-b"));
  EXPECT_TRUE(Has(logs.err, "may read the logs")) << logs.err;

  // Nor with A's token over TCP: 403 with the reason.
  json tok = json::parse(RunCommand({BinDir() + "/berth", "--server", d.socket_url(), "token",
                                     "create", "--user", a.name(), "-o", "json"})
                             .out);
  std::string token = tok.value("token", "");
  ASSERT_FALSE(token.empty()) << tok.dump();
  auto http = Tcp(d);
  auto r = http->Post("/api/v1/jobs/" + id + "/cancel", Bearer(token), "", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403) << r->body;
  EXPECT_TRUE(Has(r->body, "permission_denied")) << r->body;
  EXPECT_TRUE(Has(r->body, "only " + b.name() + " (the owner)")) << r->body;
  r = http->Get("/api/v1/jobs/" + id + "/logs", Bearer(token));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403) << r->body;
  EXPECT_FALSE(Has(r->body, "secret-of-b"));
  r = http->Get("/api/v1/jobs/" + id, Bearer(token));  // the state: yes; its env: no
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_FALSE(Has(r->body, "hunter2")) << r->body;
  EXPECT_TRUE(Has(d.Job(id).dump(), "hunter2"));  // an admin reads it
  EXPECT_EQ(d.State(id), "Running");

  // A viewer submits nothing.
  r = http->Put("/api/v1/users/" + a.name(), Bearer(d.token()), R"({"role":"viewer"})",
                "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  CommandResult viewer = a.Cli(d, {"run", "--", "/bin/true"});
  EXPECT_NE(viewer.exit_code, 0);
  EXPECT_TRUE(Has(viewer.err, "read-only")) << viewer.err;

  // The owner cancels, and the event log names who did.
  CommandResult own = b.Cli(d, {"cancel", id});
  EXPECT_EQ(own.exit_code, 0) << own.err;
  json audit = d.Get("/api/v1/events?actor=" + b.name());
  bool found = false;
  for (const auto& e : audit["items"])
    if (e["type"] == "Audit" && e["job"].dump() == id && e["data"]["action"] == "cancelled")
      found = true;
  EXPECT_TRUE(found) << audit.dump();
  CommandResult ev = RunCommand({BinDir() + "/berth", "--server", d.socket_url(), "events",
                                 "--actor", b.name(), "-o", "json"});
  EXPECT_EQ(ev.exit_code, 0) << ev.err;
  EXPECT_TRUE(Has(ev.out, "cancelled")) << ev.out;

  // A revoked token is refused.
  CommandResult revoke = RunCommand(
      {BinDir() + "/berth", "--server", d.socket_url(), "token", "revoke", tok.value("id", "")});
  EXPECT_EQ(revoke.exit_code, 0) << revoke.err;
  r = http->Get("/api/v1/jobs", Bearer(token));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401) << r->body;
  EXPECT_TRUE(Has(r->body, "revoked")) << r->body;
}

TEST(IdentityAccess, WorkStartedInsideATaskActsForItsOwnerUntilTheJobEnds) {
  REQUIRE_ROOT();
  UnixUser a("c");
  ASSERT_TRUE(a.ok()) << a.error();
  Daemon d;
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  OpenDataDir(d);
  // A's task starts more work with the CLI (over TCP, as BERTH_SERVER says,
  // with its job's BERTH_TOKEN) and shows the token it had.
  CommandResult sub =
      a.Cli(d, {"run", "--name", "outer", "--", "/bin/sh", "-c",
                "echo token=$BERTH_TOKEN; '" + BinDir() + "/berth' run --name inner -- /bin/true"});
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  std::string parent = Trim(sub.out);
  ASSERT_TRUE(WaitFor([&] { return d.State(parent) == "Succeeded"; }))
      << d.Job(parent).dump() << d.GetText("/api/v1/jobs/" + parent + "/logs");
  json all = d.Get("/api/v1/jobs");
  ASSERT_EQ(all["items"].size(), 2u) << all.dump();
  for (const auto& j : all["items"]) EXPECT_EQ(j["user"], a.name()) << j.dump();

  std::string log = d.GetText("/api/v1/jobs/" + parent + "/logs");
  size_t at = log.find("token=");
  ASSERT_NE(at, std::string::npos) << log;
  std::string token = log.substr(at + 6, log.find('\n', at) - at - 6);
  ASSERT_FALSE(token.empty()) << log;
  auto r = Tcp(d)->Get("/api/v1/jobs", Bearer(token));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401) << r->body;
  EXPECT_TRUE(Has(r->body, "has ended")) << r->body;
}

TEST(IdentityAccess, CrossSiteAndAnonymousRequestsAreRefusedAndHealthzIsOpen) {
  Daemon d;
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  auto http = Tcp(d);
  const std::string doc =
      R"({"apiVersion":"berth/v1","kind":"Job","spec":{"command":["/bin/true"]}})";
  // What a web page can send to localhost: a text/plain POST, foreign Origin.
  auto r = http->Post("/api/v1/jobs", httplib::Headers{{"Origin", "http://evil.example"}}, doc,
                      "text/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403) << r->body;
  EXPECT_TRUE(Has(r->body, "cross-site request refused")) << r->body;
  // Even carrying a valid token (a page cannot, but the rule does not lean on it).
  httplib::Headers with_token = Bearer(d.token());
  with_token.emplace("Origin", "http://evil.example");
  r = http->Post("/api/v1/jobs", with_token, doc, "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403) << r->body;
  r = http->Post("/api/v1/jobs", Bearer(d.token()), doc, "text/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403) << r->body;
  EXPECT_TRUE(Has(r->body, "Content-Type")) << r->body;
  // No credentials: 401 everywhere but /healthz.
  r = http->Get("/api/v1/jobs");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401) << r->body;
  EXPECT_EQ(r->get_header_value("WWW-Authenticate"), "Bearer realm=\"berth\"");
  r = http->Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401) << r->body;
  r = http->Get("/api/v1/jobs", Bearer("berth_0123456789abcdef_" + std::string(64, 'a')));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401) << r->body;
  r = http->Get("/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(d.Get("/api/v1/jobs")["items"].size(), 0u);  // nothing got in

  // A browser session: the cookie reads; a change needs the CSRF header
  // and an Origin that is this server.
  r = http->Post("/api/v1/sessions", Bearer(d.token()), "", "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  std::string cookie = r->get_header_value("Set-Cookie");
  EXPECT_TRUE(Has(cookie, "HttpOnly")) << cookie;
  EXPECT_TRUE(Has(cookie, "SameSite=Strict")) << cookie;
  cookie = cookie.substr(0, cookie.find(';'));
  std::string csrf = json::parse(r->body).value("csrf", "");
  std::string self = d.url();
  r = http->Get("/api/v1/jobs", httplib::Headers{{"Cookie", cookie}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  r = http->Post("/api/v1/jobs", httplib::Headers{{"Cookie", cookie}, {"Origin", self}}, doc,
                 "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403) << r->body;
  EXPECT_TRUE(Has(r->body, "X-Berth-CSRF")) << r->body;
  r = http->Post("/api/v1/jobs",
                 httplib::Headers{{"Cookie", cookie}, {"Origin", self}, {"X-Berth-CSRF", csrf}},
                 doc, "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201) << r->body;
}

TEST(IdentityAccess, PendingJobLimitRefusesWithTheReason) {
  TempDir work;
  WriteFile(work / "berthd.yaml", "auth:\n  limits:\n    default: {pendingJobs: 1}\n");
  Daemon d({"--gpus", "1", "--config", work / "berthd.yaml"});
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  // One job holds the only GPU, the next waits, the third is refused.
  std::string running = SubmitScript(d, {"--gpus", "1"}, "sleep 60");
  ASSERT_TRUE(WaitFor([&] { return d.State(running) == "Running"; })) << d.Job(running).dump();
  std::string waiting = SubmitScript(d, {"--gpus", "1"}, "true");
  EXPECT_EQ(d.State(waiting), "Pending");
  CommandResult third = d.Cli({"run", "--gpus", "1", "--", "/bin/true"});
  EXPECT_NE(third.exit_code, 0);
  EXPECT_TRUE(Has(third.err, "pending (auth.limits.default.pendingJobs)")) << third.err;
}

}  // namespace
}  // namespace berth::testing
