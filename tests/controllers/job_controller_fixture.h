// The job controller without processes or sleeps: a real SQLite store in a
// temporary directory, declared GPUs, the data-configured FakeExecutor, and a
// ManualClock. The controller runs no thread (run_thread = false): the test
// drives it with RunOnce and the executor with Poll, so every step happens at
// a virtual time the test chose.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "controllers/job_controller.h"
#include "exec/fake_executor.h"
#include "gpu/inventory.h"
#include "model/job.h"
#include "sched/scheduler.h"
#include "store/store.h"

namespace berth::controllers {

class JobControllerTest : public ::testing::Test {
 protected:
  static constexpr TimeMs kT0 = 1'800'000'000'000;  // an arbitrary wall time

  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "berth-jc-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    ctl_.reset();
    exec_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Builds the world: `gpus` declared GPUs on node "n1", the policy, and the
  // fake's rules (JSON, see exec::ParseFakeRules); then starts a controller.
  void Open(int gpus, const std::string& policy,
            const nlohmann::json& rules = nlohmann::json::array()) {
    store::StoreOptions so;
    so.synchronous = "OFF";  // one process: durability is not under test
    so.state_synchronous = "OFF";
    so.busy_timeout_ms = busy_timeout_ms_;
    auto st = store::Store::Open(dir_ + "/berth.db", so);
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    store_ = std::move(*st);
    gpu::DeclaredOptions d;
    d.node_name = "n1";
    d.gpus = gpus;
    d.cpu = 64 * kWholeCpu;
    d.memory = 256 * 1024;
    inventory_ = gpu::MakeDeclaredInventory(d);
    sched::SchedulerConfig sc;
    sc.policy = policy;
    auto sched = sched::Scheduler::Create(sc);
    ASSERT_TRUE(sched.ok()) << sched.status().ToString();
    scheduler_ = std::move(*sched);
    auto parsed = exec::ParseFakeRules(rules);
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    exec::FakeExecutorOptions eo;
    eo.rules = std::move(*parsed);
    exec_ = std::make_unique<exec::FakeExecutor>(std::move(eo), clock_,
                                                 [this](const exec::TaskEvent& ev) {
                                                   if (ctl_) ctl_->OnTaskEvent(ev);
                                                 });
    StartController();
  }

  // A new controller over the same store and executor (what a restarted
  // berthd does): the old one is dropped without further work.
  void StartController() {
    ctl_.reset();
    JobControllerOptions o;
    o.run_thread = false;
    o.check_commands_locally = false;
    o.submit_batch_window = 0;
    o.checkpoint_root = dir_ + "/checkpoints";
    ctl_ = std::make_unique<JobController>(*store_, *scheduler_, *exec_, *inventory_, clock_, o);
    Status st = ctl_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
    Settle();
  }

  // Runs the executor and the controller until neither has work at the
  // current time. A cycle the controller defers (submissions batched while
  // jobs wait) gets the clock moved by a millisecond. Without a controller
  // (the daemon is down) only the executor's time passes.
  void Settle() {
    if (!ctl_) {
      exec_->Poll();
      return;
    }
    for (int i = 0; i < 1000; ++i) {
      int delivered = exec_->Poll();
      ctl_->RunOnce();
      TimeMs due = exec_->NextDue();
      bool exec_idle = due == 0 || due > clock_.Now();
      if (exec_idle && ctl_->WaitIdle(0)) return;
      if (delivered == 0 && exec_idle) clock_.Advance(1);
    }
    FAIL() << "the controller did not settle";
  }

  // Moves the clock to `t`, stopping at every time the executor has
  // something due on the way.
  void AdvanceTo(TimeMs t) {
    Settle();
    while (true) {
      TimeMs due = exec_->NextDue();
      if (due == 0 || due > t) break;
      if (due > clock_.Now()) clock_.Set(due);
      Settle();
    }
    if (t > clock_.Now()) clock_.Set(t);
    Settle();
  }
  void Advance(DurationMs d) { AdvanceTo(clock_.Now() + d); }

  // Submits a document (YAML or JSON) through the controller; the job id.
  model::JobId Submit(const nlohmann::json& doc) {
    auto spec = model::ParseJobSpec(doc.dump());
    EXPECT_TRUE(spec.ok()) << spec.status().ToString();
    if (!spec.ok()) return 0;
    auto job = ctl_->Submit(*spec);
    EXPECT_TRUE(job.ok()) << job.status().ToString();
    if (!job.ok()) return 0;
    Settle();
    return job->id;
  }
  static nlohmann::json JobDoc(const std::string& name, double gpus,
                               const std::string& command = "/bin/work", int priority = 0,
                               int grace_s = 30) {
    return {{"apiVersion", "berth/v1"},
            {"kind", "Job"},
            {"metadata", {{"name", name}, {"user", "alice"}}},
            {"spec",
             {{"command", {command}},
              {"priority", priority},
              {"terminationGracePeriodSeconds", grace_s},
              {"resources", {{"gpus", gpus}}}}}};
  }
  static nlohmann::json TrainDoc(const std::string& name, nlohmann::json spec) {
    spec["command"] = {"/bin/train"};
    if (!spec.contains("gpusPerWorker")) spec["gpusPerWorker"] = 1;
    return {{"apiVersion", "berth/v1"},
            {"kind", "TrainingJob"},
            {"metadata", {{"name", name}}},
            {"spec", spec}};
  }

  model::Job Job(model::JobId id) {
    auto j = store_->GetJob(id);
    EXPECT_TRUE(j.ok()) << j.status().ToString();
    return j.ok() ? *j : model::Job{};
  }
  std::string State(model::JobId id) { return model::JobStateName(Job(id).state); }
  // The types of the job's events, oldest first.
  std::vector<std::string> EventTypes(model::JobId id) {
    std::vector<std::string> out;
    auto evs = store_->EventsSince(0, 100000, id);
    EXPECT_TRUE(evs.ok());
    if (evs.ok())
      for (const auto& e : *evs) out.push_back(e.type);
    return out;
  }
  std::optional<store::Event> LastEvent(model::JobId id, const std::string& type) {
    std::optional<store::Event> found;
    auto evs = store_->EventsSince(0, 100000, id);
    if (evs.ok())
      for (const auto& e : *evs)
        if (e.type == type) found = e;
    return found;
  }
  // GPU indices the job holds now, as the controller reports them.
  std::vector<int> HeldGpus(model::JobId id) {
    std::vector<int> out;
    for (const auto& h : ctl_->GpuHolders())
      if (h.job == id) out.push_back(h.gpu);
    return out;
  }
  exec::FakeExecutor::Task Task(model::JobId id, int task, int attempt) {
    auto t = exec_->Find({id, task, attempt});
    EXPECT_TRUE(t.has_value()) << "no task " << exec::TaskKey{id, task, attempt}.ToString();
    return t ? *t : exec::FakeExecutor::Task{};
  }

  std::string dir_;
  int busy_timeout_ms_ = 5000;  // the store's wait for a lock another connection holds
  ManualClock clock_{kT0};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<gpu::Inventory> inventory_;
  std::unique_ptr<sched::Scheduler> scheduler_;
  std::unique_ptr<exec::FakeExecutor> exec_;
  std::unique_ptr<JobController> ctl_;
};

}  // namespace berth::controllers
