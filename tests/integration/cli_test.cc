// What a new user meets first, on the real berth and berthd binaries: one
// daemon per port, `berth up --detach` telling the truth about the daemon it
// started, one rule by which every command finds the daemon (and `berth down`
// stops the one it finds), and Ctrl-C on `--wait` cancelling the job.
#include <gtest/gtest.h>

#include <filesystem>

#include "cli/discovery.h"
#include "common/daemon_record.h"
#include "harness.h"

namespace berth::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// A process started in the background with its output in files.
struct Proc {
  pid_t pid = 0;
  std::string out, err;  // file paths

  ~Proc() { Kill(); }
  void Kill() {
    if (pid <= 0) return;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    pid = 0;
  }
  // Its exit code (128+N for signal N), or -1 if it still runs after `timeout`.
  int Wait(std::chrono::milliseconds timeout) {
    int code = -1;
    WaitFor(
        [&] {
          int status = 0;
          if (::waitpid(pid, &status, WNOHANG) != pid) return false;
          code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
          pid = 0;
          return true;
        },
        timeout);
    return code;
  }
  std::string Out() const { return ReadFile(out); }
  std::string Err() const { return ReadFile(err); }
};

void Spawn(Proc& p, const TempDir& dir, const std::string& name,
           const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
  p.out = dir / (name + ".out");
  p.err = dir / (name + ".err");
  p.pid = SpawnToFiles(args, env, p.out, p.err);
}

int PortOf(const std::string& url) { return std::stoi(url.substr(url.rfind(':') + 1)); }

pid_t HealthPid(const std::string& url) {
  auto h = cli::ApiClient(url).Get("/healthz");
  return h.ok() && (*h)["pid"].is_number_integer() ? (*h)["pid"].get<pid_t>() : 0;
}

// The environment of a user with nothing set: no BERTH_SERVER, no
// BERTH_DATA_DIR, and a per-user data directory under `home`.
std::vector<std::string> CleanEnv(const TempDir& home) {
  return {"BERTH_SERVER=", "BERTH_DATA_DIR=", "HOME=" + home.path(),
          "XDG_DATA_HOME=" + (home / "xdg")};
}

std::vector<std::string> Plus(std::vector<std::string> env, const std::vector<std::string>& more) {
  env.insert(env.end(), more.begin(), more.end());
  return env;
}

CommandResult Berth(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  std::vector<std::string> argv = {BinDir() + "/berth"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, env);
}

// Gone, or a zombie nobody reaps (a daemon `berth up` started is not ours to reap).
bool Gone(pid_t pid) {
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  size_t rp = stat.rfind(')');
  if (stat.empty()) return ::kill(pid, 0) != 0;
  return rp != std::string::npos && rp + 2 < stat.size() && stat[rp + 2] == 'Z';
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// --- 1. One daemon per port -----------------------------------------------

TEST(Cli, SecondDaemonOnATakenPortFailsNamingThePort) {
  Daemon first({"--gpus", "1"});
  ASSERT_TRUE(first.Start());
  int port = PortOf(first.url());
  TempDir other, logs;
  Proc second;
  Spawn(second, logs, "berthd2",
        {BinDir() + "/berthd", "--listen", "127.0.0.1:" + std::to_string(port), "--data-dir",
         other.path(), "--gpus", "1"});
  int code = second.Wait(15s);
  ASSERT_NE(code, -1) << "a second berthd on port " << port << " kept running";
  EXPECT_NE(code, 0);
  std::string err = second.Err();
  EXPECT_TRUE(Contains(err, "127.0.0.1:" + std::to_string(port))) << err;
  EXPECT_TRUE(Contains(err, "Address already in use")) << err;
  EXPECT_FALSE(std::filesystem::exists(other / kDaemonRecordName));
  // The first keeps serving, and it alone answers on its port.
  for (int i = 0; i < 20; ++i) EXPECT_EQ(HealthPid(first.url()), first.pid());
}

// --- 2. berth up --detach -------------------------------------------------

TEST(Cli, UpDetachReportsTheFailureOfTheDaemonItStarted) {
  Daemon old({"--gpus", "1"});
  ASSERT_TRUE(old.Start());
  std::string listen = "127.0.0.1:" + std::to_string(PortOf(old.url()));
  TempDir home, other;

  // Same data directory: the child exits at once; the old daemon answers on
  // the address, which must not be taken for the child.
  CommandResult same =
      Berth({"up", "--detach", "--listen", listen, "--data-dir", old.data_dir()}, CleanEnv(home));
  EXPECT_EQ(same.exit_code, 1) << same.out << same.err;
  EXPECT_FALSE(Contains(same.out, "is up")) << same.out;
  EXPECT_TRUE(Contains(same.err, "did not start")) << same.err;
  EXPECT_TRUE(Contains(same.err, "another berthd is already using " + old.data_dir())) << same.err;

  // Another data directory, same port: the child cannot listen.
  CommandResult port =
      Berth({"up", "--detach", "--listen", listen, "--data-dir", other.path()}, CleanEnv(home));
  EXPECT_EQ(port.exit_code, 1) << port.out << port.err;
  EXPECT_FALSE(Contains(port.out, "is up")) << port.out;
  EXPECT_TRUE(Contains(port.err, "cannot listen on " + listen)) << port.err;
  EXPECT_EQ(HealthPid(old.url()), old.pid());
}

TEST(Cli, UpDetachSaysUpOnlyForTheDaemonItStarted) {
  TempDir home, data;
  CommandResult up = Berth({"up", "--detach", "--listen", "127.0.0.1:0", "--gpus", "1"},
                           Plus(CleanEnv(home), {"BERTH_DATA_DIR=" + data.path()}));
  auto rec = ReadDaemonRecord(data.path());
  ASSERT_TRUE(rec.ok() && *rec) << up.out << up.err;
  pid_t pid = (*rec)->pid;
  struct Reap {  // whatever happens below, leave no daemon behind
    pid_t pid;
    ~Reap() {
      if (!Gone(pid)) ::kill(pid, SIGKILL);
    }
  } reap{pid};
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
  EXPECT_TRUE(Contains(up.out, "is up at " + (*rec)->url + " (pid " + std::to_string(pid) + ","))
      << up.out;
  EXPECT_EQ(HealthPid((*rec)->url), pid);

  // BERTH_DATA_DIR alone finds it, and `berth down` stops that one.
  CommandResult down = Berth({"down"}, Plus(CleanEnv(home), {"BERTH_DATA_DIR=" + data.path()}));
  EXPECT_EQ(down.exit_code, 0) << down.out << down.err;
  EXPECT_TRUE(Contains(down.out, "(pid " + std::to_string(pid) + ",")) << down.out;
  EXPECT_TRUE(WaitFor([&] { return Gone(pid); }, 10s));
  EXPECT_FALSE(std::filesystem::exists(data / kDaemonRecordName));
}

// --- 3. One rule to find the daemon ----------------------------------------

TEST(CliDiscovery, RuleOrder) {
  TempDir run, user, named;
  auto write = [](const std::string& dir, const std::string& url, pid_t pid) {
    ASSERT_TRUE(WriteDaemonRecord(dir, {url, pid, ""}).ok());
  };
  cli::DiscoveryInputs in;
  in.system_run_dir = run.path();
  in.user_data_dir = user.path();
  auto url = [&] {
    auto t = cli::FindDaemon(in);
    return t.ok() ? t->url : "error: " + t.status().message();
  };
  EXPECT_EQ(url(), "http://127.0.0.1:7420");  // nothing anywhere
  write(user.path(), "http://127.0.0.1:5", ::getpid());
  EXPECT_EQ(url(), "http://127.0.0.1:5");
  write(run.path(), "http://127.0.0.1:4", ::getpid());
  EXPECT_EQ(url(), "http://127.0.0.1:4");
  in.env_data_dir = named.path();  // named, but nobody runs there: an error, not the next place
  EXPECT_TRUE(Contains(url(), "no berthd is running for " + named.path())) << url();
  write(named.path(), "http://127.0.0.1:3", ::getpid());
  EXPECT_EQ(url(), "http://127.0.0.1:3");
  in.env_server = "http://127.0.0.1:2";
  EXPECT_EQ(url(), "http://127.0.0.1:2");
  in.server_flag = "http://127.0.0.1:1";
  EXPECT_EQ(url(), "http://127.0.0.1:1");

  // A record whose daemon is gone is an error naming it, wherever it is.
  pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  in = {};
  in.system_run_dir = run.path();
  in.user_data_dir = user.path();
  write(run.path(), "http://127.0.0.1:4", dead);
  std::string stale_dir;
  auto t = cli::FindDaemon(in, &stale_dir);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Contains(t.status().message(), run / kDaemonRecordName)) << t.status().message();
  EXPECT_TRUE(Contains(t.status().message(), "is not running")) << t.status().message();
  EXPECT_EQ(stale_dir, run.path());
}

TEST(Cli, DataDirAloneFindsTheDaemonForPsAndDown) {
  Daemon d({"--gpus", "1"});
  ASSERT_TRUE(d.Start());
  TempDir work, home;
  std::string id = SubmitScript(d, {"--name", "found-me"}, "sleep 30");
  auto env = Plus(CleanEnv(home), {"BERTH_DATA_DIR=" + d.data_dir()});
  CommandResult ps = Berth({"ps"}, env);
  EXPECT_EQ(ps.exit_code, 0) << ps.err;
  EXPECT_TRUE(Contains(ps.out, "found-me")) << ps.out;
  for (const char* cmd : {"get", "logs"}) {
    CommandResult r = Berth({cmd, id}, env);
    EXPECT_EQ(r.exit_code, 0) << cmd << ": " << r.err;
  }
  CommandResult cancel = Berth({"cancel", id}, env);
  EXPECT_EQ(cancel.exit_code, 0) << cancel.err;
  ASSERT_TRUE(WaitFor([&] { return d.State(id) == "Cancelled"; }, 10s));

  CommandResult down = Berth({"down"}, env);
  EXPECT_EQ(down.exit_code, 0) << down.out << down.err;
  EXPECT_TRUE(Contains(down.out, "(pid " + std::to_string(d.pid()) + ",")) << down.out;
  EXPECT_TRUE(Contains(down.out, "found via " + d.data_dir() + "/" + kDaemonRecordName))
      << down.out;
  EXPECT_TRUE(WaitFor(
      [&] { return !std::filesystem::exists(d.data_dir() + "/" + kDaemonRecordName); }, 10s));
  EXPECT_EQ(d.Stop(), 0);  // it exited cleanly
}

TEST(Cli, DownStopsTheDaemonThatBerthServerNames) {
  Daemon d({"--gpus", "1"});
  ASSERT_TRUE(d.Start());
  TempDir home;
  CommandResult down = Berth({"down"}, Plus(CleanEnv(home), {"BERTH_SERVER=" + d.url()}));
  EXPECT_EQ(down.exit_code, 0) << down.out << down.err;
  EXPECT_TRUE(Contains(down.out, "berthd at " + d.url() + " (pid " + std::to_string(d.pid())))
      << down.out;
  EXPECT_TRUE(Contains(down.out, "found via BERTH_SERVER")) << down.out;
  EXPECT_TRUE(WaitFor([&] { return !cli::ApiClient(d.url()).Get("/healthz").ok(); }, 10s));
  EXPECT_EQ(d.Stop(), 0);
}

TEST(Cli, PerUserDataDirIsFoundWhenNothingIsSet) {
  if (std::filesystem::exists(std::string(kSystemRunDir) + "/" + kDaemonRecordName))
    GTEST_SKIP() << "a system berthd is recorded in " << kSystemRunDir << "; it comes first";
  Daemon d({"--gpus", "1"});
  ASSERT_TRUE(d.Start());
  TempDir home;
  std::filesystem::create_directories(home / "xdg");
  std::filesystem::create_directory_symlink(d.data_dir(), home / "xdg/berth");
  std::string id = SubmitScript(d, {"--name", "mine"}, "true");
  CommandResult ps = Berth({"ps", "-a"}, CleanEnv(home));
  EXPECT_EQ(ps.exit_code, 0) << ps.err;
  EXPECT_TRUE(Contains(ps.out, "mine")) << ps.out;
}

TEST(Cli, StaleRecordIsAClearErrorAndDownClearsIt) {
  Daemon d({"--gpus", "1"});
  ASSERT_TRUE(d.Start());
  pid_t pid = d.pid();
  d.Kill();  // a crash: the record stays behind
  std::string record = d.data_dir() + "/" + kDaemonRecordName;
  ASSERT_TRUE(std::filesystem::exists(record));
  TempDir home;
  auto env = Plus(CleanEnv(home), {"BERTH_DATA_DIR=" + d.data_dir()});
  CommandResult ps = Berth({"ps"}, env);
  EXPECT_EQ(ps.exit_code, 3) << ps.out << ps.err;
  EXPECT_TRUE(Contains(ps.err, "the berthd recorded in " + record + " (pid " + std::to_string(pid)))
      << ps.err;
  EXPECT_TRUE(Contains(ps.err, "is not running")) << ps.err;
  EXPECT_TRUE(ps.out.empty()) << ps.out;  // nothing from any other daemon

  CommandResult down = Berth({"down"}, env);
  EXPECT_EQ(down.exit_code, 1) << down.out << down.err;
  EXPECT_TRUE(Contains(down.err, "removed its stale record")) << down.err;
  EXPECT_FALSE(std::filesystem::exists(record));
  CommandResult again = Berth({"ps"}, env);
  EXPECT_EQ(again.exit_code, 3);
  EXPECT_TRUE(Contains(again.err, "no berthd is running for " + d.data_dir())) << again.err;
}

// --- 6. Ctrl-C on --wait ---------------------------------------------------

// The one job of `d` (the test submits one), once it runs.
std::string RunningJob(const Daemon& d) {
  std::string id;
  WaitFor(
      [&] {
        json jobs = d.Get("/api/v1/jobs?state=Running");
        if (!jobs.is_object() || jobs["items"].empty()) return false;
        id = jobs["items"][0]["id"].dump();
        return true;
      },
      20s);
  return id;
}

bool GpusFree(const Daemon& d) {
  json gpus = d.Get("/api/v1/gpus");
  if (!gpus.is_object()) return false;
  for (const auto& n : gpus["nodes"])
    for (const auto& g : n["gpus"])
      if (!g["jobs"].empty()) return false;
  return true;
}

TEST(Cli, CtrlCOnRunWaitCancelsTheJob) {
  Daemon d({"--gpus", "1"});
  ASSERT_TRUE(d.Start());
  TempDir work;
  Proc berth;
  Spawn(berth, work, "run",
        {BinDir() + "/berth", "--server", d.socket_url(), "run", "--gpus", "1", "--wait", "--",
         "sleep", "600"});
  std::string id = RunningJob(d);
  ASSERT_FALSE(id.empty()) << berth.Err();
  ASSERT_FALSE(GpusFree(d));
  ::kill(berth.pid, SIGINT);
  EXPECT_EQ(berth.Wait(20s), 130) << berth.Err();
  EXPECT_TRUE(Contains(
      berth.Err(), "berth: interrupted: cancelling job " + id + " (Ctrl-C again to stop waiting)"))
      << berth.Err();
  EXPECT_EQ(d.State(id), "Cancelled");  // berth waited for the end
  EXPECT_TRUE(GpusFree(d)) << d.Get("/api/v1/gpus").dump();
}

TEST(Cli, SecondCtrlCStopsWaitingAtOnce) {
  Daemon d({"--gpus", "1"});
  ASSERT_TRUE(d.Start());
  TempDir work;
  // Ignores SIGTERM: the cancel waits out its 3 s grace period.
  json doc = {
      {"apiVersion", "berth/v1"},
      {"kind", "Job"},
      {"metadata", {{"name", "stubborn"}}},
      {"spec",
       {{"command", {"/bin/sh", "-c", "trap '' TERM; touch " + work / "ready" + "; sleep 600"}},
        {"terminationGracePeriodSeconds", 3},
        {"resources", {{"gpus", "1"}}}}}};
  WriteFile(work / "job.json", doc.dump());
  Proc berth;
  Spawn(berth, work, "submit",
        {BinDir() + "/berth", "--server", d.socket_url(), "submit", "-f", work / "job.json",
         "--wait"});
  std::string id = RunningJob(d);
  ASSERT_FALSE(id.empty()) << berth.Err();
  ASSERT_TRUE(
      WaitFor([&] { return std::filesystem::exists(work / "ready"); }, 10s));  // TERM ignored now
  ::kill(berth.pid, SIGINT);
  ASSERT_TRUE(WaitFor([&] { return Contains(berth.Err(), "cancelling job " + id); }, 10s))
      << berth.Err();
  ::kill(berth.pid, SIGINT);
  EXPECT_EQ(berth.Wait(2s), 130) << berth.Err();
  EXPECT_TRUE(Contains(berth.Err(), "stopped waiting")) << berth.Err();
  EXPECT_TRUE(WaitFor([&] { return d.State(id) == "Cancelled"; }, 20s)) << d.Job(id).dump();
  EXPECT_TRUE(GpusFree(d));
}

TEST(Cli, DetachOnInterruptLeavesTheJobRunning) {
  Daemon d({"--gpus", "1"});
  ASSERT_TRUE(d.Start());
  TempDir work;
  Proc berth;
  Spawn(berth, work, "run",
        {BinDir() + "/berth", "--server", d.socket_url(), "run", "--gpus", "1", "--wait",
         "--detach-on-interrupt", "--", "sleep", "600"});
  std::string id = RunningJob(d);
  ASSERT_FALSE(id.empty()) << berth.Err();
  ::kill(berth.pid, SIGINT);
  EXPECT_EQ(berth.Wait(10s), 130) << berth.Err();
  EXPECT_TRUE(
      Contains(berth.Err(), "job " + id + " keeps running; `berth logs -f " + id + "` to follow"))
      << berth.Err();
  EXPECT_EQ(d.State(id), "Running");
  EXPECT_FALSE(GpusFree(d));
}

TEST(Cli, CtrlCOnTrainWaitCancelsTheTrainingJob) {
  Daemon d({"--gpus", "1"});
  ASSERT_TRUE(d.Start());
  TempDir work;
  json doc = {{"apiVersion", "berth/v1"},
              {"kind", "TrainingJob"},
              {"metadata", {{"name", "t"}}},
              {"spec", {{"workers", 1}, {"gpusPerWorker", 1}, {"command", {"sleep", "600"}}}}};
  WriteFile(work / "train.json", doc.dump());
  Proc berth;
  Spawn(berth, work, "train",
        {BinDir() + "/berth", "--server", d.socket_url(), "train", "-f", work / "train.json",
         "--wait"});
  std::string id = RunningJob(d);
  ASSERT_FALSE(id.empty()) << berth.Err();
  ::kill(berth.pid, SIGINT);
  EXPECT_EQ(berth.Wait(20s), 130) << berth.Err();
  EXPECT_TRUE(Contains(berth.Err(), "cancelling training job " + id)) << berth.Err();
  EXPECT_EQ(d.State(id), "Cancelled");
  EXPECT_TRUE(GpusFree(d));
}

}  // namespace
}  // namespace berth::testing
