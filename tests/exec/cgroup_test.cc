// cgroup probing and per-task setup against fake cgroup trees in a temp dir
// (plain directories and files stand in for cgroupfs).
#include "exec/cgroup.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "exec_test_util.h"

namespace berth::exec {
namespace {

namespace fs = std::filesystem;
using testing::ReadFileOrEmpty;
using testing::TempDir;

void Write(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
}

TEST(CgroupTest, PrefersV2WithCpuAndMemory) {
  TempDir tmp;
  std::string root = tmp.path();
  Write(root + "/cgroup.controllers", "cpuset cpu io memory pids\n");
  Write(root + "/cgroup.subtree_control", "");
  std::string problem;
  CgroupPlan plan = ProbeCgroups(root, "berth", &problem);
  EXPECT_EQ(plan.version, 2) << problem;
  EXPECT_EQ(plan.v2_parent, root + "/berth");
  EXPECT_EQ(ReadFileOrEmpty(root + "/cgroup.subtree_control"), "+cpu +memory");
  EXPECT_EQ(ReadFileOrEmpty(root + "/berth/cgroup.subtree_control"), "+cpu +memory");

  std::vector<std::string> warnings;
  TaskCgroups cg = CreateTaskCgroups(plan, "job-1.t0.a0-42", 1500, 64, &warnings);
  EXPECT_TRUE(warnings.empty());
  ASSERT_EQ(cg.dirs.size(), 1u);
  std::string dir = root + "/berth/job-1.t0.a0-42";
  EXPECT_EQ(cg.dirs[0], dir);
  EXPECT_EQ(cg.procs_files, std::vector<std::string>{dir + "/cgroup.procs"});
  EXPECT_EQ(ReadFileOrEmpty(dir + "/cpu.max"), "150000 100000");
  EXPECT_EQ(ReadFileOrEmpty(dir + "/memory.max"), std::to_string(64LL << 20));
  EXPECT_FALSE(CgroupOomKilled(cg));
  Write(dir + "/memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
  EXPECT_TRUE(CgroupOomKilled(cg));
}

TEST(CgroupTest, HybridFallsBackToV1) {
  // Like the development machines: cgroup2 at unified/ with no cpu/memory.
  TempDir tmp;
  std::string root = tmp.path();
  Write(root + "/unified/cgroup.controllers", "hugetlb\n");
  Write(root + "/cpu/cpu.cfs_quota_us", "-1\n");
  Write(root + "/memory/memory.limit_in_bytes", "9223372036854771712\n");
  std::string problem;
  CgroupPlan plan = ProbeCgroups(root, "berth", &problem);
  EXPECT_EQ(plan.version, 1);
  EXPECT_TRUE(problem.empty()) << problem;
  EXPECT_EQ(plan.cpu_parent, root + "/cpu/berth");
  EXPECT_EQ(plan.memory_parent, root + "/memory/berth");

  std::vector<std::string> warnings;
  TaskCgroups cg = CreateTaskCgroups(plan, "t", 500, 100, &warnings);
  EXPECT_TRUE(warnings.empty());
  ASSERT_EQ(cg.dirs.size(), 2u);
  EXPECT_EQ(ReadFileOrEmpty(root + "/cpu/berth/t/cpu.cfs_period_us"), "100000");
  EXPECT_EQ(ReadFileOrEmpty(root + "/cpu/berth/t/cpu.cfs_quota_us"), "50000");
  EXPECT_EQ(ReadFileOrEmpty(root + "/memory/berth/t/memory.limit_in_bytes"),
            std::to_string(100LL << 20));
  EXPECT_EQ(cg.memory_dir, root + "/memory/berth/t");
  Write(root + "/memory/berth/t/memory.oom_control",
        "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
  EXPECT_TRUE(CgroupOomKilled(cg));

  // Only the controllers a limit needs are made.
  TaskCgroups mem_only = CreateTaskCgroups(plan, "m", 0, 10, &warnings);
  EXPECT_EQ(mem_only.dirs, std::vector<std::string>{root + "/memory/berth/m"});
  TaskCgroups none = CreateTaskCgroups(plan, "n", 0, 0, &warnings);
  EXPECT_TRUE(none.dirs.empty());
}

TEST(CgroupTest, PartialV1IsReported) {
  TempDir tmp;
  std::string root = tmp.path();
  Write(root + "/cpu/cpu.cfs_quota_us", "-1\n");
  std::string problem;
  CgroupPlan plan = ProbeCgroups(root, "berth", &problem);
  EXPECT_EQ(plan.version, 1);
  EXPECT_TRUE(plan.memory_parent.empty());
  EXPECT_NE(problem.find("memory"), std::string::npos) << problem;
  std::vector<std::string> warnings;
  CreateTaskCgroups(plan, "t", 0, 64, &warnings);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("without the memory limit"), std::string::npos);
}

TEST(CgroupTest, NothingUsable) {
  TempDir tmp;
  std::string problem;
  CgroupPlan plan = ProbeCgroups(tmp.path(), "berth", &problem);
  EXPECT_EQ(plan.version, 0);
  EXPECT_FALSE(problem.empty());
}

TEST(CgroupTest, RemoveCgroupRemovesAnEmptyDir) {
  TempDir tmp;
  std::string dir = tmp.path() + "/cg";
  fs::create_directories(dir);
  EXPECT_TRUE(RemoveCgroup(dir));
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_TRUE(RemoveCgroup(dir));  // already gone
}

}  // namespace
}  // namespace berth::exec
