// How many GPUs a training job asks for and holds: the whole gang (workers x
// per-worker GPUs), the same in `berth ps`, `berth get` and the API JSON; an
// elastic job shows what it holds now and its range.
#include <gtest/gtest.h>

#include <sstream>

#include "harness.h"

namespace berth::testing {
namespace {

using nlohmann::json;

std::string SubmitTraining(const Daemon& d, const TempDir& work, const std::string& name,
                           json spec) {
  json doc = {{"apiVersion", "berth/v1"},
              {"kind", "TrainingJob"},
              {"metadata", {{"name", name}}},
              {"spec", spec}};
  std::string path = work / (name + ".json");
  WriteFile(path, doc.dump());
  CommandResult r = d.Cli({"train", "-f", path});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return Trim(r.out);
}

// The `berth ps` row of job `id` ("" if it is not listed).
std::string PsRow(const Daemon& d, const std::string& id) {
  CommandResult r = d.Cli({"ps"});
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(id + " ", 0) == 0) return line;
  return "";
}

// The GPUS column (the sixth) of a `berth ps` row whose name, user and queue have no spaces.
std::string GpusColumn(const std::string& row) {
  std::istringstream in(row);
  std::string f;
  for (int i = 0; i < 6 && in >> f; ++i) {
  }
  return f;
}

std::string Waiter(const std::string& release) {
  return "while [ ! -e " + release + " ]; do sleep 0.05; done";
}

TEST(TrainingGpus, AGangShowsItsTotalInPsGetAndTheApi) {
  TempDir work;
  Daemon d({"--gpus", "4"});
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  std::string id = SubmitTraining(d, work, "pair",
                                  {{"workers", 2},
                                   {"gpusPerWorker", 1},
                                   {"command", {"/bin/sh", "-c", Waiter(work / "release")}}});
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitFor([&] { return d.State(id) == "Running"; })) << d.Job(id).dump();
  json job = d.Job(id);
  EXPECT_EQ(job["gpusRequested"], "2") << job.dump();
  EXPECT_EQ(job["gpusHeld"], "2") << job.dump();
  EXPECT_EQ(job["gpusPerWorker"], "1") << job.dump();
  EXPECT_FALSE(job.contains("gpusRequestedMin"));
  // The list has the same totals.
  json listed = d.Get("/api/v1/jobs?state=Running");
  ASSERT_EQ(listed["items"].size(), 1u);
  EXPECT_EQ(listed["items"][0]["gpusHeld"], "2");

  std::string row = PsRow(d, id);
  EXPECT_EQ(GpusColumn(row), "2") << row;
  CommandResult get = d.Cli({"get", id});
  EXPECT_NE(get.out.find("GPUs asked:   2 (2 workers x 1)\n"), std::string::npos) << get.out;
  EXPECT_NE(get.out.find("GPUs held:    2\n"), std::string::npos) << get.out;
  EXPECT_EQ(get.out.find("GPUs:"), std::string::npos) << get.out;  // no bare GPU index list
  EXPECT_NE(get.out.find("Worker 1:"), std::string::npos) << get.out;

  WriteFile(work / "release", "");
  ASSERT_TRUE(WaitFor([&] { return d.State(id) == "Succeeded"; })) << d.Job(id).dump();
  job = d.Job(id);
  EXPECT_EQ(job["gpusRequested"], "2");
  EXPECT_EQ(job["gpusHeld"], "0");  // an ended job holds nothing
  get = d.Cli({"get", id});
  EXPECT_EQ(get.out.find("GPUs held:"), std::string::npos) << get.out;
}

TEST(TrainingGpus, AnElasticJobShowsWhatItHoldsAndItsRange) {
  TempDir work;
  Daemon d({"--gpus", "3"});
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  // Two of the three GPUs are busy: the elastic job starts with one worker.
  std::string blocker =
      SubmitScript(d, {"--gpus", "2", "--name", "blocker"}, Waiter(work / "release"));
  ASSERT_TRUE(WaitFor([&] { return d.State(blocker) == "Running"; }));
  std::string id = SubmitTraining(
      d, work, "stretchy",
      {{"gpusPerWorker", 1},
       {"command", {"/bin/sh", "-c", Waiter(work / "release")}},
       {"elasticPolicy", {{"minReplicas", 1}, {"maxReplicas", 4}, {"maxRestarts", 10}}}});
  ASSERT_TRUE(WaitFor([&] { return d.State(id) == "Running"; })) << d.Job(id).dump();
  json job = d.Job(id);
  EXPECT_EQ(job["gpusRequested"], "4") << job.dump();
  EXPECT_EQ(job["gpusRequestedMin"], "1") << job.dump();
  EXPECT_EQ(job["gpusHeld"], "1") << job.dump();
  std::string row = PsRow(d, id);
  EXPECT_NE(row.find(" 1 (1-4) "), std::string::npos) << row;
  CommandResult get = d.Cli({"get", id});
  EXPECT_NE(get.out.find("GPUs asked:   1-4 (1-4 workers x 1)\n"), std::string::npos) << get.out;
  EXPECT_NE(get.out.find("GPUs held:    1\n"), std::string::npos) << get.out;
  WriteFile(work / "release", "");
  ASSERT_TRUE(WaitFor([&] {
    return d.State(id) == "Succeeded" && d.State(blocker) == "Succeeded";
  })) << d.Job(id).dump();
}

// A plain job's column is its request, as before.
TEST(TrainingGpus, APlainJobShowsItsRequest) {
  TempDir work;
  Daemon d({"--gpus", "2"});
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  std::string id = SubmitScript(d, {"--gpus", "0.5", "--name", "half"}, Waiter(work / "release"));
  ASSERT_TRUE(WaitFor([&] { return d.State(id) == "Running"; }));
  json job = d.Job(id);
  EXPECT_EQ(job["gpusRequested"], "0.5") << job.dump();
  EXPECT_EQ(job["gpusHeld"], "0.5") << job.dump();
  EXPECT_EQ(GpusColumn(PsRow(d, id)), "0.5") << PsRow(d, id);
  CommandResult get = d.Cli({"get", id});
  EXPECT_NE(get.out.find("GPU indices:"), std::string::npos) << get.out;
  WriteFile(work / "release", "");
  ASSERT_TRUE(WaitFor([&] { return d.State(id) == "Succeeded"; }));
}

}  // namespace
}  // namespace berth::testing
