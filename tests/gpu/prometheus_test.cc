#include "gpu/prometheus.h"

#include <gtest/gtest.h>

#include "../require_tools.h"

#include <fstream>
#include <regex>
#include <sstream>

#include "gpu/gpu_test_util.h"

namespace berth::gpu {
namespace {

using testing::MakeSample;

GpuStatus Status(GpuSample s, std::vector<Assignment> holders = {}) {
  GpuStatus g;
  g.sample = std::move(s);
  g.holders = std::move(holders);
  return g;
}

int Count(const std::string& hay, const std::string& needle) {
  int n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

TEST(PrometheusTest, EscapesLabelValues) {
  EXPECT_EQ(EscapeLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  GpuSample s = MakeSample("host \"x\"", 0, 5);
  s.model = "GPU \\ 80GB\n";
  std::string m = RenderPrometheus({Status(s)}, {});
  EXPECT_NE(m.find("modelName=\"GPU \\\\ 80GB\\n\",Hostname=\"host \\\"x\\\"\""), std::string::npos)
      << m;
}

TEST(PrometheusTest, EveryFamilyHasHelpAndTypeOnce) {
  std::string m =
      RenderPrometheus({Status(MakeSample("n", 0, 5)), Status(MakeSample("n", 1, 7))}, {});
  for (const char* f : {"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE",
                        "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_SM_CLOCK",
                        "berth_gpu_up", "berth_gpu_idle_allocated_seconds_total"}) {
    EXPECT_EQ(Count(m, std::string("# HELP ") + f + " "), 1) << f;
    EXPECT_EQ(Count(m, std::string("# TYPE ") + f + " "), 1) << f;
  }
  EXPECT_NE(m.find("# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n"), std::string::npos);
  EXPECT_NE(m.find("DCGM_FI_DEV_POWER_USAGE{gpu=\"1\",UUID=\"GPU-test-1\",modelName=\"Test "
                   "GPU\",Hostname=\"n\"} 300\n"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("DCGM_FI_DEV_FB_FREE{gpu=\"0\",UUID=\"GPU-test-0\",modelName=\"Test "
                   "GPU\",Hostname=\"n\"} 80920\n"),
            std::string::npos);
  // Every non-comment line is `name{labels} value`.
  std::istringstream in(m);
  std::regex line(
      R"([a-zA-Z_:][a-zA-Z0-9_:]*\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\} -?[0-9.e+]+)");
  for (std::string l; std::getline(in, l);) {
    if (l.rfind("# ", 0) == 0) continue;
    EXPECT_TRUE(std::regex_match(l, line)) << l;
  }
}

TEST(PrometheusTest, SharedGpuJoinsHolders) {
  std::string m = RenderPrometheus({Status(MakeSample("n", 0, 5), {{"n", 0, 3, "ann", "a", 250},
                                                                   {"n", 0, 4, "ben", "a", 250},
                                                                   {"n", 0, 5, "ann", "b", 500}})},
                                   {});
  EXPECT_NE(m.find("Hostname=\"n\",job=\"3,4,5\",user=\"ann,ben\",queue=\"a,b\"} 5\n"),
            std::string::npos)
      << m;
}

TEST(PrometheusTest, JobLabelNameIsConfigurable) {
  JobUsage u;
  u.job = 9;
  u.user = "al";
  u.queue = "q";
  u.idle_milli_gpu_ms = 1500 * 1000;  // 1.5 GPU seconds
  MetricsOptions o;
  o.job_label = "berth_job";
  std::string m =
      RenderPrometheus({Status(MakeSample("n", 0, 5), {{"n", 0, 9, "al", "q", 1000}})}, {u}, o);
  EXPECT_NE(
      m.find(
          "berth_gpu_idle_allocated_seconds_total{berth_job=\"9\",user=\"al\",queue=\"q\"} 1.5\n"),
      std::string::npos)
      << m;
  EXPECT_NE(m.find(",berth_job=\"9\",user=\"al\""), std::string::npos);
}

TEST(PrometheusTest, MissingReadingsAreLeftOut) {
  GpuSample s = MakeSample("n", 0, 5);
  s.temperature_c.reset();
  s.power_mw.reset();
  std::string m = RenderPrometheus({Status(s)}, {});
  EXPECT_EQ(m.find("DCGM_FI_DEV_GPU_TEMP{"), std::string::npos);
  EXPECT_EQ(m.find("DCGM_FI_DEV_POWER_USAGE{"), std::string::npos);
  EXPECT_NE(m.find("# TYPE DCGM_FI_DEV_GPU_TEMP gauge"), std::string::npos);
  EXPECT_NE(m.find("DCGM_FI_DEV_GPU_UTIL{"), std::string::npos);
}

// The exposition parses with Prometheus's own parser, when promtool is
// installed (Debian package prometheus). Lint complaints about the DCGM
// exporter's camelCase label names are expected and ignored.
TEST(PrometheusTest, PromtoolParsesTheOutput) {
  if (access("/usr/bin/promtool", X_OK) != 0)
    BERTH_SKIP_UNLESS_REQUIRED("promtool is not installed (scripts/install-deps.sh --test)");
  testing::TempDir dir;
  GpuSample lost = MakeSample("n", 2, 0);
  lost.lost = true;
  JobUsage u;
  u.job = 3;
  u.user = "an \"x\"";
  u.queue = "q";
  std::string m =
      RenderPrometheus({Status(MakeSample("n", 0, 5), {{"n", 0, 3, "an \"x\"", "q", 1000}}),
                        Status(MakeSample("n", 1, 7)), Status(lost)},
                       {u});
  std::string file = dir.path() + "/metrics.txt";
  std::ofstream(file) << m;
  std::string cmd = "/usr/bin/promtool check metrics < " + file + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof(buf), p) != nullptr) out += buf;
  int rc = WEXITSTATUS(pclose(p));
  EXPECT_TRUE(rc == 0 || rc == 3) << rc << ": " << out;  // 3: lint findings only
  EXPECT_EQ(out.find("error"), std::string::npos) << out;
  std::istringstream lines(out);
  for (std::string l; std::getline(lines, l);) {
    EXPECT_NE(l.find("label names should be written in 'snake_case'"), std::string::npos) << l;
  }
}

}  // namespace
}  // namespace berth::gpu
