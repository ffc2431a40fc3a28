#include "daemon/config.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "common/net.h"
#include "model/spec_reader.h"

namespace berth::daemon {

Status LoadConfigFile(const std::string& path, DaemonConfig* c) {
  std::ifstream in(path);
  if (!in) return InvalidArgument("--config: cannot read \"" + path + "\"");
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfig(ss.str(), path, c);
}

Status ParseConfig(const std::string& text, const std::string& path, DaemonConfig* c) {
  auto loaded = model::LoadYamlBounded(text, path);
  if (!loaded.ok()) return loaded.status();
  YAML::Node root = *loaded;
  if (!root.IsDefined() || root.IsNull()) return Status::Ok();
  if (!root.IsMap()) return InvalidArgument(path + ": must be a map");
  model::SpecReader r(root, "");
  auto ctx = [&](Status st) { return st.WithContext(path); };
  std::string listen;
  if (auto st = r.String("listen", &listen); !st.ok()) return ctx(st);
  if (!listen.empty()) {
    if (auto st = ParseListen(listen, &c->host, &c->port); !st.ok()) return ctx(st);
  }
  if (auto st = r.String("dataDir", &c->data_dir); !st.ok()) return ctx(st);
  if (auto st = r.String("artifactRoot", &c->artifact_root); !st.ok()) return ctx(st);
  int64_t gpus = c->gpus;
  if (auto st = r.Int("gpus", &gpus); !st.ok()) return ctx(st);
  if (gpus < -1 || gpus > 1024)
    return ctx(InvalidArgument("gpus: must be in 0..1024, got " + std::to_string(gpus)));
  c->gpus = static_cast<int>(gpus);
  if (auto st = r.String("logLevel", &c->log_level); !st.ok()) return ctx(st);
  model::SpecReader sched = r.Child("scheduler");
  if (sched.IsMap()) {
    if (auto st = sched.String("policy", &c->policy); !st.ok()) return ctx(st);
    if (auto st = sched.StringMap("options", &c->scheduler_options); !st.ok()) return ctx(st);
    if (auto st = sched.Duration("resyncInterval", &c->resync_interval); !st.ok()) return ctx(st);
    if (c->resync_interval < 100 || c->resync_interval > 3600 * 1000)
      return ctx(InvalidArgument("scheduler.resyncInterval: must be between 100ms and 1h, got " +
                                 std::to_string(c->resync_interval) + "ms"));
    if (auto st = sched.CheckNoUnknown(); !st.ok()) return ctx(st);
  }
  model::SpecReader store = r.Child("store");
  if (store.IsMap()) {
    if (auto st = store.String("synchronous", &c->synchronous); !st.ok()) return ctx(st);
    if (c->synchronous != "FULL" && c->synchronous != "NORMAL")
      return ctx(InvalidArgument("store.synchronous: must be FULL or NORMAL, got \"" +
                                 c->synchronous + "\""));
    if (auto st = store.CheckNoUnknown(); !st.ok()) return ctx(st);
  }
  model::SpecReader ex = r.Child("executor");
  if (ex.IsMap()) {
    if (auto st = ex.Int("logCapMiB", &c->log_cap_mib); !st.ok()) return ctx(st);
    if (auto st = ex.Duration("runRetention", &c->run_retention); !st.ok()) return ctx(st);
    if (auto st = ex.String("runAsOwner", &c->run_as_owner); !st.ok()) return ctx(st);
    if (c->run_as_owner != "auto" && c->run_as_owner != "true" && c->run_as_owner != "false")
      return ctx(InvalidArgument("executor.runAsOwner: must be auto, true or false, got \"" +
                                 c->run_as_owner + "\""));
    if (auto st = ex.String("kind", &c->executor_kind); !st.ok()) return ctx(st);
    if (c->executor_kind != "local" && c->executor_kind != "slurm")
      return ctx(InvalidArgument("executor.kind: must be local or slurm, got \"" +
                                 c->executor_kind + "\""));
    model::SpecReader slurm = ex.Child("slurm");
    if (ex.Has("slurm")) {
      if (!slurm.IsMap()) return ctx(InvalidArgument("executor.slurm: must be a map"));
      if (auto st = ParseSlurmConfig(slurm, &c->slurm); !st.ok()) return ctx(st);
    }
    if (c->log_cap_mib < 1 || c->log_cap_mib > (1 << 20))
      return ctx(InvalidArgument("executor.logCapMiB: must be in 1..1048576, got " +
                                 std::to_string(c->log_cap_mib)));
    if (auto st = ex.CheckNoUnknown(); !st.ok()) return ctx(st);
  }
  model::SpecReader pipes = r.Child("pipelines");
  if (pipes.IsMap()) {
    if (auto st = pipes.Int("maxFanOut", &c->max_fan_out); !st.ok()) return ctx(st);
    if (c->max_fan_out < 1 || c->max_fan_out > model::kMaxFanOut)
      return ctx(InvalidArgument("pipelines.maxFanOut: must be in 1.." +
                                 std::to_string(model::kMaxFanOut) + ", got " +
                                 std::to_string(c->max_fan_out)));
    if (auto st = pipes.CheckNoUnknown(); !st.ok()) return ctx(st);
  }
  model::SpecReader tel = r.Child("telemetry");
  if (tel.IsMap()) {
    if (auto st = tel.Duration("interval", &c->telemetry_interval); !st.ok()) return ctx(st);
    if (c->telemetry_interval < 100)
      return ctx(InvalidArgument("telemetry.interval: must be at least 100ms"));
    int64_t pct = c->idle_util_percent;
    if (auto st = tel.Int("idleUtilPercent", &pct); !st.ok()) return ctx(st);
    if (pct < 0 || pct > 100)
      return ctx(InvalidArgument("telemetry.idleUtilPercent: must be in 0..100"));
    c->idle_util_percent = static_cast<int>(pct);
    if (auto st = tel.Duration("idleAfter", &c->idle_after); !st.ok()) return ctx(st);
    if (auto st = tel.CheckNoUnknown(); !st.ok()) return ctx(st);
  }
  model::SpecReader queues = r.Child("queues");
  if (queues.node().IsDefined() && !queues.node().IsNull()) {
    if (!queues.IsMap()) return ctx(InvalidArgument("queues: must be a map of queue names"));
    if (queues.node().size() > 1000) return ctx(InvalidArgument("queues: more than 1000 queues"));
    for (const auto& kv : queues.node()) {
      if (!kv.first.IsScalar()) return ctx(InvalidArgument("queues: a queue name must be text"));
      std::string name = kv.first.Scalar();
      if (name.empty() || name.size() > 253)
        return ctx(InvalidArgument("queues: a queue name must have 1..253 characters"));
      model::SpecReader q = queues.Child(name);
      if (!q.IsMap()) return ctx(InvalidArgument("queues." + name + ": must be a map"));
      QueueConfig qc;
      if (auto st = q.String("idlePolicy", &qc.idle_policy); !st.ok()) return ctx(st);
      if (qc.idle_policy != "report" && qc.idle_policy != "reclaim" && qc.idle_policy != "stop")
        return ctx(InvalidArgument("queues." + name + ".idlePolicy: \"" + qc.idle_policy +
                                   "\" is not one of report, reclaim, stop"));
      int64_t pct = qc.idle_util_percent;
      if (auto st = q.Int("idleUtilPercent", &pct); !st.ok()) return ctx(st);
      if (pct < 1 || pct > 100)
        return ctx(InvalidArgument("queues." + name + ".idleUtilPercent: must be in 1..100"));
      qc.idle_util_percent = static_cast<int>(pct);
      if (auto st = q.Duration("idleAfter", &qc.idle_after); !st.ok()) return ctx(st);
      if (qc.idle_after < 1000)
        return ctx(InvalidArgument("queues." + name + ".idleAfter: must be at least 1s"));
      if (auto st = q.Bool("enforce", &qc.enforce); !st.ok()) return ctx(st);
      if (auto st = q.CheckNoUnknown(); !st.ok()) return ctx(st);
      c->queues[name] = qc;
    }
  }
  // auth: is read by LoadReloadableConfig (it may change on SIGHUP).
  (void)r.Child("auth");
  if (auto st = r.CheckNoUnknown(); !st.ok()) return ctx(st);
  return Status::Ok();
}

}  // namespace berth::daemon
