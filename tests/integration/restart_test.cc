// berthd is killed with SIGKILL while jobs run and others wait; a new berthd
// on the same data directory finishes every job with its real exit status,
// starts the waiting ones in their original order, and loses nothing.
#include <gtest/gtest.h>

#include <set>

#include "harness.h"

namespace berth::testing {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string l; std::getline(ss, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

TEST(Restart, SigkilledDaemonLosesNoJobAndKeepsOrder) {
  TempDir work;
  const std::string dir = work.path();
  Daemon d({"--gpus", "2"});
  ASSERT_TRUE(d.Start());

  // Two running jobs, one GPU each, that exit with codes 3 and 5 when released.
  auto waiter = [&](int code) {
    return "echo $BERTH_JOB_ID >> " + dir + "/order; while [ ! -e " + dir +
           "/release.$BERTH_JOB_ID ]; do sleep 0.02; done; exit " + std::to_string(code);
  };
  auto submit = [&](int code) {
    CommandResult r = d.Cli({"run", "--gpus", "1", "--", "/bin/sh", "-c", waiter(code)});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Trim(r.out);
  };
  std::string r1 = submit(3), r2 = submit(5);
  ASSERT_TRUE(WaitFor([&] { return d.State(r1) == "Running" && d.State(r2) == "Running"; }));
  // Four waiting jobs with distinct exit codes.
  std::vector<std::string> waiting;
  for (int code : {0, 11, 12, 0}) waiting.push_back(submit(code));
  for (const auto& w : waiting) ASSERT_EQ(d.State(w), "Pending");

  d.Kill();

  // While the daemon is down, r1 ends (its shim records the status).
  WriteFile(dir + "/release." + r1, "");
  ASSERT_TRUE(WaitFor([&] {
    // The shim's status file appears under the run directory.
    for (auto& e : std::filesystem::directory_iterator(d.data_dir() + "/runs"))
      if (e.path().filename().string().rfind("job-" + r1 + ".", 0) == 0 &&
          std::filesystem::exists(e.path() / "status.json"))
        return true;
    return false;
  }));

  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  // r1 ended while we were away: its real exit code, not a guess.
  ASSERT_TRUE(WaitFor([&] { return d.State(r1) == "Failed"; }));
  EXPECT_EQ(d.Job(r1)["exitCode"], 3);
  // r2 is still running, reattached.
  EXPECT_EQ(d.State(r2), "Running");
  // The first waiting job took r1's GPU.
  ASSERT_TRUE(WaitFor([&] { return d.State(waiting[0]) == "Running"; }));
  EXPECT_EQ(d.State(waiting[1]), "Pending");

  // Release everything in turn; the waiting ones must start in their order.
  WriteFile(dir + "/release." + r2, "");
  for (const auto& w : waiting) WriteFile(dir + "/release." + w, "");
  for (const auto& w : waiting)
    ASSERT_TRUE(WaitFor([&] {
      std::string s = d.State(w);
      return s == "Succeeded" || s == "Failed";
    })) << w;
  ASSERT_TRUE(WaitFor([&] { return d.State(r2) == "Failed"; }));
  EXPECT_EQ(d.Job(r2)["exitCode"], 5);
  EXPECT_EQ(d.Job(waiting[0])["exitCode"], 0);
  EXPECT_EQ(d.Job(waiting[1])["exitCode"], 11);
  EXPECT_EQ(d.Job(waiting[2])["exitCode"], 12);
  EXPECT_EQ(d.Job(waiting[3])["exitCode"], 0);

  // The scheduler bound them in submission order, across the restart. (The
  // order the processes append to a file is not a test of that: two jobs
  // bound in one cycle start concurrently.)
  std::vector<std::string> order = Lines(ReadFile(dir + "/order"));
  ASSERT_EQ(order.size(), 6u);
  EXPECT_EQ((std::set<std::string>{order[0], order[1]}), (std::set<std::string>{r1, r2}));
  std::vector<std::string> scheduled;
  auto events = d.Get("/api/v1/events");
  for (const auto& e : events["items"])
    if (e["type"] == "JobScheduled") scheduled.push_back(e["job"].dump());
  std::vector<std::string> expected = {r1, r2};
  expected.insert(expected.end(), waiting.begin(), waiting.end());
  EXPECT_EQ(scheduled, expected);

  // No acknowledged job lost, none duplicated.
  auto all = d.Get("/api/v1/jobs");
  EXPECT_EQ(all["items"].size(), 6u);
  EXPECT_EQ(d.Stop(), 0);
}

TEST(Restart, CleanShutdownLeavesTasksRunning) {
  TempDir work;
  Daemon d({"--gpus", "1"});
  ASSERT_TRUE(d.Start());
  CommandResult r =
      d.Cli({"run", "--gpus", "1", "--", "/bin/sh", "-c",
             "while [ ! -e " + work.path() + "/go ]; do sleep 0.02; done; echo done"});
  std::string id = Trim(r.out);
  ASSERT_TRUE(WaitFor([&] { return d.State(id) == "Running"; }));
  EXPECT_EQ(d.Stop(), 0);  // SIGTERM: the daemon exits 0
  WriteFile(work / "go", "");
  ASSERT_TRUE(d.Start());
  ASSERT_TRUE(WaitFor([&] { return d.State(id) == "Succeeded"; }));
  EXPECT_EQ(d.Cli({"logs", id}).out, "done\n");
}

}  // namespace
}  // namespace berth::testing
