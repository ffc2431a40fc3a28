// executor.slurm in berthd's configuration (docs/slurm.md).
#include "daemon/config.h"

namespace berth::daemon {

Status ParseSlurmConfig(model::SpecReader& r, SlurmConfig* c) {
  RETURN_IF_ERROR(r.String("conf", &c->conf));
  RETURN_IF_ERROR(r.String("binDir", &c->bin_dir));
  RETURN_IF_ERROR(r.String("partition", &c->partition));
  RETURN_IF_ERROR(r.String("runRoot", &c->run_root));
  RETURN_IF_ERROR(r.String("shimPath", &c->shim_path));
  RETURN_IF_ERROR(r.String("jobNamePrefix", &c->job_name_prefix));
  RETURN_IF_ERROR(r.Memory("gpuMemory", &c->gpu_memory));
  RETURN_IF_ERROR(r.String("gpuModel", &c->gpu_model));
  RETURN_IF_ERROR(r.Duration("pollInterval", &c->poll_interval));
  RETURN_IF_ERROR(r.Duration("nodeRefresh", &c->node_refresh));
  RETURN_IF_ERROR(r.Duration("killAfter", &c->kill_after));
  RETURN_IF_ERROR(r.Duration("commandTimeout", &c->command_timeout));
  RETURN_IF_ERROR(r.CheckNoUnknown());
  for (const auto& [key, path] : {std::pair<const char*, const std::string*>{"conf", &c->conf},
                                  {"binDir", &c->bin_dir},
                                  {"runRoot", &c->run_root},
                                  {"shimPath", &c->shim_path}}) {
    if (!path->empty() && (*path)[0] != '/')
      return r.Error(key, "must be an absolute path, got \"" + *path + "\"");
  }
  for (char ch : c->job_name_prefix) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '-' && ch != '_')
      return r.Error("jobNamePrefix", "letters, digits, '.', '-' and '_' only");
  }
  if (c->job_name_prefix.size() > 64) return r.Error("jobNamePrefix", "at most 64 characters");
  if (c->partition.find_first_of(" ,|'\"\n") != std::string::npos)
    return r.Error("partition", "one partition name");
  if (c->gpu_memory < 1) return r.Error("gpuMemory", "must be positive");
  if (c->poll_interval < 10 || c->poll_interval > 60000)
    return r.Error("pollInterval", "must be between 10ms and 1m");
  if (c->node_refresh < 100 || c->node_refresh > 600000)
    return r.Error("nodeRefresh", "must be between 100ms and 10m");
  if (c->kill_after < 0 || c->kill_after > 3600000)
    return r.Error("killAfter", "must be between 0 and 1h");
  if (c->command_timeout < 1000 || c->command_timeout > 600000)
    return r.Error("commandTimeout", "must be between 1s and 10m");
  return Status::Ok();
}

}  // namespace berth::daemon
