// What a new user meets first: the README's examples are the shipped files
// and they run, the shipped examples pass the validator, messages say each
// thing once, jobs get a name, `berth pipeline cron get` prints a table and
// `berth gpus` says why declared GPUs have no readings. Real berthd and berth.
#include <gtest/gtest.h>

#include <regex>

#include "cli/spec_defaults.h"
#include "model/experiment.h"
#include "model/job.h"
#include "model/pipeline.h"
#include "pipeline_util.h"
#include "require_tools.h"

namespace berth::testing {
namespace {

std::string Source(const std::string& rel) { return std::string(BERTH_SOURCE_DIR) + "/" + rel; }

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string l; std::getline(ss, l);) out.push_back(l);
  return out;
}

// A fenced block of README.md: its language, its text and the last line of
// text before its opening fence (where the README names the file it shows).
struct Block {
  std::string lang, text, intro;
  size_t line = 0;
};

std::vector<Block> ReadmeBlocks() {
  std::vector<Block> out;
  std::vector<std::string> lines = Lines(ReadFile(Source("README.md")));
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].rfind("```", 0) != 0 || lines[i].size() == 3) continue;
    Block b;
    b.lang = lines[i].substr(3);
    b.line = i + 1;
    for (size_t k = i; k > 0 && b.intro.empty(); --k) b.intro = lines[k - 1];
    for (++i; i < lines.size() && lines[i] != "```"; ++i) b.text += lines[i] + "\n";
    out.push_back(b);
  }
  return out;
}

// Runs `berth ARGS` with `cwd` as the working directory.
CommandResult CliIn(const Daemon& d, const std::string& cwd, const std::string& args) {
  return RunCommand({"/bin/sh", "-c",
                     "cd '" + cwd + "' && exec '" + BinDir() + "/berth' --server " +
                         d.socket_url() + " " + args});
}

std::string EndState(const Daemon& d, const std::string& id,
                     std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  std::string s;
  WaitFor(
      [&] {
        s = d.State(id);
        return s == "Succeeded" || s == "Failed" || s == "Cancelled";
      },
      timeout);
  return s;
}

TEST(CliSmall, ReadmeYamlBlocksAreTheShippedFiles) {
  int yaml = 0;
  for (const Block& b : ReadmeBlocks()) {
    if (b.lang != "yaml") continue;
    ++yaml;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(b.intro, m, std::regex("`(examples/[^`]+\\.yaml)`")))
        << "README.md:" << b.line << ": a yaml block whose introducing line names no shipped "
        << "examples/ file: " << b.intro;
    EXPECT_EQ(b.text, ReadFile(Source(m[1].str())))
        << "README.md:" << b.line << " differs from " << m[1];
  }
  EXPECT_GE(yaml, 1);
}

TEST(CliSmall, ShippedExamplesPassTheValidator) {
  int checked = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(Source("examples"))) {
    if (e.path().extension() != ".yaml") continue;
    // As berth submit/train -f send it (a relative workingDir is the file's directory).
    std::string text = cli::WithSpecDefaults(ReadFile(e.path()), cli::DefaultsForFile(e.path()));
    auto kind = model::DocumentKind(text);
    ASSERT_TRUE(kind.ok()) << e.path() << ": " << kind.status().message();
    Status st = *kind == "Pipeline"       ? model::ParsePipelineSpec(text).status()
                : *kind == "CronPipeline" ? model::ParseCronPipelineSpec(text).status()
                : *kind == "Experiment"   ? model::ParseExperimentSpec(ReadFile(e.path())).status()
                                          : model::ParseJobSpec(text).status();
    EXPECT_TRUE(st.ok()) << e.path() << ": " << st.message();
    ++checked;
  }
  EXPECT_GE(checked, 10);
}

// The README's job document (examples/jobs/train.yaml) asks for what a 2-core
// machine has and runs there as it is.
TEST(CliSmall, ReadmeJobDocumentRunsOnASmallMachine) {
  auto spec = model::ParseJobSpec(ReadFile(Source("examples/jobs/train.yaml")));
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_LE(spec->resources.cpu, 2 * kWholeCpu);
  EXPECT_LE(spec->resources.memory, 1024);
  EXPECT_LE(spec->resources.gpus, 4 * kWholeGpu);  // what the quickstart declares

  TempDir work;
  Daemon d({"--gpus", "4"});
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  CommandResult r =
      CliIn(d, work.path(), "submit -f " + Source("examples/jobs/train.yaml") + " --wait");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("sees CUDA_VISIBLE_DEVICES="), std::string::npos) << r.out;
}

// examples/training/ddp.yaml names its script relative to the file, and the
// CLI resolves a relative workingDir against the spec file's directory: it
// runs from any directory.
TEST(CliSmall, DdpExampleRunsFromAnotherDirectory) {
  TempDir work;
  Daemon d({"--gpus", "2"});
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  CommandResult r = CliIn(d, work.path(), "train -f " + Source("examples/training/ddp.yaml"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string id = Trim(r.out);
  auto job = d.Job(id);
  EXPECT_EQ(job["spec"]["spec"]["workingDir"], Source("examples/training")) << job.dump();

  if (RunCommand({"/usr/bin/python3", "-c", "import torch.distributed"}).exit_code != 0) {
    // Without torch the script is still found: python3 gets as far as its imports.
    std::string st = EndState(d, id);
    std::string log = d.GetText("/api/v1/jobs/" + id + "/logs?worker=0");
    EXPECT_EQ(log.find("can't open file"), std::string::npos) << log;
    EXPECT_NE(log.find("No module named"), std::string::npos) << st << ": " << log;
    BERTH_SKIP_UNLESS_REQUIRED("python3-torch is not installed (scripts/install-deps.sh --test)");
  }
  std::string st = EndState(d, id, std::chrono::seconds(120));
  EXPECT_EQ(st, "Succeeded") << d.Job(id).dump() << "\n"
                             << d.GetText("/api/v1/jobs/" + id + "/logs?worker=0");
}

// The README's `berth sim` line runs, from the repository root, on the
// shipped trace.
TEST(CliSmall, ReadmeSimExampleRuns) {
  std::string line;
  for (const Block& b : ReadmeBlocks())
    for (const std::string& l : Lines(b.text))
      if (l.rfind("berth sim ", 0) == 0) line = l.substr(0, l.find('#'));
  ASSERT_FALSE(line.empty()) << "README.md has no `berth sim` example";
  EXPECT_NE(line.find("--trace examples/"), std::string::npos) << line;
  CommandResult r =
      RunCommand({"/bin/sh", "-c",
                  "cd '" + Source("") + "' && exec '" + BinDir() + "/berth' " + line.substr(6)});
  ASSERT_EQ(r.exit_code, 0) << line << "\n" << r.err;
  EXPECT_NE(r.out.find(" completed, 0 unfinished, 0 never runnable"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("avg JCT"), std::string::npos) << r.out;
}

TEST(CliSmall, MessagesSayEachThingOnce) {
  TempDir work;
  Daemon d;
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");

  // A job that exits with 4: `berth run --wait` says so once.
  CommandResult w = d.Cli({"run", "--wait", "--", "/bin/sh", "-c", "exit 4"});
  EXPECT_EQ(w.exit_code, 4);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(w.err, m, std::regex("job (\\d+) submitted"))) << w.err;
  std::string id = m[1];
  EXPECT_NE(w.err.find("berth: job " + id + " Failed: exited with code 4\n"), std::string::npos)
      << w.err;

  // Cancelling it now: the job is named once.
  CommandResult c = d.Cli({"cancel", id});
  EXPECT_EQ(c.exit_code, 1);
  EXPECT_EQ(c.err, "berth: error: job " + id + " already ended (Failed)\n");
  CommandResult missing = d.Cli({"cancel", "999"});
  EXPECT_EQ(missing.err, "berth: error: job 999 not found\n");

  // A pipeline step that exits with 4: its message says the code once.
  std::string run = StartRun(d, work.path(), R"(
apiVersion: berth/v1
kind: Pipeline
metadata: {name: four}
spec:
  steps: [{name: s, command: [/bin/sh, -c, "exit 4"]}]
)");
  auto r = WaitRunEnd(d, run);
  EXPECT_EQ(r["state"], "Failed");
  EXPECT_EQ(Node(r, "s")["message"], "exited with code 4") << r.dump();
  EXPECT_EQ(Node(r, "s")["exitCode"], 4);
  EXPECT_EQ(r["message"].get<std::string>().find("exit code 4: exited"), std::string::npos)
      << r.dump();
}

TEST(CliSmall, JobsWithoutANameGetOne) {
  TempDir work;
  Daemon d;
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  // berth run: the command's basename, as Slurm does.
  CommandResult r = d.Cli({"run", "--", "/bin/true"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(d.Job(Trim(r.out))["name"], "true");
  // berth submit -f FILE without metadata.name: the file's stem.
  std::string doc = "apiVersion: berth/v1\nkind: Job\nspec: {command: [/bin/true]}\n";
  WriteFile(work / "nightly-eval.yaml", doc);
  r = d.Cli({"submit", "-f", work / "nightly-eval.yaml"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(d.Job(Trim(r.out))["name"], "nightly-eval");
  // ... from standard input: the command's basename.
  r = RunCommand({"/bin/sh", "-c",
                  "echo '" + doc + "' | '" + BinDir() + "/berth' --server " + d.socket_url() +
                      " submit -f -"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(d.Job(Trim(r.out))["name"], "true");
  // A name given is kept.
  WriteFile(work / "named.yaml",
            "apiVersion: berth/v1\nkind: Job\nmetadata: {name: mine}\n"
            "spec: {command: [/bin/true]}\n");
  r = d.Cli({"submit", "-f", work / "named.yaml"});
  EXPECT_EQ(d.Job(Trim(r.out))["name"], "mine");
  // Through the API: the command's basename.
  cli::ApiClient api(d.socket_url());
  auto j = api.Post(
      "/api/v1/jobs",
      R"({"apiVersion":"berth/v1","kind":"Job","spec":{"command":["/usr/bin/env","true"]}})");
  ASSERT_TRUE(j.ok()) << j.status().message();
  EXPECT_EQ((*j)["name"], "env");
  CommandResult ps = d.Cli({"ps", "-a"});
  EXPECT_NE(ps.out.find(" nightly-eval "), std::string::npos) << ps.out;
}

TEST(CliSmall, CronGetPrintsATableAndNoFiringYet) {
  TempDir work;
  Daemon d;
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  WriteFile(work / "cron.yaml", R"(
apiVersion: berth/v1
kind: CronPipeline
metadata: {name: yearly}
spec:
  schedule: "0 0 1 1 *"
  pipeline:
    kind: Pipeline
    metadata: {name: yearly}
    spec:
      steps: [{name: say, command: [echo, hi]}]
)");
  ASSERT_EQ(d.Cli({"pipeline", "cron", "create", "-f", work / "cron.yaml"}).exit_code, 0);
  for (const char* cmd : {"get", "list"}) {
    std::vector<std::string> args = {"pipeline", "cron", cmd};
    if (std::string(cmd) == "get") args.push_back("yearly");
    CommandResult r = d.Cli(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> lines = Lines(r.out);
    ASSERT_EQ(lines.size(), 2u) << r.out;
    EXPECT_EQ(lines[0].rfind("NAME", 0), 0u) << r.out;
    EXPECT_NE(lines[0].find("LAST"), std::string::npos) << r.out;
    // Nothing has fired: LAST is "-", not the creation time.
    std::regex row("^yearly +0 0 1 1 \\* +UTC +Allow +false +- +\\d{4}-01-01T00:00:00\\.000Z *$");
    EXPECT_TRUE(std::regex_match(lines[1], row)) << cmd << ": " << lines[1];
  }
  CommandResult j = d.Cli({"pipeline", "cron", "get", "yearly", "-o", "json"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  auto got = nlohmann::json::parse(j.out, nullptr, false);
  ASSERT_TRUE(got.is_object()) << j.out;
  EXPECT_EQ(got["name"], "yearly");
  EXPECT_TRUE(got["lastScheduleTime"].is_null()) << j.out;
  CommandResult bad = d.Cli({"pipeline", "cron", "get", "yearly", "-o", "xml"});
  EXPECT_EQ(bad.exit_code, 2);
}

TEST(CliSmall, DeclaredGpusSayWhyThereAreNoReadings) {
  Daemon d({"--gpus", "2"});
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  auto gpus = d.Get("/api/v1/gpus");
  EXPECT_EQ(gpus["nodes"][0]["gpus"][0]["declared"], true) << gpus.dump();
  CommandResult r = d.Cli({"gpus"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 5u) << r.out;  // header, 2 GPUs, blank, note
  std::regex row(
      "^\\S+ +[01] +Simulated GPU +n/a +n/a/81920 MiB +n/a +n/a +n/a +- +0 +- +- *$");  // DRAINED:
                                                                                        // -
  EXPECT_TRUE(std::regex_match(lines[1], row)) << lines[1];
  EXPECT_EQ(
      lines[4],
      "n/a: declared GPUs (berthd --gpus N, or no NVIDIA driver found) are scheduled but not "
      "measured: no driver reports their utilization, memory, temperature or power, nor their "
      "jobs' GPU usage");

  // A job on a declared GPU: its usage says "not measured", not 0%.
  TempDir work;
  std::string id =
      SubmitScript(d, {"--gpus", "1"}, "while [ ! -e " + work / "go" + " ]; do sleep 0.02; done");
  ASSERT_TRUE(WaitFor([&] { return d.Job(id).contains("gpuUsage"); })) << d.Job(id).dump();
  auto usage = d.Job(id)["gpuUsage"];
  EXPECT_TRUE(usage["avgUtilization"].is_null()) << usage.dump();
  EXPECT_TRUE(usage["peakMemoryMiB"].is_null()) << usage.dump();
  CommandResult get = d.Cli({"get", id});
  EXPECT_NE(
      get.out.find(
          "GPU usage:    utilization not measured, memory not measured (no driver readings)\n"),
      std::string::npos)
      << get.out;
  WriteFile(work / "go", "");
  EXPECT_EQ(EndState(d, id), "Succeeded");
}

}  // namespace
}  // namespace berth::testing
