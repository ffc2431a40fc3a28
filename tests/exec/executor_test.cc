#include "exec/executor.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "exec/run_files.h"

namespace berth::exec {
namespace {

TEST(TaskKeyTest, RoundTrips) {
  TaskKey k{12, 0, 1};
  EXPECT_EQ(k.ToString(), "job-12.t0.a1");
  auto p = TaskKey::Parse("job-12.t0.a1");
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, k);
  EXPECT_EQ(TaskKey::Parse("job-123456789.t31.a4")->job, 123456789);
}

TEST(TaskKeyTest, RejectsMalformed) {
  for (const char* s : {"", "job-", "job-1", "job-1.t0", "job-1.t0.a", "job-x.t0.a0",
                        "job-1.t-1.a0", "job-1.t0.a0x", "task-1.t0.a0"}) {
    EXPECT_FALSE(TaskKey::Parse(s)) << s;
  }
}

TEST(RunFilesTest, StatusRoundTrips) {
  RunStatus s;
  s.started = true;
  s.exit_code = 137;
  s.signal = 9;
  s.start_time = 1000;
  s.end_time = 2000;
  s.error = "time limit exceeded";
  s.pid = 42;
  auto back = ParseRunStatus(RunStatusToJson(s));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->exit_code, 137);
  EXPECT_EQ(back->signal, 9);
  EXPECT_EQ(back->error, "time limit exceeded");
  EXPECT_EQ(back->end_time, 2000);
  auto bad = ParseRunStatus("{\"signal\": 1}");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("status.json"), std::string::npos);
}

TEST(RunFilesTest, ProcStatOfSelf) {
  auto st = ReadProcStat(::getpid());
  ASSERT_TRUE(st);
  EXPECT_EQ(st->state, 'R');
  EXPECT_GT(st->start_ticks, 0u);
  EXPECT_FALSE(ReadProcStat(0));
}

}  // namespace
}  // namespace berth::exec
