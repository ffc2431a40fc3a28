#include <gtest/gtest.h>

#include "model/job.h"
#include "model/node.h"
#include "model/spec_reader.h"

namespace berth::model {
namespace {

std::string Doc(const std::string& spec_body, const std::string& extra = "") {
  return "apiVersion: berth/v1\nkind: Job\n" + extra + "spec:\n" + spec_body;
}

TEST(JobSpec, ParsesEveryField) {
  auto spec =
      ParseJobSpec(Doc("  command: [python3, train.py]\n  args: [--lr, '0.1']\n  env: {A: '1'}\n"
                       "  workingDir: /tmp\n  queue: research\n  priority: 5\n  timeLimit: 1h30m\n"
                       "  terminationGracePeriodSeconds: 10\n"
                       "  resources: {gpus: 2, cpu: 500m, memory: 16Gi}\n",
                       "metadata: {name: train, user: alice, labels: {team: vision}}\n"));
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->name, "train");
  EXPECT_EQ(spec->user, "alice");
  EXPECT_EQ(spec->labels.at("team"), "vision");
  EXPECT_EQ(spec->command, (std::vector<std::string>{"python3", "train.py", "--lr", "0.1"}));
  EXPECT_EQ(spec->env.at("A"), "1");
  EXPECT_EQ(spec->working_dir, "/tmp");
  EXPECT_EQ(spec->queue, "research");
  EXPECT_EQ(spec->priority, 5);
  EXPECT_EQ(spec->time_limit, 90 * kMinute);
  EXPECT_EQ(spec->termination_grace, 10 * kSecond);
  EXPECT_EQ(spec->resources.gpus, 2000);
  EXPECT_EQ(spec->resources.cpu, 500);
  EXPECT_EQ(spec->resources.memory, 16 * 1024);
}

TEST(JobSpec, JsonIsAcceptedAndRoundTrips) {
  auto spec = ParseJobSpec(
      R"({"apiVersion":"berth/v1","kind":"Job","spec":{"command":["true"],"resources":{"gpus":"0.5","gpuMemory":"8Gi"},"env":[{"name":"X","value":"y"}]}})");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->resources.gpus, 500);
  EXPECT_EQ(spec->resources.gpu_memory, 8192);
  EXPECT_EQ(spec->env.at("X"), "y");
  auto again = ParseJobSpec(JobSpecToJson(*spec).dump());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->resources.gpus, 500);
  EXPECT_EQ(again->resources.gpu_memory, 8192);
  EXPECT_EQ(again->command, spec->command);
  EXPECT_EQ(again->env, spec->env);
}

struct BadCase {
  std::string doc;
  std::string error;  // a substring the message must contain
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.error; }

class BadSpec : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadSpec, IsRejectedNamingTheField) {
  auto spec = ParseJobSpec(GetParam().doc);
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(spec.status().message().find(GetParam().error), std::string::npos)
      << spec.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadSpec,
    ::testing::Values(
        BadCase{"", "document is empty"},
        BadCase{"apiVersion: berth/v1\nkind: Job\nspec: [unclosed\n",
                "malformed YAML/JSON at line"},
        BadCase{"- a\n- b\n", "must be a map"},
        BadCase{"kind: Job\nspec: {command: [x]}\n", "apiVersion: is required"},
        BadCase{"apiVersion: v2\nkind: Job\nspec: {command: [x]}\n",
                "apiVersion: must be \"berth/v1\""},
        BadCase{"apiVersion: berth/v1\nkind: Pod\nspec: {command: [x]}\n", "kind: must be \"Job\""},
        BadCase{Doc("  command: [x]\n  resources: {gpus: -1}\n"),
                "spec.resources.gpus: must be >= 0, got -1"},
        BadCase{Doc("  command: [x]\n  resources: {gpus: 1.5}\n"),
                "spec.resources.gpus: a request above 1 GPU must be whole"},
        BadCase{Doc("  command: [x]\n  resources: {gpus: lots}\n"),
                "spec.resources.gpus: must be a number"},
        BadCase{Doc("  command: [x]\n  resources: {gpu: 1}\n"),
                "spec.resources.gpu: unknown field (did you mean \"gpus\"?)"},
        BadCase{Doc("  command: [x]\n  resources: {memory: 4Qi}\n"),
                "spec.resources.memory: unknown unit"},
        BadCase{Doc("  command: [x]\n  comand: [y]\n"),
                "spec.comand: unknown field (did you mean \"command\"?)"},
        BadCase{Doc("  env: {A: b}\n"), "spec.command: is required"},
        BadCase{Doc("  command: {a: b}\n"), "spec.command: must be a list of strings"},
        BadCase{Doc("  command: [x]\n  priority: high\n"), "spec.priority: must be an integer"},
        BadCase{Doc("  command: [x]\n  priority: 1000001\n"),
                "spec.priority: must be between -1000000 and 1000000, got 1000001"},
        BadCase{Doc("  command: [x]\n  priorityClassName: urgent\n"),
                "spec.priorityClassName: unknown priority class \"urgent\" (one of scavenger, "
                "batch, interactive)"},
        BadCase{Doc("  command: [x]\n  priorityClassName: Batch\n"),
                "spec.priorityClassName: unknown priority class"},
        BadCase{Doc("  command: [x]\n  priorityClassName: [batch]\n"),
                "spec.priorityClassName: must be a string"},
        BadCase{Doc("  command: [x]\n  timeLimit: 5 parsecs\n"), "spec.timeLimit"},
        BadCase{Doc("  command: [x]\n  workingDir: relative\n"),
                "spec.workingDir: must be an absolute path"},
        BadCase{Doc("  command: [x]\n  env: {A: [1]}\n"), "spec.env.A: must be a string"},
        BadCase{Doc("  command: [x]\n", "metadata: {nam: x}\n"), "metadata.nam: unknown field"},
        BadCase{Doc("  command: [x]\n", "extra: 1\n"), "extra: unknown field"}));

TEST(JobSpec, PriorityClassDefaultsToBatchAndRoundTrips) {
  auto plain = ParseJobSpec(Doc("  command: [x]\n"));
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(plain->priority_class, PriorityClass::kBatch);
  for (const char* name : {"scavenger", "batch", "interactive"}) {
    auto spec = ParseJobSpec(
        Doc("  command: [x]\n  priority: -7\n  priorityClassName: " + std::string(name) + "\n"));
    ASSERT_TRUE(spec.ok()) << spec.status().ToString();
    EXPECT_STREQ(PriorityClassName(spec->priority_class), name);
    EXPECT_EQ(spec->priority, -7);
    // The stored form (the jobs table's spec column) keeps it.
    auto again = ParseJobSpec(JobSpecToJson(*spec).dump());
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_EQ(again->priority_class, spec->priority_class);
    Job job;
    job.spec = *spec;
    EXPECT_EQ(JobToJson(job)["priorityClassName"], name);
  }
  JobSpec bad = *plain;
  bad.priority = -2000000;
  EXPECT_EQ(ValidateJobSpec(bad).message(),
            "spec.priority: must be between -1000000 and 1000000, got -2000000");
}

TEST(JobSpec, PreemptionGraceIsCappedForScavengers) {
  EXPECT_EQ(PreemptionGrace(PriorityClass::kBatch, 10 * kMinute), 10 * kMinute);
  EXPECT_EQ(PreemptionGrace(PriorityClass::kInteractive, 10 * kMinute), 10 * kMinute);
  EXPECT_EQ(PreemptionGrace(PriorityClass::kScavenger, 10 * kMinute), 30 * kSecond);
  EXPECT_EQ(PreemptionGrace(PriorityClass::kScavenger, 5 * kSecond), 5 * kSecond);
}

TEST(JobState, TransitionsFollowTheStateMachine) {
  using S = JobState;
  EXPECT_TRUE(IsValidTransition(S::kPending, S::kScheduled));
  EXPECT_TRUE(IsValidTransition(S::kScheduled, S::kRunning));
  EXPECT_TRUE(IsValidTransition(S::kRunning, S::kSucceeded));
  EXPECT_TRUE(IsValidTransition(S::kRunning, S::kPreempted));
  EXPECT_TRUE(IsValidTransition(S::kPreempted, S::kPending));
  EXPECT_TRUE(IsValidTransition(S::kPending, S::kCancelled));
  EXPECT_FALSE(IsValidTransition(S::kPending, S::kRunning));
  EXPECT_FALSE(IsValidTransition(S::kSucceeded, S::kPending));
  EXPECT_FALSE(IsValidTransition(S::kCancelled, S::kCancelled));
  EXPECT_FALSE(IsValidTransition(S::kRunning, S::kPending));
  auto st = ParseJobState("running");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(*st, S::kRunning);
  EXPECT_FALSE(ParseJobState("Walking").ok());
}

TEST(Quantities, ParseUnits) {
  EXPECT_EQ(*ParseMilli("2"), 2000);
  EXPECT_EQ(*ParseMilli("0.25"), 250);
  EXPECT_EQ(*ParseMilli("750m"), 750);
  EXPECT_FALSE(ParseMilli("0.0005").ok());
  EXPECT_EQ(*ParseMemory("512"), 512);
  EXPECT_EQ(*ParseMemory("1Gi"), 1024);
  EXPECT_EQ(*ParseMemory("1.5Ti"), 1536 * 1024);
  EXPECT_EQ(*ParseMemory("2048Ki"), 2);
  EXPECT_EQ(*ParseDuration("90"), 90 * kSecond);
  EXPECT_EQ(*ParseDuration("1h30m"), 90 * kMinute);
  EXPECT_EQ(*ParseDuration("250ms"), 250);
  EXPECT_FALSE(ParseDuration("1y").ok());
  EXPECT_FALSE(ParseDuration("-5").ok());
}

}  // namespace
}  // namespace berth::model

namespace berth::model {
namespace {

TEST(JobSpec, GpuModelIsParsedCheckedAndRoundTrips) {
  auto spec = ParseJobSpec(
      R"({"apiVersion":"berth/v1","kind":"Job","spec":{"command":["true"],"resources":{"gpus":"1","gpuModel":["V100M32","A100"]}}})");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->resources.gpu_models, (std::vector<std::string>{"V100M32", "A100"}));
  auto again = ParseJobSpec(JobSpecToJson(*spec).dump());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->resources.gpu_models, spec->resources.gpu_models);
  auto no_gpu = ParseJobSpec(
      R"({"apiVersion":"berth/v1","kind":"Job","spec":{"command":["true"],"resources":{"gpuModel":["A100"]}}})");
  ASSERT_FALSE(no_gpu.ok());
  EXPECT_NE(no_gpu.status().message().find("spec.resources.gpuModel: needs"), std::string::npos);
  auto bad = ParseJobSpec(
      R"({"apiVersion":"berth/v1","kind":"Job","spec":{"command":["true"],"resources":{"gpus":"1","gpuModel":["A 100"]}}})");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("spec.resources.gpuModel"), std::string::npos);
}

TEST(JobSpec, CanonicalGpuModelsFromNvmlNames) {
  EXPECT_EQ(CanonicalGpuModel("Tesla V100-SXM2-32GB"), "V100M32");
  EXPECT_EQ(CanonicalGpuModel("Tesla V100-PCIE-16GB"), "V100M16");
  EXPECT_EQ(CanonicalGpuModel("NVIDIA A100-SXM4-80GB"), "A100");
  EXPECT_EQ(CanonicalGpuModel("NVIDIA H100 80GB HBM3"), "H100");
  EXPECT_EQ(CanonicalGpuModel("Tesla T4"), "T4");
  EXPECT_EQ(CanonicalGpuModel("NVIDIA GeForce RTX 4090"), "RTX4090");
  EXPECT_EQ(CanonicalGpuModel("A10"), "A10");
  EXPECT_EQ(CanonicalGpuModel("Simulated GPU"), "Simulated");
  EXPECT_EQ(CanonicalGpuModel("NVIDIA Tesla"), "");
}

}  // namespace
}  // namespace berth::model
