// Who a job belongs to: every way of starting work (berth run, submit -f,
// train, pipeline run and its steps, the Python SDK and the CLI called from
// inside a step) records the caller's OS account (the socket peer's uid, not
// $USER), and work started inside a task belongs to the task's owner (its
// job token). Access between users: access_test.cc.
#include <httplib.h>
#include <pwd.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <set>
#include <sstream>

#include "harness.h"
#include "owner_util.h"
#include "pipeline_util.h"

namespace berth::testing {
namespace {

using nlohmann::json;

std::string Me() { return ::getpwuid(::geteuid())->pw_name; }

// The berth CLI against `d` with extra environment (KEY=VALUE).
CommandResult CliWithEnv(const Daemon& d, std::vector<std::string> args,
                         const std::vector<std::string>& env) {
  args.insert(args.begin(), {BinDir() + "/berth", "--server", d.socket_url()});
  return RunCommand(args, env);
}

// The ids in the first column of a `berth ps` table.
std::set<std::string> PsIds(const std::string& table) {
  std::set<std::string> ids;
  std::istringstream in(table);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string id;
    if (f >> id) ids.insert(id);
  }
  return ids;
}

TEST(Identity, EveryWayOfStartingWorkRecordsTheSameCaller) {
  if (::access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/python3 for the SDK";
  TempDir work;
  Daemon d({"--gpus", "2"});
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  // A wrong $USER must not decide who the caller is.
  const std::vector<std::string> env = {"USER=impostor", "LOGNAME=impostor"};

  CommandResult run = CliWithEnv(d, {"run", "--name", "r", "--", "/bin/true"}, env);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  WriteFile(work / "job.yaml",
            "apiVersion: berth/v1\nkind: Job\nmetadata: {name: s}\nspec: {command: [/bin/true]}\n");
  CommandResult submit = CliWithEnv(d, {"submit", "-f", work / "job.yaml"}, env);
  ASSERT_EQ(submit.exit_code, 0) << submit.err;
  WriteFile(work / "train.yaml",
            "apiVersion: berth/v1\nkind: TrainingJob\nmetadata: {name: t}\n"
            "spec: {workers: 2, gpusPerWorker: 1, command: [/bin/true]}\n");
  CommandResult train = CliWithEnv(d, {"train", "-f", work / "train.yaml"}, env);
  ASSERT_EQ(train.exit_code, 0) << train.err;

  // A pipeline whose steps call the SDK and the CLI: what they start is the
  // run owner's too.
  WriteFile(work / "child.py",
            "import sys\nsys.path.insert(0, '" + std::string(BERTH_SOURCE_DIR) +
                "/python')\n"
                "from berth import Client, Pipeline\n"
                "with Pipeline('child') as p:\n    p.step('leaf', command=['/bin/true'])\n"
                "print(Client().submit(p))\n");
  WriteFile(work / "p.yaml",
            "apiVersion: berth/v1\nkind: Pipeline\nmetadata: {name: outer}\nspec:\n  steps:\n"
            "  - {name: sdk, command: [/usr/bin/python3, " +
                work / "child.py" +
                "]}\n"
                "  - {name: cli, command: [" +
                BinDir() +
                "/berth, run, --name, from-step, --, /bin/true]}\n"
                "  - {name: env, command: [/bin/sh, -c, 'echo $BERTH_USER']}\n");
  CommandResult pipe = CliWithEnv(d, {"pipeline", "run", "-f", work / "p.yaml", "--wait"}, env);
  ASSERT_EQ(pipe.exit_code, 0) << pipe.out << pipe.err;
  std::string outer = pipe.out.substr(0, pipe.out.find('\n'));
  json outer_run = GetRun(d, outer);
  std::string child = Trim(d.GetText("/api/v1/pipelines/runs/" + outer + "/logs?step=sdk"));
  ASSERT_FALSE(child.empty()) << outer_run.dump();
  json child_run = WaitRunEnd(d, child);
  ASSERT_EQ(child_run["state"], "Succeeded") << child_run.dump();
  EXPECT_EQ(outer_run["user"], Me());
  EXPECT_EQ(child_run["user"], Me());
  // A task is told its owner.
  EXPECT_EQ(Trim(d.GetText("/api/v1/pipelines/runs/" + outer + "/logs?step=env")), Me());

  // Every job (the three, the 3 outer steps, the child's step, the job a step
  // started with the CLI) is the caller's.
  ASSERT_TRUE(WaitFor([&] {
    json all = d.Get("/api/v1/jobs?state=Pending,Scheduled,Running");
    return all.is_object() && all["items"].empty();
  }));
  json all = d.Get("/api/v1/jobs");
  std::set<std::string> names, ids;
  for (const auto& j : all["items"]) {
    EXPECT_EQ(j["user"], Me()) << j.dump();
    names.insert(j["name"].get<std::string>());
    ids.insert(j["id"].dump());
  }
  EXPECT_EQ(all["items"].size(), 8u) << all.dump();
  for (const char* n : {"r", "s", "t", "from-step"}) EXPECT_TRUE(names.count(n)) << n;

  CommandResult ps = d.Cli({"ps", "-a", "--user", Me()});
  ASSERT_EQ(ps.exit_code, 0) << ps.err;
  EXPECT_EQ(PsIds(ps.out), ids) << ps.out;
  CommandResult mine = d.Cli({"ps", "-a", "--user"});  // --user alone: mine
  EXPECT_EQ(PsIds(mine.out), ids) << mine.out;
  CommandResult theirs = d.Cli({"ps", "-a", "--user", "impostor"});
  EXPECT_TRUE(PsIds(theirs.out).empty()) << theirs.out;
}

TEST(Identity, NobodySubmitsAsSomeoneElse) {
  TempDir work;
  Daemon d;
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  WriteFile(work / "job.yaml",
            "apiVersion: berth/v1\nkind: Job\nmetadata: {user: mallory}\n"
            "spec: {command: [/bin/true]}\n");
  CommandResult r = d.Cli({"submit", "-f", work / "job.yaml"});
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.err.find("metadata.user: \"mallory\" is not the caller"), std::string::npos) << r.err;
  // The same document naming the caller is fine.
  WriteFile(work / "mine.yaml", "apiVersion: berth/v1\nkind: Job\nmetadata: {user: " + Me() +
                                    "}\nspec: {command: [/bin/true]}\n");
  r = d.Cli({"submit", "-f", work / "mine.yaml"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  WriteFile(work / "p.yaml",
            "apiVersion: berth/v1\nkind: Pipeline\nmetadata: {name: p, user: mallory}\n"
            "spec: {steps: [{name: a, command: [/bin/true]}]}\n");
  r = d.Cli({"pipeline", "run", "-f", work / "p.yaml"});
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.err.find("metadata.user: \"mallory\""), std::string::npos) << r.err;
  // A header naming a user proves nothing: over TCP without a token the
  // request is refused.
  httplib::Client http(d.url());
  auto res = http.Post("/api/v1/jobs", httplib::Headers{{"X-Berth-User", "alice"}},
                       "apiVersion: berth/v1\nkind: Job\nspec: {command: [/bin/true]}\n",
                       "application/yaml");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401) << res->body;
  EXPECT_NE(res->body.find("no credentials"), std::string::npos) << res->body;
}

}  // namespace
}  // namespace berth::testing
