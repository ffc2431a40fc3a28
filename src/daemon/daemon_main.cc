// berthd: the Berth daemon. Usually started by `berth up`.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "api/pipeline_routes.h"  // pipelines
#include "api/server.h"
#include "common/clock.h"
#include "common/daemon_record.h"
#include "common/log.h"
#include "common/net.h"
#include "controllers/job_controller.h"
#include "controllers/pipeline_controller.h"  // pipelines
#include "daemon/config.h"
#include "exec/local_executor.h"
#include "gpu/inventory.h"
#include "gpu/prometheus.h"
#include "gpu/sampler.h"
#include "gpu/telemetry_json.h"
#include "sched/scheduler.h"
#include "store/pipeline_store.h"  // pipelines
#include "store/store.h"

#ifndef BERTH_VERSION
#define BERTH_VERSION "0.0.0"
#endif

namespace berth::daemon {
namespace {


int Fail(const std::string& msg) {
  std::cerr << "berthd: " << msg << "\n";
  return 2;
}

int Run(int argc, char** argv) {
  CLI::App app{"berthd: the Berth daemon (GPU scheduler and MLOps platform)", "berthd"};
  std::string config_file, listen, data_dir, policy, log_level;
  int gpus = -2;
  app.add_option("--config", config_file, "YAML configuration file");
  app.add_option("--listen", listen, "HOST:PORT to serve the API on (default 127.0.0.1:7420)");
  app.add_option("--data-dir", data_dir, "directory for berth.db, logs and run directories");
  app.add_option("--gpus", gpus, "declare N simulated GPUs (for machines without NVIDIA GPUs)")
      ->check(CLI::Range(0, 1024));
  app.add_option("--policy", policy, "scheduling policy (default dynamic)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error");
  app.set_version_flag("--version", BERTH_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  DaemonConfig cfg;
  if (!config_file.empty()) {
    Status st = LoadConfigFile(config_file, &cfg);
    if (!st.ok()) return Fail(st.message());
  }
  if (!listen.empty()) {
    Status st = ParseListen(listen, &cfg.host, &cfg.port);
    if (!st.ok()) return Fail("--" + st.message());
  }
  if (!data_dir.empty()) cfg.data_dir = data_dir;
  if (cfg.data_dir.empty()) cfg.data_dir = DefaultDataDir();
  if (gpus != -2) cfg.gpus = gpus;
  if (!policy.empty()) cfg.policy = policy;
  if (!log_level.empty()) cfg.log_level = log_level;

  InitLogging(cfg.log_level);

  std::error_code ec;
  std::filesystem::create_directories(cfg.data_dir + "/runs", ec);
  if (ec) return Fail("--data-dir: cannot create " + cfg.data_dir + ": " + ec.message());
  cfg.data_dir = std::filesystem::canonical(cfg.data_dir).string();

  // One daemon per data directory.
  std::string lock_path = cfg.data_dir + "/berthd.lock";
  int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0)
    return Fail("another berthd is already using " + cfg.data_dir);
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(lock_fd, 0) == 0) (void)!::write(lock_fd, pid.data(), pid.size());
  // A record left here is a crashed daemon's (this one holds the lock now):
  // until this one listens, clients should hear "not running", not a dead address.
  ::unlink((cfg.data_dir + "/" + kDaemonRecordName).c_str());

  // Signals are taken by one thread with sigwait; tasks never inherit the mask
  // (the shim resets it).
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  Clock& clock = SystemClock::Default();
  store::StoreOptions sopts;
  sopts.synchronous = cfg.synchronous;
  auto store = store::Store::Open(cfg.data_dir + "/berth.db", sopts);
  if (!store.ok()) return Fail(store.status().message());

  gpu::LocalInventoryOptions iopts;
  iopts.use_nvml = cfg.gpus < 0;  // --gpus N declares GPUs instead of asking NVML
  iopts.declared.gpus = std::max(cfg.gpus, 0);
  std::unique_ptr<gpu::Inventory> inventory = gpu::MakeLocalInventory(iopts);
  spdlog::info("GPU inventory: {}", inventory->Describe());

  sched::SchedulerConfig scfg;
  scfg.policy = cfg.policy;
  scfg.options = cfg.scheduler_options;
  auto scheduler = sched::Scheduler::Create(scfg);
  if (!scheduler.ok()) return Fail(scheduler.status().message());

  std::atomic<controllers::JobController*> controller_ptr{nullptr};
  exec::LocalExecutorOptions eopts;
  eopts.run_root = cfg.data_dir + "/runs";
  eopts.log_cap_bytes = cfg.log_cap_mib * 1024 * 1024;
  auto executor = exec::MakeLocalExecutor(eopts, clock, [&](const exec::TaskEvent& ev) {
    if (auto* c = controller_ptr.load()) c->OnTaskEvent(ev);
  });
  if (!executor.ok()) return Fail(executor.status().message());

  if (cfg.port == 0) {
    // Tasks are told BERTH_SERVER before the API server binds: pick the
    // free port now rather than hand them ":0".
    cfg.port = FreeTcpPort(cfg.host);
    if (cfg.port == 0) return Fail("--listen: no free port on " + cfg.host);
  }
  // The address clients use: a wildcard host is reached on loopback.
  auto url_for = [&cfg](int port) {
    std::string host = cfg.host == "0.0.0.0" ? "127.0.0.1" : cfg.host == "::" ? "::1" : cfg.host;
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    return "http://" + host + ":" + std::to_string(port);
  };
  std::string url = url_for(cfg.port);
  controllers::JobControllerOptions copts;
  copts.task_env["BERTH_SERVER"] = url;
  copts.checkpoint_root = cfg.data_dir + "/checkpoints";
  copts.resync_interval = cfg.resync_interval;
  controllers::JobController controller(**store, **scheduler, **executor, *inventory, clock, copts);
  controller_ptr = &controller;
  Status st = controller.Start();
  if (!st.ok()) return Fail(st.message());

  // --- pipelines: step jobs go through the job controller; state in berth.db.
  auto pstore = store::PipelineStore::Open(**store, cfg.data_dir + "/berth.db");
  if (!pstore.ok()) return Fail(pstore.status().message());
  controllers::StepJobs step_jobs;
  step_jobs.submit = [&](model::JobSpec spec) { return controller.Submit(std::move(spec)); };
  step_jobs.cancel = [&](model::JobId id) { return controller.Cancel(id).status(); };
  step_jobs.read_log = [&](const model::Job& j, int64_t offset, int64_t limit) {
    return (*executor)->ReadLog({j.id, 0, j.attempts}, offset, limit);
  };
  controllers::PipelineControllerOptions popts;
  const char* artifact_root = std::getenv("BERTH_ARTIFACT_ROOT");
  popts.artifact_root = artifact_root && *artifact_root ? std::string(artifact_root)
                         : !cfg.artifact_root.empty()   ? cfg.artifact_root
                                                         : cfg.data_dir + "/artifacts";
  popts.max_fan_out = cfg.max_fan_out;
  controllers::PipelineController pipelines(**store, **pstore, step_jobs, clock, popts);
  st = pipelines.Start();
  if (!st.ok()) return Fail(st.message());
  // --- end pipelines

  // GPU telemetry: sample every interval, tell the sampler who holds what,
  // and record what it finds (idle allocations, violations, lost GPUs).
  gpu::SamplerOptions gopts;
  gopts.interval = cfg.telemetry_interval;
  gopts.idle_util_percent = cfg.idle_util_percent;
  gopts.idle_after = cfg.idle_after;
  gpu::Sampler sampler(clock, *inventory, gopts);
  // A job's GPU usage as the API shows it (`gpuUsage`).
  // Declared GPUs have no driver: their jobs' utilization and memory are
  // null (not measured), not 0.
  bool declared_only = true;
  for (const auto& n : inventory->Nodes())
    for (const auto& g : n.gpus) declared_only &= g.declared;
  auto usage_json = [declared_only](const gpu::JobUsage& u) {
    nlohmann::json j = gpu::ToJson(u);
    auto measured = [](bool any, auto v) { return any ? nlohmann::json(v) : nlohmann::json(nullptr); };
    bool util = u.util_samples > 0, mem = !declared_only && u.memory_samples > 0;
    j["avgUtilization"] = measured(util, u.AvgUtil());
    j["peakUtilization"] = measured(util, u.peak_util);
    j["avgMemoryMiB"] = measured(mem, u.AvgMemory());
    j["peakMemoryMiB"] = measured(mem, u.peak_memory);
    j["avgUtilPercent"] = j["avgUtilization"];
    j["peakUtilPercent"] = j["peakUtilization"];
    return j;
  };
  // Usage of jobs that no longer hold GPUs is kept in the store (table
  // job_usage), so `berth get` shows it after berthd restarts.
  auto to_record = [](const gpu::JobUsage& u) {
    store::JobUsageRecord r;
    r.job = u.job;
    r.user = u.user;
    r.queue = u.queue;
    r.first_time = u.first_time;
    r.last_time = u.last_time;
    r.util_samples = u.util_samples;
    r.util_sum = u.util_sum;
    r.peak_util = u.peak_util;
    r.memory_samples = u.memory_samples;
    r.memory_sum = u.memory_sum;
    r.peak_memory = u.peak_memory;
    r.allocated_milli_gpu_ms = u.allocated_milli_gpu_ms;
    r.idle_milli_gpu_ms = u.idle_milli_gpu_ms;
    r.violations = u.violations;
    return r;
  };
  auto from_record = [](const store::JobUsageRecord& r) {
    gpu::JobUsage u;
    u.job = r.job;
    u.user = r.user;
    u.queue = r.queue;
    u.first_time = r.first_time;
    u.last_time = r.last_time;
    u.util_samples = r.util_samples;
    u.util_sum = r.util_sum;
    u.peak_util = static_cast<int>(r.peak_util);
    u.memory_samples = r.memory_samples;
    u.memory_sum = r.memory_sum;
    u.peak_memory = r.peak_memory;
    u.allocated_milli_gpu_ms = r.allocated_milli_gpu_ms;
    u.idle_milli_gpu_ms = r.idle_milli_gpu_ms;
    u.violations = static_cast<int>(r.violations);
    return u;
  };
  std::set<model::JobId> usage_saved;
  std::mutex tel_mu;
  std::condition_variable tel_cv;
  bool tel_stop = false;
  std::thread telemetry([&] {
    std::unique_lock<std::mutex> l(tel_mu);
    while (!tel_stop) {
      l.unlock();
      std::vector<gpu::Assignment> assignments;
      for (const auto& h : controller.GpuHolders())
        assignments.push_back({h.node, h.gpu, h.job, h.user, h.queue, h.share});
      sampler.SetAssignments(std::move(assignments));
      sampler.SetProcessGroups(controller.ProcessGroups());
      for (const gpu::GpuEvent& ev : sampler.Tick()) {
        std::string type = ev.type == gpu::GpuEventType::kIdleAllocation ? "GpuIdle"
                           : ev.type == gpu::GpuEventType::kIdleEnded    ? "GpuBusy"
                           : ev.type == gpu::GpuEventType::kViolation    ? "GpuViolation"
                           : ev.type == gpu::GpuEventType::kGpuLost      ? "GpuLost"
                           : ev.type == gpu::GpuEventType::kGpuRecovered ? "GpuRecovered"
                                                                         : "GpuReadFailed";
        nlohmann::json data = {{"node", ev.gpu.node}, {"gpu", ev.gpu.index}, {"uuid", ev.uuid}};
        if (ev.pid) data["pid"] = ev.pid;
        if (ev.idle_for) data["idleForMs"] = ev.idle_for;
        if (ev.type == gpu::GpuEventType::kIdleAllocation || ev.type == gpu::GpuEventType::kViolation ||
            ev.type == gpu::GpuEventType::kGpuLost)
          spdlog::warn("{}", ev.message);
        controller.RecordEvent(type, ev.job, ev.message, data);
      }
      std::set<model::JobId> ended;  // jobs the sampler still keeps that hold no GPU now
      for (const gpu::JobUsage& u : sampler.Jobs()) {
        if (u.active || u.job == 0) continue;
        ended.insert(u.job);
        if (usage_saved.count(u.job)) continue;
        Status put = (*store)->PutJobUsage(to_record(u));
        if (put.ok()) usage_saved.insert(u.job);
        else spdlog::warn("job {}: could not save its GPU usage: {}", u.job, put.ToString());
      }
      // Saved and since evicted by the sampler, or running again (saved anew
      // when it ends): forget, so this set stays as small as the sampler's.
      std::erase_if(usage_saved, [&](model::JobId id) { return !ended.count(id); });
      l.lock();
      tel_cv.wait_for(l, std::chrono::milliseconds(cfg.telemetry_interval), [&] { return tel_stop; });
    }
  });
  auto stop_telemetry = [&] {
    {
      std::lock_guard<std::mutex> l(tel_mu);
      tel_stop = true;
    }
    tel_cv.notify_all();
    if (telemetry.joinable()) telemetry.join();
  };

  api::ApiHooks hooks;
  hooks.extra_metrics = [&] { return gpu::RenderPrometheus(sampler); };
  hooks.extra_routes = [&](httplib::Server& s) { api::RegisterPipelineRoutes(s, pipelines, **store, clock); };  // pipelines
  hooks.gpu_telemetry = [&](const std::string& node, int index) -> nlohmann::json {
    auto g = sampler.Gpu({node, index});
    if (!g || g->time == 0) return nullptr;
    const gpu::GpuSample& s = g->sample;
    nlohmann::json t = gpu::ToJson(*g);
    // The fields `berth gpus` shows, under stable names.
    t["utilization"] = s.util_percent ? nlohmann::json(*s.util_percent) : nlohmann::json(nullptr);
    if (s.memory_used) t["memoryUsedMiB"] = *s.memory_used;
    t["temperatureC"] = s.temperature_c ? nlohmann::json(*s.temperature_c) : nlohmann::json(nullptr);
    t["powerW"] = s.power_mw ? nlohmann::json(*s.power_mw / 1000.0) : nlohmann::json(nullptr);
    t["lost"] = s.lost;
    return t;
  };
  hooks.job_usage = [&](model::JobId id) -> nlohmann::json {
    if (auto u = sampler.Job(id)) return usage_json(*u);
    auto saved = (*store)->GetJobUsage(id);
    if (!saved.ok() || !*saved) return nullptr;
    return usage_json(from_record(**saved));
  };

  api::ServerOptions aopts;
  aopts.host = cfg.host;
  aopts.port = cfg.port;
  aopts.version = BERTH_VERSION;
  aopts.policy = cfg.policy;
  aopts.data_dir = cfg.data_dir;
  api::ApiServer server(controller, **store, **executor, *inventory, clock, aopts, hooks);
  st = server.Start();
  if (!st.ok()) {
    stop_telemetry();
    pipelines.Stop();  // pipelines
    controller.Stop();
    (*executor)->Shutdown();
    return Fail(st.message());
  }
  // Clients find the daemon's actual address (--listen with port 0) and pid
  // in its data directory; the system daemon's also in /run/berth.
  DaemonRecord record{url_for(server.port()), ::getpid(), cfg.data_dir};
  std::vector<std::string> record_dirs = {cfg.data_dir};
  if (::geteuid() == 0 && cfg.data_dir == kSystemDataDir) {
    std::filesystem::create_directories(kSystemRunDir, ec);
    record_dirs.push_back(kSystemRunDir);
  }
  for (const std::string& dir : record_dirs) {
    if (Status w = WriteDaemonRecord(dir, record); !w.ok()) spdlog::warn("{}", w.message());
  }
  spdlog::info("berthd {} listening on http://{}:{} (data in {}, policy {})", BERTH_VERSION, cfg.host,
               server.port(), cfg.data_dir, cfg.policy);
  if (!IsLoopbackHost(cfg.host))
    spdlog::warn("listening on {}, not only on loopback: other machines that reach port {} can use the API",
                 cfg.host, server.port());

  int sig = 0;
  sigwait(&sigs, &sig);
  spdlog::info("received {}, shutting down (running tasks keep running)", strsignal(sig));
  for (const std::string& dir : record_dirs) RemoveDaemonRecord(dir, ::getpid());
  server.Stop();
  stop_telemetry();
  pipelines.Stop();  // pipelines
  controller.Stop();
  (*executor)->Shutdown();
  spdlog::info("berthd stopped");
  return 0;
}

}  // namespace
}  // namespace berth::daemon

int main(int argc, char** argv) { return berth::daemon::Run(argc, argv); }
