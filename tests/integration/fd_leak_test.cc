// Nothing of berthd's leaks into a task's supervisor or the task: not its
// listening sockets (TCP and berthd.sock) nor its connections. A leaked
// listener would keep a dead daemon's port and socket accepting connections
// and give a task a handle on the API's sockets.
#include <dirent.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "harness.h"

namespace berth::testing {
namespace {

// The pids whose command line contains `needle`.
std::vector<pid_t> PidsWith(const std::string& needle) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
    if (pid <= 0) continue;
    std::ifstream in("/proc/" + std::string(e->d_name) + "/cmdline");
    std::string cmd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmd.find(needle) != std::string::npos) out.push_back(pid);
  }
  ::closedir(d);
  return out;
}

// The socket descriptors `pid` holds ("socket:[inode]" links in /proc/PID/fd).
std::vector<std::string> Sockets(pid_t pid) {
  std::vector<std::string> out;
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    char target[256];
    ssize_t n = ::readlink((dir + "/" + e->d_name).c_str(), target, sizeof(target) - 1);
    if (n <= 0) continue;
    target[n] = 0;
    if (std::string(target).rfind("socket:", 0) == 0)
      out.push_back(std::string(e->d_name) + " -> " + target);
  }
  ::closedir(d);
  return out;
}

TEST(FdLeak, TheShimAndTheTaskHoldNoneOfBerthdsSockets) {
  Daemon d({"--gpus", "1"});
  ASSERT_TRUE(d.Start());
  // A marker only this test's task has on its command line.
  std::string marker = "berth-fd-leak-" + std::to_string(::getpid());
  CommandResult r = d.Cli({"run", "--", "sh", "-c", "sleep 30 # " + marker});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string id = r.out.substr(0, r.out.find('\n'));
  ASSERT_TRUE(WaitFor([&] { return d.State(id) == "Running"; })) << d.State(id);
  std::vector<pid_t> task = PidsWith(marker);
  ASSERT_FALSE(task.empty());
  // The task's supervisor: the berth-shim whose run directory is this daemon's.
  std::vector<pid_t> shims = PidsWith(d.data_dir() + "/runs");
  ASSERT_FALSE(shims.empty());
  for (pid_t p : task) EXPECT_TRUE(Sockets(p).empty()) << "task pid " << p << ": " << Sockets(p)[0];
  for (pid_t p : shims)
    EXPECT_TRUE(Sockets(p).empty()) << "shim pid " << p << ": " << Sockets(p)[0];
  EXPECT_EQ(d.Cli({"cancel", id}).exit_code, 0);
}

}  // namespace
}  // namespace berth::testing
