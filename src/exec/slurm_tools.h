// Slurm's command-line tools as Berth uses them: sinfo for the nodes, squeue
// for job states, sbatch to submit, scancel to signal and cancel. Each call
// runs the tool as a child process (no shell) with SLURM_CONF set, a bounded
// time and bounded output; the parsers are pure and tested on their own.
//
// Why the tools and not slurmrestd: see docs/slurm.md ("Talking to Slurm").
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/quantity.h"
#include "common/status.h"

namespace berth::exec {

struct SlurmToolsOptions {
  std::string bin_dir;    // where sbatch, squeue, ...; empty: /usr/bin
  std::string conf;       // SLURM_CONF for the tools; empty: the tools' default
  std::string partition;  // empty: Slurm's default partition (sinfo: every node)
  DurationMs timeout = 30 * kSecond;
};

struct ToolResult {
  int exit_code = 0;
  std::string out;
  std::string err;
};

// One node as sinfo reports it.
struct SlurmNode {
  std::string name;
  std::string address;  // NodeAddr
  MilliCpu cpu = 0;
  MiB memory = 0;
  int gpus = 0;          // gres gpu count (every type together)
  std::string gpu_type;  // the first typed gres ("a100" of gpu:a100:4), else empty
  std::string state;     // sinfo's %T, e.g. "idle", "mixed", "down*", "drained"
  bool usable = false;   // Berth may place work on it (UsableNodeState)
};

// One job as squeue reports it.
struct SlurmJob {
  std::string id;
  std::string name;
  std::string state;   // PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, NODE_FAIL, ...
  std::string nodes;   // where it runs (empty while pending)
  std::string reason;  // why it waits or how it ended
};

// Parses `sinfo -h -N -o '%N|%o|%c|%m|%G|%T'` (a node listed twice, in two
// partitions, counts once). Errors name the line that cannot be read.
Result<std::vector<SlurmNode>> ParseSinfo(const std::string& text);
// The gpu count and first type in a gres string: "gpu:4", "gpu:a100:2(S:0-1)",
// "gpu:2,gpu:v100:2", "(null)".
void ParseGpuGres(const std::string& gres, int* count, std::string* type);
// True for node states that take new work: idle, mixed, allocated,
// completing, planned, and none of down, drain, fail, maint, not
// responding ("*"), powered down ("~"), rebooting.
bool UsableNodeState(const std::string& state);
// Parses `squeue -h -t all -o '%i|%j|%T|%N|%r'`.
Result<std::vector<SlurmJob>> ParseSqueue(const std::string& text);
// True once a job's state is final (it runs no more).
bool SlurmJobEnded(const std::string& state);

class SlurmTools {
 public:
  explicit SlurmTools(SlurmToolsOptions options);

  // Runs `tool` (a name in bin_dir) with `args`, `input` on its stdin.
  // Errors only when it cannot be run or runs past the timeout (it is
  // killed); a non-zero exit is in the result.
  Result<ToolResult> Run(const std::string& tool, const std::vector<std::string>& args,
                         const std::string& input = "") const;

  // The partition's nodes (sinfo).
  Result<std::vector<SlurmNode>> Nodes() const;
  // Every job Slurm still knows, finished ones included until MinJobAge (squeue).
  Result<std::vector<SlurmJob>> Jobs() const;
  // sbatch --parsable `args` with `script` on stdin; the job id.
  Result<std::string> Submit(const std::vector<std::string>& args, const std::string& script) const;
  // scancel: the whole job (TERM, then KILL after Slurm's KillWait), or with
  // `signal` only that signal to the batch script's process.
  Status Cancel(const std::string& id, const std::string& signal = "") const;

  const SlurmToolsOptions& options() const { return options_; }

 private:
  // "tool: exit N: <stderr's first line>".
  static std::string Failure(const std::string& tool, const ToolResult& r);
  SlurmToolsOptions options_;
};

}  // namespace berth::exec
