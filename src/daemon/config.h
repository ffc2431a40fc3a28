// berthd's configuration: a YAML file (--config) overridden by flags.
//
//   listen: 127.0.0.1:7420
//   dataDir: /var/lib/berth
//   artifactRoot: /mnt/nfs/berth-artifacts   # pipeline artifacts (default: <dataDir>/artifacts)
//   gpus: 4                 # declare N simulated GPUs (machines without NVIDIA GPUs)
//   logLevel: info
//   scheduler:
//     policy: dynamic       # the default
//     resyncInterval: 5s
//     options: {key: value}
//   store:
//     synchronous: FULL     # or NORMAL
//   executor:
//     kind: local           # or slurm (docs/slurm.md)
//     slurm: {conf: /etc/slurm/slurm.conf, partition: gpu, runRoot: /shared/berth/runs, ...}
//     logCapMiB: 100
//     runRetention: 7d      # remove run directories this long after their task ended (0: keep)
//     runAsOwner: auto      # auto: as root, each task runs as its owner's account;
//                           # true: the same, and berthd refuses to start unless root;
//                           # false: every task runs as berthd's user
//   pipelines:
//     maxFanOut: 10000      # most children of one withItems/withParam step (1..100000)
//   telemetry:
//     interval: 1s          # GPU sampling period
//     idleUtilPercent: 5    # a held GPU below this utilization is idle
//     idleAfter: 5m         # idle this long -> a GpuIdle event and idle GPU-seconds
//   queues:                 # per queue (a queue "*": every queue not listed)
//     research: {idlePolicy: reclaim, idleUtilPercent: 5, idleAfter: 30m, enforce: true}
#pragma once

#include <map>
#include <string>

#include "common/clock.h"
#include "common/quantity.h"
#include "common/status.h"
#include "model/spec_reader.h"

namespace berth::daemon {

// executor.slurm (docs/slurm.md); read only with executor.kind: slurm.
struct SlurmConfig {
  std::string conf;       // SLURM_CONF for the tools; empty: theirs
  std::string bin_dir;    // where sbatch, squeue, ... are; empty: /usr/bin
  std::string partition;  // empty: the default partition, every node
  std::string run_root;   // seen by every node at this path; empty: <dataDir>/runs
  std::string shim_path;  // berth-shim on every node; empty: beside berthd
  std::string job_name_prefix = "berth.";
  MiB gpu_memory = 81920;
  std::string gpu_model = "Slurm GPU";
  DurationMs poll_interval = 250;
  DurationMs node_refresh = 2000;
  DurationMs kill_after = 10000;
  DurationMs command_timeout = 30000;
};

// Reads the `executor.slurm` map.
Status ParseSlurmConfig(model::SpecReader& r, SlurmConfig* c);

// A queue's live-state rules (controllers/live_state.h QueueLivePolicy).
struct QueueConfig {
  std::string idle_policy = "report";  // report | reclaim | stop
  int idle_util_percent = 5;
  DurationMs idle_after = 30 * 60 * 1000;
  bool enforce = false;  // stop a fraction whose process exceeds its gpuMemory
};

struct DaemonConfig {
  std::string host = "127.0.0.1";
  int port = 7420;
  std::string data_dir;  // default: DefaultDataDir() (common/daemon_record.h)
  // Pipeline runs' artifact directories; empty: <data_dir>/artifacts.
  // $BERTH_ARTIFACT_ROOT wins over it.
  std::string artifact_root;
  int gpus = -1;  // -1: discover (NVML), else declare this many
  std::string log_level = "info";
  std::string policy = "dynamic";  // Berth's default (docs/scheduling.md)
  std::map<std::string, std::string> scheduler_options;
  // A scheduling cycle runs at least this often even when nothing changes.
  DurationMs resync_interval = 5000;
  std::string synchronous = "FULL";
  int64_t log_cap_mib = 100;
  DurationMs run_retention = 7LL * 24 * 3600 * 1000;
  std::string run_as_owner = "auto";    // auto, true or false
  std::string executor_kind = "local";  // local or slurm
  SlurmConfig slurm;
  DurationMs telemetry_interval = 1000;   // GPU sampling period
  int idle_util_percent = 5;              // a held GPU below this is idle
  DurationMs idle_after = 5 * 60 * 1000;  // idle this long -> GpuIdle event
  // The most children of one fan-out step (model/limits.h).
  int64_t max_fan_out = 10000;
  std::map<std::string, QueueConfig> queues;  // by queue name; "*": the others
};

// Reads `path` into `config` (fields absent from the file keep their value).
Status LoadConfigFile(const std::string& path, DaemonConfig* config);
// The same for the file's text; `path` names it in errors.
Status ParseConfig(const std::string& text, const std::string& path, DaemonConfig* config);

}  // namespace berth::daemon
