// berthd: the Berth daemon. Usually started by `berth up`.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "api/experiment_routes.h"  // experiments
#include "api/pipeline_routes.h"    // pipelines
#include "api/server.h"
#include "auth/authenticator.h"
#include "common/clock.h"
#include "common/daemon_record.h"
#include "common/log.h"
#include "common/net.h"
#include "controllers/controller.h"
#include "controllers/cron_controller.h"
#include "controllers/experiment_controller.h"  // experiments
#include "controllers/job_controller.h"
#include "controllers/pipeline_controller.h"  // pipelines
#include "controllers/telemetry_controller.h"
#include "daemon/config.h"
#include "daemon/reloadable_config.h"
#include "exec/local_executor.h"
#include "exec/slurm_executor.h"
#include "gpu/inventory.h"
#include "gpu/prometheus.h"
#include "sched/scheduler.h"
#include "store/auth_store.h"
#include "store/experiment_store.h"  // experiments
#include "store/pipeline_store.h"    // pipelines
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

exec::SlurmToolsOptions SlurmToolsOptionsFrom(const DaemonConfig& cfg) {
  exec::SlurmToolsOptions t;
  t.bin_dir = cfg.slurm.bin_dir;
  t.conf = cfg.slurm.conf;
  t.partition = cfg.slurm.partition;
  t.timeout = cfg.slurm.command_timeout;
  return t;
}

exec::SlurmInventoryOptions SlurmInventoryOptionsFrom(const DaemonConfig& cfg) {
  exec::SlurmInventoryOptions o;
  o.tools = SlurmToolsOptionsFrom(cfg);
  o.gpu_memory = cfg.slurm.gpu_memory;
  o.gpu_model = cfg.slurm.gpu_model;
  o.refresh = cfg.slurm.node_refresh;
  return o;
}

// executor.kind: the local executor (this machine) or Slurm's.
Result<std::unique_ptr<exec::Executor>> MakeExecutor(const DaemonConfig& cfg, Clock& clock,
                                                     exec::TaskEventSink sink) {
  if (cfg.executor_kind == "slurm") {
    exec::SlurmExecutorOptions o;
    o.tools = SlurmToolsOptionsFrom(cfg);
    o.run_root = cfg.slurm.run_root.empty() ? cfg.data_dir + "/runs" : cfg.slurm.run_root;
    o.shim_path = cfg.slurm.shim_path;
    o.job_name_prefix = cfg.slurm.job_name_prefix;
    o.log_cap_bytes = cfg.log_cap_mib * 1024 * 1024;
    o.run_as_owner = cfg.run_as_owner == "true" || (cfg.run_as_owner == "auto" && ::geteuid() == 0);
    o.poll_interval = cfg.slurm.poll_interval;
    o.kill_after = cfg.slurm.kill_after;
    ASSIGN_OR_RETURN(auto e, exec::MakeSlurmExecutor(o, clock, std::move(sink)));
    return std::unique_ptr<exec::Executor>(std::move(e));
  }
  exec::LocalExecutorOptions eopts;
  eopts.run_root = cfg.data_dir + "/runs";
  eopts.log_cap_bytes = cfg.log_cap_mib * 1024 * 1024;
  eopts.run_retention = cfg.run_retention;
  eopts.run_as_owner = cfg.run_as_owner != "false";
  ASSIGN_OR_RETURN(auto e, exec::MakeLocalExecutor(eopts, clock, std::move(sink)));
  return std::unique_ptr<exec::Executor>(std::move(e));
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
  // What SIGHUP may change later (daemon/reloadable_config.h), as read now.
  ReloadableConfig started;
  started.log_level = cfg.log_level;
  if (!config_file.empty()) {
    auto read = LoadReloadableConfig(config_file);
    if (!read.ok()) return Fail(read.status().message());
    started = std::move(*read);
    started.log_level = cfg.log_level;  // --log-level wins at start; a reload reads the file's
  }
  ReloadableConfigHolder live(std::move(started));

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

  std::unique_ptr<gpu::Inventory> inventory;
  if (cfg.executor_kind == "slurm") {
    // The nodes and GPUs are Slurm's (executor.kind: slurm; docs/slurm.md).
    auto slurm_inventory = exec::MakeSlurmInventory(SlurmInventoryOptionsFrom(cfg), clock);
    if (!slurm_inventory.ok()) return Fail(slurm_inventory.status().message());
    inventory = std::move(*slurm_inventory);
  } else {
    gpu::LocalInventoryOptions iopts;
    iopts.use_nvml = cfg.gpus < 0;  // --gpus N declares GPUs instead of asking NVML
    iopts.declared.gpus = std::max(cfg.gpus, 0);
    inventory = gpu::MakeLocalInventory(iopts);
  }
  spdlog::info("GPU inventory: {}", inventory->Describe());

  sched::SchedulerConfig scfg;
  scfg.policy = cfg.policy;
  scfg.options = cfg.scheduler_options;
  auto scheduler = sched::Scheduler::Create(scfg);
  if (!scheduler.ok()) return Fail(scheduler.status().message());

  std::atomic<controllers::JobController*> controller_ptr{nullptr};
  if (cfg.run_as_owner == "true" && ::geteuid() != 0)
    return Fail(
        "executor.runAsOwner: true needs berthd to run as root (auto runs tasks as their "
        "owner only when it does)");
  auto sink = [&](const exec::TaskEvent& ev) {
    if (auto* c = controller_ptr.load()) c->OnTaskEvent(ev);
  };
  auto executor = MakeExecutor(cfg, clock, sink);
  if (!executor.ok()) return Fail(executor.status().message());
  spdlog::info("executor: {}", (*executor)->Name());

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
  // Live GPU state (issue 12): drains kept in the store, per-queue rules;
  // the snapshot filler and the idle signal are wired to the telemetry
  // controller below (it is built after the job controller).
  controllers::GpuDrains drains(**store, clock);
  if (Status dst = drains.Load(); !dst.ok()) return Fail(dst.message());
  std::atomic<controllers::TelemetryController*> telemetry_ptr{nullptr};
  for (const auto& [name, q] : cfg.queues) {
    controllers::QueueLivePolicy p;
    p.idle = *controllers::ParseIdlePolicy(q.idle_policy, "queues." + name + ".idlePolicy");
    p.idle_util_percent = q.idle_util_percent;
    p.idle_after = q.idle_after;
    p.enforce = q.enforce;
    (name == "*" ? copts.live.default_queue : copts.live.queues[name]) = p;
  }
  // The telemetry controller's idle signal, reached once it exists.
  struct GpuIdleForward : controllers::IdleSignal {
    std::atomic<controllers::TelemetryController*>* t = nullptr;
    std::string_view Name() const override { return "gpu"; }
    controllers::IdleVerdict Check(const model::Job& job, const controllers::IdleRule& rule,
                                   TimeMs now) const override {
      auto* tc = t->load();
      return tc ? tc->idle_signal().Check(job, rule, now) : controllers::IdleVerdict{};
    }
  } gpu_idle;
  gpu_idle.t = &telemetry_ptr;
  copts.live.idle_signals.push_back(&gpu_idle);
  copts.live.fill_snapshot = [&](sched::ClusterSnapshot& snap) {
    if (auto* t = telemetry_ptr.load()) t->FillSnapshot(snap);
  };
  // Who asks (docs/security.md): the socket peer's uid, a token or a
  // browser session; there is no switch that turns this off.
  auto auth_store = store::AuthStore::Open(**store, cfg.data_dir + "/berth.db");
  if (!auth_store.ok()) {
    (*executor)->Shutdown();
    return Fail(auth_store.status().message());
  }
  auth::AuthenticatorOptions auth_opts;
  auth_opts.daemon_uid = ::geteuid();
  auth_opts.configured_admin = [&live](const std::string& user) {
    return live.Get()->auth.admins.count(user) > 0;
  };
  auth::Authenticator authenticator(**auth_store, store->get(), clock, auth_opts);
  // Each task gets a token of its job (BERTH_TOKEN): SDK and CLI calls from
  // inside it act for the job's owner. berthd refuses it once the job has
  // ended (and revokes it then).
  copts.task_env_for = [&authenticator](const model::Job& j) {
    std::map<std::string, std::string> env;
    auto t = authenticator.tokens().CreateForJob(j.id, j.spec.user);
    if (t.ok()) {
      env["BERTH_TOKEN"] = t->token;
    } else {
      spdlog::warn("job {}: no BERTH_TOKEN for its task: {}", j.id, t.status().message());
    }
    return env;
  };
  controllers::JobController controller(**store, **scheduler, **executor, *inventory, clock, copts);
  controller_ptr = &controller;
  Status st;

  // --- pipelines: step jobs go through the job controller; state in berth.db.
  auto pstore = store::PipelineStore::Open(**store, cfg.data_dir + "/berth.db");
  if (!pstore.ok()) return Fail(pstore.status().message());
  controllers::StepJobs step_jobs;
  // Step jobs need no fsync of their own: their run records them in a later
  // commit, so a power loss keeps both or neither.
  step_jobs.submit = [&](model::JobSpec spec) { return controller.Submit(std::move(spec), false); };
  step_jobs.cancel = [&](model::JobId id) { return controller.Cancel(id).status(); };
  step_jobs.read_log = [&](const model::Job& j, int64_t offset, int64_t limit) {
    return (*executor)->ReadLog({j.id, 0, j.attempts}, offset, limit);
  };
  step_jobs.account_for = [&](const std::string& user) { return (*executor)->AccountFor(user); };
  step_jobs.read_outputs = [&](const model::Job& j) {
    return (*executor)->ReadStepOutputs({j.id, 0, j.attempts});
  };
  controllers::PipelineControllerOptions popts;
  const char* artifact_root = std::getenv("BERTH_ARTIFACT_ROOT");
  popts.artifact_root = artifact_root && *artifact_root ? std::string(artifact_root)
                        : !cfg.artifact_root.empty()    ? cfg.artifact_root
                                                        : cfg.data_dir + "/artifacts";
  popts.max_fan_out = cfg.max_fan_out;
  controllers::PipelineController pipelines(**store, **pstore, step_jobs, clock, popts);
  // Cron schedules start runs through the pipeline controller.
  controllers::CronRuns cron_runs;
  cron_runs.submit = [&](const std::string& text, const std::map<std::string, std::string>& params,
                         const std::string& owner, const std::string& cron,
                         TimeMs scheduled) -> Result<int64_t> {
    ASSIGN_OR_RETURN(auto run, pipelines.Submit(text, params, owner, cron, scheduled));
    return run.id;
  };
  cron_runs.active = [&](const std::string& cron) { return pipelines.ActiveRuns(cron); };
  cron_runs.replace = [&](int64_t id, const std::string& why) { pipelines.Replace(id, why); };
  controllers::CronController crons(**pstore, cron_runs, clock);
  pipelines.AttachCron(&crons);
  // --- end pipelines

  // --- experiments: trials are jobs through the job controller; state in berth.db.
  auto estore = store::ExperimentStore::Open(**store, cfg.data_dir + "/berth.db");
  if (!estore.ok()) return Fail(estore.status().message());
  controllers::TrialJobs trial_jobs;
  // Like step jobs: the trial's row is written before and after, so a trial
  // job needs no fsync of its own (a restart finds it by its labels).
  trial_jobs.submit = [&](model::JobSpec spec) {
    return controller.Submit(std::move(spec), false);
  };
  trial_jobs.cancel = [&](model::JobId id) { return controller.Cancel(id).status(); };
  controllers::ExperimentControllerOptions xopts;
  xopts.metrics_root = cfg.data_dir + "/experiments";
  controllers::ExperimentController experiments(**store, **estore, trial_jobs, clock, xopts);
  // --- end experiments

  // GPU telemetry: the telemetry controller samples every interval, tells
  // the sampler who holds what, and records what it finds.
  controllers::TelemetrySource tsource;
  tsource.assignments = [&] {
    std::vector<gpu::Assignment> assignments;
    for (const auto& h : controller.GpuHolders())
      assignments.push_back({h.node, h.gpu, h.job, h.user, h.queue, h.share, h.gpu_memory});
    return assignments;
  };
  tsource.process_groups = [&] { return controller.ProcessGroups(); };
  tsource.record_event = [&](const std::string& type, model::JobId job, const std::string& message,
                             const nlohmann::json& data) {
    controller.RecordEvent(type, job, message, data);
  };
  tsource.memory_exceeded = [&](model::JobId job, const std::string& message) {
    controller.ReportMemoryExceeded(job, message);
  };
  tsource.drained = [&] { controller.Poke(); };
  controllers::TelemetryControllerOptions topts;
  topts.sampler.interval = cfg.telemetry_interval;
  topts.sampler.idle_util_percent = cfg.idle_util_percent;
  topts.sampler.idle_after = cfg.idle_after;
  topts.sampler.health_events = true;
  topts.drains = &drains;
  controllers::TelemetryController telemetry(**store, *inventory, clock, tsource, topts);
  telemetry_ptr = &telemetry;
  drains.OnChange([&](const std::string& node, int gpu, bool drained) {
    if (!drained) telemetry.ClearHealth(node, gpu);
    controller.Poke();
  });

  // Every controller, in one place: started in this order, stopped in reverse.
  controllers::ControllerSet controller_set;
  controller_set.Register(controller);
  controller_set.Register(pipelines);
  controller_set.Register(crons);
  controller_set.Register(telemetry);
  controller_set.Register(experiments);
  st = controller_set.StartAll();
  if (!st.ok()) {
    (*executor)->Shutdown();
    return Fail(st.message());
  }

  api::ApiHooks hooks;
  hooks.extra_metrics = [&] {
    return gpu::RenderPrometheus(telemetry.sampler()) + telemetry.RenderMetrics();
  };
  hooks.gpu_drain = [&](const std::string& node, int gpu) -> nlohmann::json {
    auto d = drains.Find(node, gpu);
    if (!d) return nullptr;
    return {{"reason", d->reason},
            {"source", d->source},
            {"actor", d->actor},
            {"time", FormatTime(d->time)},
            {"node", d->gpu < 0}};
  };
  hooks.drains = [&] {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& d : drains.List())
      out.push_back({{"node", d.node}, {"gpu", d.gpu}, {"reason", d.reason}, {"source", d.source}});
    return out;
  };
  hooks.set_drain = [&](const std::string& node, int gpu, bool drain, const std::string& reason,
                        const std::string& actor) -> Status {
    if (!drain) return drains.Undrain(node, gpu, actor);
    auto r = drains.Drain(node, gpu, reason, "manual", actor, true);
    return r.ok() ? Status::Ok() : r.status();
  };
  hooks.extra_routes = [&](http::Router& r) {  // pipelines
    api::RegisterPipelineRoutes(r, pipelines, **store, clock);
    api::RegisterCronRoutes(r, pipelines, **store, clock);
    api::RegisterExperimentRoutes(r, experiments, **store, clock);  // experiments
  };
  hooks.gpu_telemetry = [&](const std::string& node, int index) {
    return telemetry.GpuJson(node, index);
  };
  hooks.job_usage = [&](model::JobId id) { return telemetry.JobUsageJson(id); };

  api::ApiAuth api_auth;
  api_auth.authenticator = &authenticator;
  api_auth.store = auth_store->get();
  api_auth.config = [&live] { return live.Get()->auth; };

  api::ServerOptions aopts;
  aopts.host = cfg.host;
  aopts.port = cfg.port;
  aopts.version = BERTH_VERSION;
  aopts.policy = cfg.policy;
  aopts.data_dir = cfg.data_dir;
  // Also on a Unix socket in the data directory, where the caller's uid comes
  // from the kernel (SO_PEERCRED): open to every local user (0666), each
  // known by their uid.
  std::string socket_path = cfg.data_dir + "/" + kDaemonSocketName;
  if (socket_path.size() < 108) {
    aopts.unix_socket = socket_path;
    aopts.unix_socket_mode = 0666;
  } else {
    spdlog::warn("not listening on {}: a Unix socket path must be under 108 bytes", socket_path);
  }
  api::ApiServer server(controller, **store, **executor, *inventory, clock, aopts, hooks, api_auth);
  st = server.Start();
  if (!st.ok()) {
    controller_set.StopAll();
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
  spdlog::info("berthd {} listening on http://{}:{}{} (data in {}, policy {})", BERTH_VERSION,
               cfg.host, server.port(),
               aopts.unix_socket.empty() ? "" : " and " + aopts.unix_socket, cfg.data_dir,
               cfg.policy);
  if (!IsLoopbackHost(cfg.host))
    spdlog::warn(
        "listening on {}, not only on loopback: other machines that reach port {} can use the API",
        cfg.host, server.port());

  // SIGHUP rereads the configuration file (daemon/reloadable_config.h): what
  // may change at run time changes now, the rest is named in the log as
  // waiting for the next start, and a bad file changes nothing.
  int sig = 0;
  for (;;) {
    sigwait(&sigs, &sig);
    if (sig != SIGHUP) break;
    if (config_file.empty()) {
      spdlog::info("received SIGHUP: berthd was started without --config, nothing to reread");
      continue;
    }
    auto plan = PlanReload(config_file, *live.Get());
    if (!plan.ok()) {
      spdlog::error("received SIGHUP: reload refused, the configuration is unchanged: {}",
                    plan.status().message());
      continue;
    }
    for (const std::string& c : plan->changes) spdlog::info("reload: {}", c);
    for (const std::string& c : plan->need_restart) spdlog::warn("reload: {}", c);
    if (plan->changes.empty() && plan->need_restart.empty())
      spdlog::info("received SIGHUP: {} reread, nothing changed", config_file);
    spdlog::set_level(spdlog::level::from_str(plan->next.log_level));
    live.Set(std::move(plan->next));
  }
  spdlog::info("received {}, shutting down (running tasks keep running)", strsignal(sig));
  for (const std::string& dir : record_dirs) RemoveDaemonRecord(dir, ::getpid());
  server.Stop();
  controller_set.StopAll();
  (*executor)->Shutdown();
  spdlog::info("berthd stopped");
  return 0;
}

}  // namespace
}  // namespace berth::daemon

int main(int argc, char** argv) { return berth::daemon::Run(argc, argv); }
