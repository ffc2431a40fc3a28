// Tasks run as their owner when the executor runs as root, in a directory
// the owner owns; whatever the daemon reads or removes in a run directory is
// never reached through a symbolic link; old run directories are removed.
#include <gtest/gtest.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "local_fixture.h"

namespace berth::exec {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::EventLog;
using testing::ReadFileOrEmpty;
using testing::WaitUntil;

// A throwaway Unix account, removed at destruction.
class TempUser {
 public:
  TempUser() {
    std::random_device rd;
    std::ostringstream n;
    n << "berth-t-" << std::hex << (rd() & 0xffffff);
    name_ = n.str();
    std::string cmd = "useradd -M -s /bin/sh " + name_ + " >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) return;
    struct passwd* pw = ::getpwnam(name_.c_str());
    if (pw == nullptr) return;
    uid_ = pw->pw_uid;
    gid_ = pw->pw_gid;
    ok_ = true;
  }
  ~TempUser() {
    if (ok_) std::system(("userdel " + name_ + " >/dev/null 2>&1").c_str());
  }
  bool ok() const { return ok_; }
  const std::string& name() const { return name_; }
  uid_t uid() const { return uid_; }
  gid_t gid() const { return gid_; }

 private:
  std::string name_;
  bool ok_ = false;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
};

class LocalRunAsOwner : public testing::LocalFixture {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "running tasks as another user needs root";
  }
  LocalExecutorOptions OwnerOptions() {
    LocalExecutorOptions o = Options();
    o.run_as_owner = true;
    // The owner must be able to reach its directory (mkdtemp made this 0700).
    ::chmod(tmp_.path().c_str(), 0711);
    return o;
  }
};

TEST_F(LocalRunAsOwner, TheTaskRunsWithItsOwnersIdentityInADirectoryItOwns) {
  TempUser user;
  ASSERT_TRUE(user.ok()) << "useradd failed";
  EventLog log;
  auto ex = Make(log, OwnerOptions());
  ASSERT_TRUE(ex);
  ::setenv("BERTH_TEST_DAEMON_SECRET", "s3cret", 1);
  TaskSpec spec =
      Shell(1,
            "id -u; id -g; echo \"$USER $LOGNAME $HOME\"; pwd; echo \"$BERTH_RUN_DIR\"; "
            "echo \"secret=${BERTH_TEST_DAEMON_SECRET-unset}\"; touch mine; "
            "if touch ../planted 2>/dev/null; then echo wrote-run-dir; fi");
  spec.user = user.name();
  Status st = ex->Start(spec);
  ::unsetenv("BERTH_TEST_DAEMON_SECRET");
  ASSERT_TRUE(st.ok()) << st.ToString();
  auto end = log.WaitEnd(spec.key);
  ASSERT_TRUE(end);
  ASSERT_EQ(end->type, TaskEventType::kExited) << end->message;
  EXPECT_EQ(end->exit_code, 0) << Output(*ex, spec.key);

  const std::string dir = ex->RunDir(spec.key);
  const std::string work = dir + "/work";
  struct passwd* pw = ::getpwnam(user.name().c_str());
  ASSERT_NE(pw, nullptr);
  // The output log is the daemon's and reads through the executor.
  std::string out = Output(*ex, spec.key);
  std::istringstream in(out);
  std::string uid, gid, names, pwd, run_dir, secret;
  std::getline(in, uid);
  std::getline(in, gid);
  std::getline(in, names);
  std::getline(in, pwd);
  std::getline(in, run_dir);
  std::getline(in, secret);
  EXPECT_EQ(uid, std::to_string(user.uid())) << out;
  EXPECT_EQ(gid, std::to_string(user.gid())) << out;
  EXPECT_EQ(names, user.name() + " " + user.name() + " " + pw->pw_dir) << out;
  EXPECT_EQ(pwd, work) << out;
  EXPECT_EQ(run_dir, work) << out;
  EXPECT_EQ(secret, "secret=unset") << "the daemon's environment leaked into another user's task";
  EXPECT_EQ(out.find("wrote-run-dir"), std::string::npos)
      << "the task wrote into the run directory";

  struct stat st_work, st_mine, st_log, st_dir;
  ASSERT_EQ(::lstat(work.c_str(), &st_work), 0);
  EXPECT_EQ(st_work.st_uid, user.uid());
  ASSERT_EQ(::lstat((work + "/mine").c_str(), &st_mine), 0);
  EXPECT_EQ(st_mine.st_uid, user.uid());
  ASSERT_EQ(::lstat((dir + "/output.log").c_str(), &st_log), 0);
  EXPECT_EQ(st_log.st_uid, ::geteuid());
  ASSERT_EQ(::lstat(dir.c_str(), &st_dir), 0);
  EXPECT_EQ(st_dir.st_uid, ::geteuid());

  // The task's directory may hold a link out of it; removing the job's files
  // removes the link, never what it points to.
  std::string outside = tmp_.path() + "/outside";
  fs::create_directories(outside);
  std::ofstream(outside + "/keep") << "x";
  fs::create_directory_symlink(outside, work + "/escape");
  auto removed = ex->RemoveJobFiles(1);
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(*removed, 1);
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_TRUE(fs::exists(outside + "/keep"));
}

TEST_F(LocalRunAsOwner, AnOwnerWithoutAnAccountIsRefusedWithTheReason) {
  EventLog log;
  auto ex = Make(log, OwnerOptions());
  ASSERT_TRUE(ex);
  TaskSpec spec = Shell(1, "true");
  spec.user = "berth-no-such-user-x";
  Status st = ex->Start(spec);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(st.message(),
            "owner \"berth-no-such-user-x\": no such account on this machine (tasks run as their "
            "owner's account)");
  // The daemon's own user, or no owner at all, runs as today.
  TaskSpec mine = Shell(2, "id -u; pwd");
  mine.user = ::getpwuid(::geteuid())->pw_name;
  ASSERT_TRUE(ex->Start(mine).ok());
  ASSERT_TRUE(log.WaitEnd(mine.key));
  EXPECT_EQ(Output(*ex, mine.key),
            std::to_string(::geteuid()) + "\n" + ex->RunDir(mine.key) + "\n");
}

// Not as root: everything runs as the daemon's user, whoever the owner is.
TEST(LocalRunAsOwnerNotRoot, OptionOffMeansTheDaemonsUser) {
  testing::TempDir tmp;
  EventLog log;
  SystemClock clock;
  LocalExecutorOptions o;
  o.run_root = tmp.path() + "/runs";
  o.shim_path = testing::kShimBinary;
  auto ex = MakeLocalExecutor(o, clock, log.Sink());
  ASSERT_TRUE(ex.ok());
  TaskSpec spec;
  spec.key = {1, 0, 0};
  spec.argv = {"id", "-u"};
  spec.user = "berth-no-such-user-x";  // not looked up: run_as_owner is off
  ASSERT_TRUE((*ex)->Start(spec).ok());
  auto end = log.WaitEnd(spec.key);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->exit_code, 0);
}

class LocalRunFiles : public testing::LocalFixture {};

// A link planted in place of status.json or output.log, to a file only root
// may read, is not followed by anything the daemon does.
TEST_F(LocalRunFiles, APlantedLinkInPlaceOfAFileTheDaemonReadsIsNotFollowed) {
  TaskSpec spec = Shell(1, "echo hello; exit 3");
  std::string dir;
  {
    EventLog log;
    auto ex = Make(log);
    ASSERT_TRUE(ex);
    ASSERT_TRUE(ex->Start(spec).ok());
    ASSERT_TRUE(log.WaitEnd(spec.key));
    dir = ex->RunDir(spec.key);
  }
  std::string secret = tmp_.path() + "/secret.json";
  std::ofstream(secret) << R"({"started": true, "exitCode": 42, "error": "TOPSECRET"})"
                        << "\n";
  ::chmod(secret.c_str(), 0600);
  for (const char* f : {"status.json", "output.log"}) {
    fs::remove(dir + "/" + f);
    fs::create_symlink(secret, dir + "/" + f);
  }
  EventLog log;
  auto ex = Make(log);
  ASSERT_TRUE(ex);
  ex->Recover({spec.key});
  auto end = log.WaitEnd(spec.key);
  ASSERT_TRUE(end);
  for (const auto& ev : log.For(spec.key)) {
    EXPECT_NE(ev.exit_code, std::optional<int>(42)) << "status.json was read through the link";
    EXPECT_EQ(ev.message.find("TOPSECRET"), std::string::npos) << ev.message;
  }
  auto page = ex->ReadLog(spec.key, 0, 4096);
  if (page.ok()) {
    EXPECT_EQ(page->data.find("TOPSECRET"), std::string::npos);
  }
  auto removed = ex->RemoveJobFiles(1);
  ASSERT_TRUE(removed.ok());
  EXPECT_NE(ReadFileOrEmpty(secret).find("TOPSECRET"), std::string::npos);  // untouched
}

TEST_F(LocalRunFiles, RunsThatEndedLongerAgoThanTheRetentionAreRemoved) {
  LocalExecutorOptions o = Options();
  o.run_retention = 300;
  o.cleanup_interval = 20;
  EventLog log;
  auto ex = Make(log, o);
  ASSERT_TRUE(ex);
  TaskSpec done = Shell(1, "true");
  TaskSpec recovered = Shell(2, "true");
  TaskSpec running = Shell(3, "while [ ! -e go ]; do sleep 0.02; done");
  for (const TaskSpec* s : {&done, &recovered, &running}) ASSERT_TRUE(ex->Start(*s).ok());
  ASSERT_TRUE(log.WaitEnd(done.key));
  ASSERT_TRUE(log.WaitEnd(recovered.key));
  // Nothing is removed before Recover: a restarted daemon may still have to
  // hear how those tasks ended.
  EXPECT_EQ(ex->CleanUpOldRuns(), 0);
  ex->Recover({recovered.key});
  EXPECT_TRUE(WaitUntil([&] { return !fs::exists(ex->RunDir(done.key)); }, 5s));
  EXPECT_TRUE(fs::exists(ex->RunDir(running.key)));    // still running
  EXPECT_TRUE(fs::exists(ex->RunDir(recovered.key)));  // the restart asked about it
  Touch(ex->RunDir(running.key) + "/go");
  ASSERT_TRUE(log.WaitEnd(running.key));
  EXPECT_TRUE(WaitUntil([&] { return !fs::exists(ex->RunDir(running.key)); }, 5s));
}

}  // namespace
}  // namespace berth::exec
