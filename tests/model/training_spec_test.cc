#include <gtest/gtest.h>

#include "model/job.h"

namespace berth::model {
namespace {

TEST(TrainingSpec, ParsesAndRoundTripsThroughTheDocumentForm) {
  auto spec = ParseJobSpec(R"(
apiVersion: berth/v1
kind: TrainingJob
metadata: {name: t}
spec:
  command: [python3, train.py]
  workers: 3
  gpusPerWorker: 2
  procsPerWorker: 4
  restartPolicy: ExitCode
  successPolicy: AllWorkers
  retryExitCodes: [75]
  backoffLimit: 5
  activeDeadlineSeconds: 600
  elasticPolicy: {minReplicas: 2, maxReplicas: 6, maxRestarts: 7}
)");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  ASSERT_TRUE(spec->training);
  EXPECT_EQ(spec->training->workers, 3);
  EXPECT_EQ(spec->resources.gpus, 2000);
  EXPECT_EQ(spec->training->procs_per_worker, 4);
  EXPECT_EQ(spec->training->restart_policy, RestartPolicy::kExitCode);
  EXPECT_EQ(spec->training->success_policy, SuccessPolicy::kAllWorkers);
  EXPECT_EQ(spec->training->MinWorkers(), 2);
  EXPECT_EQ(spec->training->MaxWorkers(), 6);
  EXPECT_EQ(spec->time_limit, 600 * kSecond);
  auto again = ParseJobSpec(JobSpecToJson(*spec).dump());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  ASSERT_TRUE(again->training);
  EXPECT_EQ(JobSpecToJson(*again), JobSpecToJson(*spec));
  EXPECT_EQ(again->training->retry_exit_codes, std::vector<int>{75});
  EXPECT_EQ(again->training->elastic.max_restarts, 7);
  EXPECT_EQ(again->training->success_policy, SuccessPolicy::kAllWorkers);
  auto plain = ParseJobSpec("apiVersion: berth/v1\nkind: TrainingJob\nspec:\n  command: [x]\n");
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(plain->training->success_policy, SuccessPolicy::kWorker0);
}

TEST(TrainingSpec, RestartPolicyDecidesWhichExitCodesAreRetried) {
  TrainingSpec t;
  t.restart_policy = RestartPolicy::kExitCode;
  t.retry_exit_codes = {75};
  EXPECT_TRUE(IsRetryable(t, 137));  // killed by SIGKILL
  EXPECT_TRUE(IsRetryable(t, 75));
  EXPECT_FALSE(IsRetryable(t, 1));
  t.restart_policy = RestartPolicy::kOnFailure;
  EXPECT_TRUE(IsRetryable(t, 1));
  t.restart_policy = RestartPolicy::kNever;
  EXPECT_FALSE(IsRetryable(t, 137));
}

TEST(TrainingSpec, BadFieldsNameTheField) {
  auto bad = [](const std::string& extra) {
    auto s =
        ParseJobSpec("apiVersion: berth/v1\nkind: TrainingJob\nspec:\n  command: [x]\n" + extra);
    return s.ok() ? std::string() : s.status().message();
  };
  EXPECT_NE(bad("  workers: 0\n").find("spec.workers: must be >= 1"), std::string::npos);
  EXPECT_NE(bad("  elasticPolicy: {minReplicas: 3, maxReplicas: 1}\n")
                .find("spec.elasticPolicy.maxReplicas"),
            std::string::npos);
  EXPECT_NE(bad("  restartPolicy: Always\n").find("spec.restartPolicy"), std::string::npos);
  EXPECT_NE(bad("  successPolicy: Chief\n")
                .find("spec.successPolicy: must be Worker0 or AllWorkers, got \"Chief\""),
            std::string::npos);
  EXPECT_NE(bad("  elasticPolicy: {minReplicas: 0}\n").find("minReplicas: must be >= 1"),
            std::string::npos);
  // A plain Job does not take training fields.
  auto job = ParseJobSpec("apiVersion: berth/v1\nkind: Job\nspec:\n  command: [x]\n  workers: 2\n");
  EXPECT_FALSE(job.ok());
}

}  // namespace
}  // namespace berth::model
