// The bounds of model/limits.h on hostile documents: each case here was a
// finding of the audit in issue 11 (an alias bomb that ran berthd out of
// memory, a nested value that overflowed the stack, durations that overflowed,
// bad UTF-8 that became a 500) or a crash found by the fuzz targets.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>

#include "model/cron.h"
#include "model/job.h"
#include "model/limits.h"
#include "model/pipeline.h"
#include "model/request.h"
#include "model/spec_reader.h"

namespace berth::model {
namespace {

using ::testing::HasSubstr;

std::string JobDoc(const std::string& spec_body, const std::string& meta = "") {
  return "apiVersion: berth/v1\nkind: Job\n" + meta + "spec:\n" + spec_body;
}

// A "billion laughs" in withItems: 9 levels of 9 aliases to the level below,
// about 600 bytes that expand to 9^9 (387 million) items.
std::string AliasBomb() {
  std::string items = "[&l0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]";
  for (int level = 1; level <= 8; ++level) {
    std::string below = "*l" + std::to_string(level - 1);
    items += ", &l" + std::to_string(level) + " [";
    for (int i = 0; i < 9; ++i) items += (i ? "," : "") + below;
    items += "]";
  }
  items += "]";
  return "apiVersion: berth/v1\nkind: Pipeline\nmetadata: {name: bomb}\nspec:\n  steps:\n"
         "  - name: a\n    command: [echo, '{{item}}']\n    withItems: " +
         items + "\n";
}

template <typename F>
double Seconds(F f) {
  auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST(Limits, AliasBombIsRefusedBeforeItExpands) {
  std::string bomb = AliasBomb();
  EXPECT_LT(bomb.size(), 1000u);
  Result<PipelineSpec> spec = InvalidArgument("not run");
  double took = Seconds([&] { spec = ParsePipelineSpec(bomb); });
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(spec.status().message(), HasSubstr("spec.steps[0].withItems"));
  EXPECT_THAT(spec.status().message(), HasSubstr("expands to more than 200000 nodes"));
  EXPECT_LT(took, 1.0);
  // The same document as a Job's labels, and berthd's configuration.
  EXPECT_FALSE(ParseJobSpec(bomb).ok());
  EXPECT_FALSE(LoadYamlBounded(bomb).ok());
}

TEST(Limits, AliasesAreCountedAndSmallReuseStillWorks) {
  std::string many = JobDoc("  command: [true]\n  env: {A: &v x}\n  args: [");
  for (int i = 0; i < 1001; ++i) many += (i ? ",*v" : "*v");
  many += "]\n";
  auto refused = ParseJobSpec(many);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("more than 1000 aliases"));
  auto ok = ParseJobSpec(JobDoc("  command: [echo, &w hello, *w]\n"));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->command, (std::vector<std::string>{"echo", "hello", "hello"}));
}

TEST(Limits, DeepNestingIsRefusedWithThePath) {
  std::string deep =
      "apiVersion: berth/v1\nkind: Pipeline\nspec:\n  steps:\n  - name: a\n"
      "    command: [echo]\n    withItems: " +
      std::string(100000, '[') + std::string(100000, ']') + "\n";
  auto spec = ParsePipelineSpec(deep);
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(spec.status().message(), HasSubstr("nests deeper than 64 levels"));
  EXPECT_THAT(spec.status().message(), HasSubstr("spec.steps[0].withItems"));
  // 60 levels are fine.
  std::string fine =
      "apiVersion: berth/v1\nkind: Pipeline\nspec:\n  steps:\n  - name: a\n"
      "    command: [echo]\n    withItems: [" +
      std::string(55, '[') + "x" + std::string(55, ']') + "]\n";
  auto ok = ParsePipelineSpec(fine);
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();
}

TEST(Limits, DeeplyNestedJsonParameterIsRefusedNotRecursedInto) {
  // 200 KB of nested lists in a parameter: the API dumped it recursively.
  std::string nested = std::string(100000, '[') + std::string(100000, ']');
  std::string body = R"({"spec": "kind: Pipeline", "parameters": {"p": )" + nested + "}}";
  auto req = ParsePipelineRunRequest(body);
  ASSERT_FALSE(req.ok());
  EXPECT_EQ(req.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(req.status().message(), HasSubstr("request body: nests deeper than 64 levels"));
  auto ok =
      ParsePipelineRunRequest(R"({"spec": "x", "parameters": {"n": 3, "l": [1, [2]], "s": "v"}})");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->parameters.at("n"), "3");
  EXPECT_EQ(ok->parameters.at("l"), "[1,[2]]");
  EXPECT_EQ(ok->parameters.at("s"), "v");
  EXPECT_FALSE(ParsePipelineRunRequest("{\"spec\": \"\xff\"}").ok());
  EXPECT_FALSE(ParsePipelineRunRequest("[]").ok());
}

TEST(Limits, ConditionNestingIsBounded) {
  auto deep = EvaluateCondition(std::string(200000, '!') + "x");
  ASSERT_FALSE(deep.ok());
  EXPECT_THAT(deep.status().message(), HasSubstr("deeper than 64 levels"));
  EXPECT_FALSE(EvaluateCondition(std::string(200000, '(') + "1").ok());
  EXPECT_TRUE(*EvaluateCondition("!(1 == 2) && ((3 > 2))"));
}

TEST(Limits, TimeLimitPastTenYearsIsRefusedNotOverflowed) {
  // 9999999h is 3.6e13 ms: in nanoseconds it overflowed, and the job was
  // killed for its time limit after 5 ms.
  auto spec = ParseJobSpec(JobDoc("  command: [sleep, '1']\n  timeLimit: 9999999h\n"));
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().message(),
            "spec.timeLimit: is too long: \"9999999h\", the most is 3650d (10 years)");
  auto ok = ParseJobSpec(JobDoc("  command: [sleep, '1']\n  timeLimit: 3650d\n"));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->time_limit, kMaxDuration);
  EXPECT_FALSE(ParseJobSpec(JobDoc("  command: [sleep, '1']\n  timeLimit: 3650d1ms\n")).ok());
}

TEST(Limits, HugeSecondsSayTooLongNotNegative) {
  // 1e16 seconds overflowed to a negative number: "must be >= 0".
  auto spec = ParseJobSpec(JobDoc("  command: [true]\n  timeLimit: 1e16\n"));
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().message(),
            "spec.timeLimit: is too long: \"1e16\", the most is 3650d (10 years)");
  auto grace = ParseJobSpec(JobDoc("  command: [true]\n  terminationGracePeriodSeconds: 1e16\n"));
  ASSERT_FALSE(grace.ok());
  EXPECT_THAT(grace.status().message(),
              HasSubstr("spec.terminationGracePeriodSeconds: is too long: 1e16 seconds"));
  auto training = ParseJobSpec(
      "apiVersion: berth/v1\nkind: TrainingJob\nspec:\n  command: [true]\n  workers: 2\n"
      "  activeDeadlineSeconds: 9000000000000\n");
  ASSERT_FALSE(training.ok());
  EXPECT_THAT(training.status().message(), HasSubstr("spec.activeDeadlineSeconds: is too long"));
  auto ttl = ParseJobSpec(
      "apiVersion: berth/v1\nkind: TrainingJob\nspec:\n  command: [true]\n  "
      "ttlSecondsAfterFinished: -1\n");
  ASSERT_TRUE(ttl.ok()) << ttl.status().ToString();
  EXPECT_EQ(ttl->training->ttl_after_finished, -1);
  auto workers = ParseJobSpec(
      "apiVersion: berth/v1\nkind: TrainingJob\nspec:\n  command: [true]\n  workers: 5000000000\n");
  ASSERT_FALSE(workers.ok());
  EXPECT_THAT(workers.status().message(), HasSubstr("spec.workers: must be at most 4096"));
}

TEST(Limits, EveryDurationFieldHasTheSameBound) {
  for (const char* field :
       {"timeout: 99999999h", "retryStrategy: {limit: 3, backoff: {duration: 1e12}}",
        "memoize: {key: k, maxAge: 4000d}"}) {
    std::string doc =
        "apiVersion: berth/v1\nkind: Pipeline\nspec:\n  steps:\n  - name: a\n"
        "    command: [echo]\n    " +
        std::string(field) + "\n";
    auto spec = ParsePipelineSpec(doc);
    ASSERT_FALSE(spec.ok()) << field;
    EXPECT_THAT(spec.status().message(), HasSubstr("is too long")) << field;
  }
  // A backoff that grows without a cap stops at the longest duration.
  auto spec = ParsePipelineSpec(
      "apiVersion: berth/v1\nkind: Pipeline\nspec:\n  steps:\n  - name: a\n    command: [echo]\n"
      "    retryStrategy: {limit: 100, backoff: {duration: 1s, factor: 2}}\n");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->steps[0].retry.max_backoff, kMaxDuration);
  for (const char* factor : {"nan", "inf", "1e300", "0.5"}) {
    auto bad = ParsePipelineSpec(
        "apiVersion: berth/v1\nkind: Pipeline\nspec:\n  steps:\n  - name: a\n    command: [echo]\n"
        "    retryStrategy: {limit: 1, backoff: {duration: 1s, factor: '" +
        std::string(factor) + "'}}\n");
    ASSERT_FALSE(bad.ok()) << factor;
    EXPECT_THAT(bad.status().message(),
                HasSubstr("backoff.factor: must be a number from 1 to 1000"));
  }
  EXPECT_FALSE(ParseDuration("4000d").ok());
  EXPECT_EQ(*ParseDuration("1h30m"), 90 * kMinute);
}

TEST(Limits, BadUtf8IsRefusedNamingTheField) {
  auto name = ParseJobSpec(JobDoc("  command: [true]\n", "metadata: {name: \"ab\xff\"}\n"));
  ASSERT_FALSE(name.ok());
  EXPECT_EQ(name.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(name.status().message(), "metadata.name: is not valid UTF-8");
  auto arg = ParseJobSpec(JobDoc("  command: [echo, \"\xc3\x28\"]\n"));
  ASSERT_FALSE(arg.ok());
  EXPECT_EQ(arg.status().message(), "spec.command[1]: is not valid UTF-8");
  auto key = ParseJobSpec(JobDoc("  command: [true]\n  env: {\"\xed\xa0\x80\": x}\n"));
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.status().message(), "spec.env: a key is not valid UTF-8");
  auto json =
      ParseJobSpec(R"({"apiVersion":"berth/v1","kind":"Job","spec":{"command":["true"],"queue":")" +
                   std::string("\xf5\x80\x80\x80") + "\"}}");
  ASSERT_FALSE(json.ok());
  EXPECT_EQ(json.status().message(), "spec.queue: is not valid UTF-8");
  // Good UTF-8 is kept as it is.
  auto ok = ParseJobSpec(JobDoc("  command: [echo, \"h\xc3\xa9llo \xe2\x9c\x93\"]\n",
                                "metadata: {name: \"caf\xc3\xa9\"}\n"));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->name, "caf\xc3\xa9");
}

TEST(Limits, NamesArgsAndEnvAreBounded) {
  auto control = ParseJobSpec(JobDoc("  command: [true]\n", "metadata: {name: \"a\\e[2Jb\"}\n"));
  ASSERT_FALSE(control.ok());
  EXPECT_EQ(control.status().message(),
            "metadata.name: must not contain control characters, got \"a\\e[2Jb\"");
  auto long_name = ParseJobSpec(
      JobDoc("  command: [true]\n", "metadata: {name: " + std::string(300, 'n') + "}\n"));
  ASSERT_FALSE(long_name.ok());
  EXPECT_EQ(long_name.status().message(),
            "metadata.name: is 300 bytes long, the most is 253 bytes");

  std::string args = "  command: [true]\n  args: [";
  for (int i = 0; i < 5000; ++i) args += (i ? ",a" : "a");
  auto many = ParseJobSpec(JobDoc(args + "]\n"));
  ASSERT_FALSE(many.ok());
  EXPECT_EQ(many.status().message(), "spec.command: has 5001 arguments, the most is 4096");

  std::string env = "  command: [true]\n  env: {";
  for (int i = 0; i < 5000; ++i) env += (i ? ", V" : "V") + std::to_string(i) + ": x";
  auto vars = ParseJobSpec(JobDoc(env + "}\n"));
  ASSERT_FALSE(vars.ok());
  EXPECT_EQ(vars.status().message(), "spec.env: has 5000 variables, the most is 4096");

  auto big = ParseJobSpec(JobDoc("  command: [echo, " + std::string(200 << 10, 'x') + "]\n"));
  ASSERT_FALSE(big.ok());
  EXPECT_THAT(big.status().message(),
              HasSubstr("spec.command[1]: is 204800 bytes long, the most is 128 KiB"));

  auto doc = ParseJobSpec(JobDoc("  command: [true]\n# " + std::string(2 << 20, 'c') + "\n"));
  ASSERT_FALSE(doc.ok());
  EXPECT_THAT(doc.status().message(), HasSubstr("the most is 1 MiB"));
  // A name taken from a program's file name has its control characters written out.
  auto escaped = ParseJobSpec(JobDoc("  command: [\"/tmp/a\\eb\\tc\"]\n"));
  ASSERT_TRUE(escaped.ok()) << escaped.status().ToString();
  EXPECT_EQ(escaped->name, "a\\eb\\tc");
  EXPECT_TRUE(ValidateJobSpec(*escaped).ok());  // found by the job_spec fuzz target: a tab was kept
  // A name taken from a long command is cut to the bound.
  auto derived = ParseJobSpec(JobDoc("  command: [/bin/" + std::string(1000, 'z') + "]\n"));
  ASSERT_TRUE(derived.ok()) << derived.status().ToString();
  EXPECT_EQ(derived->name.size(), kMaxNameBytes);
}

TEST(Limits, FanOutHasACap) {
  std::string items = "[";
  for (int i = 0; i < 20; ++i) items += (i ? ",x" : "x");
  auto spec = ParsePipelineSpec(
      "apiVersion: berth/v1\nkind: Pipeline\nspec:\n  steps:\n  - name: a\n"
      "    command: [echo, '{{item}}']\n    withItems: " +
      items + "]\n");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_TRUE(CheckPipelineFanOut(*spec, 20).ok());
  Status capped = CheckPipelineFanOut(*spec, 10);
  EXPECT_EQ(capped.message(),
            "spec.steps(a).withItems: fans out to 20 children, the most is 10 (berthd's "
            "pipelines.maxFanOut)");
}

TEST(Limits, CronValuesOutOfIntRangeAreErrorsNotExceptions) {
  // std::stoi threw out_of_range here, which nothing caught.
  auto c = CronSchedule::Parse("99999999999 * * * *");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), "minute: 99999999999 is out of range 0-59");
  EXPECT_FALSE(CronSchedule::Parse("*/99999999999 * * * *").ok());
  // Day names past the list's end were read out of bounds.
  EXPECT_FALSE(CronSchedule::Parse("0 0 * * sun-xyz").ok());
  EXPECT_TRUE(CronSchedule::Parse("0 0 * * MON-FRI").ok());
  EXPECT_TRUE(CronSchedule::Parse("0 0 * * 7").ok());
  EXPECT_FALSE(CronSchedule::Parse(std::string(300, '*')).ok());
}

}  // namespace
}  // namespace berth::model
