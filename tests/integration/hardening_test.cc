// Hostile input against real berthd and berth processes (issue 11's audit):
// an alias bomb sent to the API and through `berth submit`, a time limit that
// overflowed, control characters in names printed by the CLI, and `--listen
// :PORT`, which must mean loopback. berthd must stay up, small, and answer.
#include <gtest/gtest.h>
#include <httplib.h>

#include <fstream>

#include "common/net.h"
#include "owner_util.h"
#include "pipeline_util.h"

namespace berth::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

std::unique_ptr<httplib::Client> Http(const Daemon& d) {
  std::string rest = d.url().substr(d.url().find("://") + 3);
  size_t colon = rest.rfind(':');
  auto c =
      std::make_unique<httplib::Client>(rest.substr(0, colon), std::stoi(rest.substr(colon + 1)));
  c->set_connection_timeout(5, 0);
  c->set_read_timeout(20, 0);
  c->set_default_headers({d.AuthHeader()});  // TCP: the test account's token
  return c;
}

// Resident memory of `pid` in MiB (VmRSS).
int64_t RssMiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) / 1024;
  return -1;
}

// 9 levels of 9 aliases to the level below: ~600 bytes, 9^9 items expanded.
std::string Laughs() {
  std::string items = "[&l0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]";
  for (int level = 1; level <= 8; ++level) {
    items += ", &l" + std::to_string(level) + " [";
    for (int i = 0; i < 9; ++i)
      items += std::string(i ? "," : "") + "*l" + std::to_string(level - 1);
    items += "]";
  }
  return items + "]";
}

TEST(Hardening, AliasBombIsRefusedByTheApiAndBerthdStaysUp) {
  Daemon d;
  ASSERT_TRUE(d.Start());
  auto http = Http(d);
  httplib::Headers who = {{"X-Berth-User", "alice"}};
  std::string pipeline =
      "apiVersion: berth/v1\nkind: Pipeline\nmetadata: {name: bomb}\nspec:\n  steps:\n"
      "  - name: a\n    command: [echo, '{{item}}']\n    withItems: " +
      Laughs() + "\n";
  auto run = http->Post("/api/v1/pipelines/runs", who, json{{"spec", pipeline}}.dump(),
                        "application/json");
  ASSERT_TRUE(run);
  EXPECT_EQ(run->status, 400) << run->body;
  EXPECT_NE(run->body.find("spec.steps[0].withItems["), std::string::npos) << run->body;
  EXPECT_NE(run->body.find(
                "the document expands to more than 200000 nodes (counting every alias expanded)"),
            std::string::npos)
      << run->body;
  std::string job =
      "apiVersion: berth/v1\nkind: Job\nspec:\n  command: [/bin/true]\n  args: " + Laughs() + "\n";
  auto sub = http->Post("/api/v1/jobs", who, job, "application/yaml");
  ASSERT_TRUE(sub);
  EXPECT_EQ(sub->status, 400) << sub->body;
  EXPECT_NE(sub->body.find("expands to more than"), std::string::npos) << sub->body;
  EXPECT_TRUE(d.Alive());
  auto health = http->Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_LT(RssMiB(d.pid()), 256);
}

// The API reads request bodies with model::ParseJsonBody (src/model/request.h):
// before, pipeline_routes.cc parsed the body without a depth bound and dump()ed
// the parameter recursively, and berthd died of a stack overflow (SIGSEGV).
TEST(Hardening, DeeplyNestedParametersAreRefusedAndBerthdStaysUp) {
  Daemon d;
  ASSERT_TRUE(d.Start());
  std::string spec =
      "apiVersion: berth/v1\nkind: Pipeline\nspec:\n  parameters: [{name: p}]\n  steps:\n"
      "  - name: a\n    command: [echo, '{{inputs.parameters.p}}']\n";
  std::string body = R"({"spec": )" + json(spec).dump() + R"(, "parameters": {"p": )" +
                     std::string(100000, '[') + std::string(100000, ']') + "}}";
  auto r = Http(d)->Post("/api/v1/pipelines/runs", {{"X-Berth-User", "alice"}}, body,
                         "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("nests deeper than 64 levels"), std::string::npos) << r->body;
  EXPECT_TRUE(d.Alive());
}

TEST(Hardening, BerthSubmitRefusesAnAliasBombWithoutExpandingIt) {
  Daemon d;
  ASSERT_TRUE(d.Start());
  TempDir work;
  std::string path = work / "bomb.yaml";
  WriteFile(path, "apiVersion: berth/v1\nkind: Job\nspec:\n  command: [/bin/true]\n  args: " +
                      Laughs() + "\n");
  auto t0 = std::chrono::steady_clock::now();
  CommandResult r = d.Cli({"submit", "-f", path});
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  EXPECT_EQ(r.exit_code, 2) << r.err;  // bad input, not an abort (134)
  EXPECT_NE(r.err.find("berth: error: spec.args["), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("the document expands to more than 200000 nodes"), std::string::npos)
      << r.err;
  EXPECT_TRUE(d.Alive());
}

TEST(Hardening, TimeLimitPastTenYearsIsRefusedAtSubmit) {
  Daemon d;
  ASSERT_TRUE(d.Start());
  TempDir work;
  std::string path = work / "long.yaml";
  WriteFile(path,
            "apiVersion: berth/v1\nkind: Job\nspec:\n  command: [/bin/sleep, '5']\n  timeLimit: "
            "9999999h\n");
  CommandResult r = d.Cli({"submit", "-f", path});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("spec.timeLimit: is too long: \"9999999h\", the most is 3650d (10 years)"),
            std::string::npos)
      << r.err;
  WriteFile(
      path,
      "apiVersion: berth/v1\nkind: Job\nspec:\n  command: [/bin/sleep, '5']\n  timeLimit: 1e16\n");
  r = d.Cli({"submit", "-f", path});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("spec.timeLimit: is too long: \"1e16\""), std::string::npos) << r.err;
}

bool HasControl(const std::string& s) {
  for (unsigned char c : s)
    if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7F) return true;
  return false;
}

TEST(Hardening, TheCliPrintsNamesEscaped) {
  TempDir cfg;
  Daemon d(OwnersAreNotAccounts(cfg));
  ASSERT_TRUE(d.Start());
  TempDir work;
  // A real program whose name clears the screen: the job is named after it.
  std::string evil = work / "evil\x1b[2J\x1b]0;owned\x07";
  WriteFile(evil, "#!/bin/sh\nexit 0\n");
  std::filesystem::permissions(evil, std::filesystem::perms::owner_all);
  auto sub = Http(d)->Post("/api/v1/jobs", {{"X-Berth-User", "alice"}},
                           json{{"apiVersion", "berth/v1"},
                                {"kind", "Job"},
                                {"spec", {{"command", {evil}}, {"workingDir", work.path()}}}}
                               .dump(),
                           "application/json");
  ASSERT_TRUE(sub);
  ASSERT_EQ(sub->status, 201) << sub->body;
  std::string id = std::to_string(json::parse(sub->body).value("id", 0));
  std::string path = work / "job.yaml";
  for (std::vector<std::string> args : {std::vector<std::string>{"ps", "--all"}, {"get", id}}) {
    CommandResult r = d.Cli(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_FALSE(HasControl(r.out)) << args[0] << ": " << r.out;
    EXPECT_NE(r.out.find("evil\\e[2J\\e]0;owned\\x07"), std::string::npos)
        << args[0] << ": " << r.out;
  }
  // A refused name is quoted escaped in the error, too.
  WriteFile(path,
            "apiVersion: berth/v1\nkind: Job\nmetadata: {name: \"x\\e[31my\"}\nspec:\n  command: "
            "[/bin/true]\n");
  CommandResult r = d.Cli({"submit", "-f", path});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_FALSE(HasControl(r.err)) << r.err;
  EXPECT_NE(r.err.find("metadata.name: must not contain control characters, got \"x\\e[31my\""),
            std::string::npos)
      << r.err;
}

TEST(Hardening, FanOutIsCappedByTheConfiguration) {
  TempDir work;
  std::string config = work / "berthd.yaml";
  WriteFile(config, "pipelines:\n  maxFanOut: 3\n");
  Daemon d({"--config", config});
  ASSERT_TRUE(d.Start());
  std::string file = work / "wide.yaml";
  WriteFile(file,
            "apiVersion: berth/v1\nkind: Pipeline\nspec:\n  steps:\n  - name: wide\n"
            "    withItems: [a, b, c, d]\n    command: [echo, '{{item}}']\n");
  CommandResult r = d.Cli({"pipeline", "run", "-f", file});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("spec.steps(wide).withItems: fans out to 4 children, the most is 3 "
                       "(berthd's pipelines.maxFanOut)"),
            std::string::npos)
      << r.err;
  // withParam is only known when the step runs: the step fails with the reason.
  std::string id =
      StartRun(d, work.path(),
               "apiVersion: berth/v1\nkind: Pipeline\nspec:\n  steps:\n  - name: list\n"
               "    script: echo '[1,2,3,4,5]'\n"
               "    outputs: {parameters: [{name: l, valueFrom: {stdout: true}}]}\n"
               "  - name: each\n    dependencies: [list]\n"
               "    withParam: '{{steps.list.outputs.parameters.l}}'\n"
               "    command: [echo, '{{item}}']\n");
  ASSERT_FALSE(id.empty());
  json run = WaitRunEnd(d, id);
  EXPECT_EQ(run.value("state", ""), "Failed") << run.dump();
  json each = Node(run, "each");
  EXPECT_EQ(each.value("state", ""), "Failed");
  EXPECT_NE(each.dump().find("withParam: fans out to 5 children, the most is 3"), std::string::npos)
      << each.dump();
}

// The local address a listening TCP socket on `port` is bound to, in
// /proc/net/tcp's hex ("0100007F" is 127.0.0.1), or "" if none.
std::string ListeningAddress(int port) {
  char want[8];
  std::snprintf(want, sizeof(want), "%04X", port);
  std::ifstream in("/proc/net/tcp");
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    std::string slot, local, remote, state;
    ss >> slot >> local >> remote >> state;
    if (state == "0A" && local.substr(local.find(':') + 1) == want)
      return local.substr(0, local.find(':'));
  }
  return "";
}

TEST(Hardening, ListenWithoutAHostIsLoopbackAndOtherInterfacesAreLogged) {
  for (const std::string host : {"", "0.0.0.0"}) {
    TempDir dir;
    int port = FreeTcpPort("127.0.0.1");
    ASSERT_GT(port, 0);
    std::string log = dir / "berthd.log";
    pid_t pid = SpawnToFiles({BinDir() + "/berthd", "--listen", host + ":" + std::to_string(port),
                              "--data-dir", dir.path()},
                             {}, log, log);
    bool up = WaitFor(
        [&] {
          return !ListeningAddress(port).empty() &&
                 ReadFile(log).find("listening") != std::string::npos;
        },
        15s);
    std::string bound = ListeningAddress(port);
    ::kill(pid, SIGTERM);
    ::waitpid(pid, nullptr, 0);
    ASSERT_TRUE(up) << ReadFile(log);
    std::string text = ReadFile(log);
    if (host.empty()) {
      EXPECT_EQ(bound, "0100007F") << "--listen :PORT bound " << bound;
      EXPECT_EQ(text.find("not only on loopback"), std::string::npos) << text;
    } else {
      EXPECT_EQ(bound, "00000000");
      EXPECT_NE(text.find("listening on 0.0.0.0, not only on loopback"), std::string::npos) << text;
    }
  }
}

}  // namespace
}  // namespace berth::testing
