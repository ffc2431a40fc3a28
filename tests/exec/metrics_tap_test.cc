#include "exec/metrics_tap.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "model/experiment.h"

namespace berth::exec {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(MetricsTap, OnlyWhenTheEnvironmentAsks) {
  EXPECT_EQ(MetricsTap::FromEnv({}), nullptr);
  EXPECT_EQ(MetricsTap::FromEnv({{"BERTH_METRICS_STDOUT_FILE", "/tmp/x"}}), nullptr);
  EXPECT_EQ(
      MetricsTap::FromEnv({{"BERTH_METRICS_STDOUT_FILE", "/tmp/x"}, {"BERTH_METRICS_REGEX", "(["}}),
      nullptr);
}

TEST(MetricsTap, KeepsTheExperimentsMetricsAcrossChunksAndTheLastLine) {
  char tmpl[] = "/tmp/berth-tap-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string file = std::string(tmpl) + "/m.jsonl";
  auto tap = MetricsTap::FromEnv({{"BERTH_METRICS_STDOUT_FILE", file},
                                  {"BERTH_METRICS_REGEX", model::kDefaultMetricsRegex},
                                  {"BERTH_METRICS_NAMES", "accuracy,loss"}});
  ASSERT_NE(tap, nullptr);
  std::string out = "epoch 1 starting\nstep=1 accuracy=0.5 loss=2 other=7\nnoise=3\nacc";
  tap->Feed(out.data(), out.size());
  std::string rest = "uracy=0.75";  // the last line, split and without a newline
  tap->Feed(rest.data(), rest.size());
  std::string got = Slurp(file);
  EXPECT_EQ(got, "{\"accuracy\":0.5,\"loss\":2.0,\"step\":1.0}\n");
  tap->Flush();
  got = Slurp(file);
  EXPECT_EQ(got, "{\"accuracy\":0.5,\"loss\":2.0,\"step\":1.0}\n{\"accuracy\":0.75}\n");
  // What the controller reads back.
  model::MetricParser p({"accuracy", "loss"}, true, "");
  auto r = p.Lines(got);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[2].name, "accuracy");
  EXPECT_EQ(r[2].step, 2);
  std::string rm = std::string("rm -rf ") + tmpl;
  (void)!std::system(rm.c_str());
}

}  // namespace
}  // namespace berth::exec
