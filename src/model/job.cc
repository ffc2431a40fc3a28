#include "model/job.h"

#include "model/node.h"

#include <algorithm>
#include <cctype>

#include "common/text.h"
#include "model/limits.h"
#include "model/spec_reader.h"

namespace berth::model {

const char* JobStateName(JobState s) {
  switch (s) {
    case JobState::kPending:
      return "Pending";
    case JobState::kScheduled:
      return "Scheduled";
    case JobState::kRunning:
      return "Running";
    case JobState::kSucceeded:
      return "Succeeded";
    case JobState::kFailed:
      return "Failed";
    case JobState::kCancelled:
      return "Cancelled";
    case JobState::kPreempted:
      return "Preempted";
  }
  return "Unknown";
}

Result<JobState> ParseJobState(const std::string& s) {
  std::string l = s;
  std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return std::tolower(c); });
  for (JobState st :
       {JobState::kPending, JobState::kScheduled, JobState::kRunning, JobState::kSucceeded,
        JobState::kFailed, JobState::kCancelled, JobState::kPreempted}) {
    std::string n = JobStateName(st);
    std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
    if (n == l) return st;
  }
  return InvalidArgument("unknown job state \"" + s +
                         "\" (one of Pending, Scheduled, Running, Succeeded, Failed, Cancelled, "
                         "Preempted)");
}

bool IsTerminal(JobState s) {
  return s == JobState::kSucceeded || s == JobState::kFailed || s == JobState::kCancelled;
}

bool IsValidTransition(JobState from, JobState to) {
  using S = JobState;
  if (IsTerminal(from)) return false;
  if (to == S::kCancelled) return true;
  switch (from) {
    case S::kPending:
      return to == S::kScheduled;
    case S::kScheduled:
      return to == S::kRunning || to == S::kFailed || to == S::kPreempted || to == S::kSucceeded;
    case S::kRunning:
      return to == S::kSucceeded || to == S::kFailed || to == S::kPreempted;
    case S::kPreempted:
      return to == S::kPending;
    default:
      return false;
  }
}

const char* PriorityClassName(PriorityClass c) {
  switch (c) {
    case PriorityClass::kScavenger:
      return "scavenger";
    case PriorityClass::kBatch:
      return "batch";
    case PriorityClass::kInteractive:
      return "interactive";
  }
  return "batch";
}

Result<PriorityClass> ParsePriorityClass(const std::string& name, const std::string& field) {
  for (PriorityClass c :
       {PriorityClass::kScavenger, PriorityClass::kBatch, PriorityClass::kInteractive}) {
    if (name == PriorityClassName(c)) return c;
  }
  return InvalidArgument(field + ": unknown priority class \"" + name +
                         "\" (one of scavenger, batch, interactive)");
}

Status ValidatePriority(int64_t priority, const std::string& field) {
  if (priority < kMinPriority || priority > kMaxPriority) {
    return InvalidArgument(field + ": must be between " + std::to_string(kMinPriority) + " and " +
                           std::to_string(kMaxPriority) + ", got " + std::to_string(priority));
  }
  return Status::Ok();
}

DurationMs PreemptionGrace(PriorityClass c, DurationMs termination_grace) {
  return c == PriorityClass::kScavenger ? std::min(termination_grace, kScavengerMaxGrace)
                                        : termination_grace;
}

Result<JobSpec> ParseJobSpec(const std::string& text) {
  ASSIGN_OR_RETURN(YAML::Node root, ParseDocument(text));
  SpecReader doc(root, "");
  JobSpec spec;
  std::string api_version, kind;
  RETURN_IF_ERROR(doc.String("apiVersion", &api_version, true));
  if (api_version != "berth/v1")
    return doc.Error("apiVersion", "must be \"berth/v1\", got \"" + api_version + "\"");
  RETURN_IF_ERROR(doc.String("kind", &kind, true));
  if (kind != "Job" && kind != "TrainingJob")
    return doc.Error("kind", "must be \"Job\" or \"TrainingJob\" here, got \"" + kind + "\"");

  SpecReader meta = doc.Child("metadata");
  if (meta.node().IsDefined() && !meta.node().IsNull()) {
    if (!meta.IsMap()) return meta.Error("", "must be a map");
    RETURN_IF_ERROR(meta.String("name", &spec.name));
    RETURN_IF_ERROR(meta.String("user", &spec.user));
    RETURN_IF_ERROR(meta.StringMap("labels", &spec.labels));
    RETURN_IF_ERROR(meta.CheckNoUnknown());
  }

  SpecReader s = doc.Child("spec");
  if (!s.IsMap()) return s.Error("", "is required and must be a map");
  std::vector<std::string> command, args;
  RETURN_IF_ERROR(s.StringList("command", &command));
  RETURN_IF_ERROR(s.StringList("args", &args));
  spec.command = command;
  spec.command.insert(spec.command.end(), args.begin(), args.end());
  RETURN_IF_ERROR(s.StringMap("env", &spec.env));
  RETURN_IF_ERROR(s.String("workingDir", &spec.working_dir));
  RETURN_IF_ERROR(s.String("queue", &spec.queue));
  RETURN_IF_ERROR(s.Int("priority", &spec.priority));
  std::string priority_class;
  RETURN_IF_ERROR(s.String("priorityClassName", &priority_class));
  if (s.Has("priorityClassName")) {
    ASSIGN_OR_RETURN(spec.priority_class,
                     ParsePriorityClass(priority_class, "spec.priorityClassName"));
  }
  RETURN_IF_ERROR(s.Duration("timeLimit", &spec.time_limit));
  RETURN_IF_ERROR(s.Seconds("terminationGracePeriodSeconds", &spec.termination_grace));

  SpecReader res = s.Child("resources");
  if (res.node().IsDefined() && !res.node().IsNull()) {
    if (!res.IsMap()) return res.Error("", "must be a map");
    RETURN_IF_ERROR(res.Milli("gpus", &spec.resources.gpus));
    RETURN_IF_ERROR(res.Memory("gpuMemory", &spec.resources.gpu_memory));
    RETURN_IF_ERROR(res.Milli("cpu", &spec.resources.cpu));
    RETURN_IF_ERROR(res.Memory("memory", &spec.resources.memory));
    RETURN_IF_ERROR(res.StringList("gpuModel", &spec.resources.gpu_models));
    RETURN_IF_ERROR(res.CheckNoUnknown());
  }
  if (kind == "TrainingJob") {
    TrainingSpec t;
    int64_t gpus_per_worker = -1;
    RETURN_IF_ERROR(ParseTrainingFields(s, &t, &gpus_per_worker));
    if (gpus_per_worker >= 0) spec.resources.gpus = gpus_per_worker;
    if (t.active_deadline > 0 && spec.time_limit == 0) spec.time_limit = t.active_deadline;
    spec.training = t;
  }
  RETURN_IF_ERROR(s.CheckNoUnknown());
  RETURN_IF_ERROR(doc.CheckNoUnknown());
  RETURN_IF_ERROR(ValidateJobSpec(spec));
  if (spec.name.empty()) {  // as Slurm names a job: after its command
    const std::string& cmd = spec.command[0];
    spec.name = cmd.substr(cmd.find_last_of('/') + 1);
    if (spec.name.empty()) spec.name = cmd;
    // A name given is refused with control characters; one taken from a
    // program's file name has them written out instead.
    std::string name = EscapeForTerminal(spec.name);
    for (size_t p = 0; (p = name.find('\t', p)) != std::string::npos;) name.replace(p, 1, "\\t");
    spec.name = TruncateUtf8(name, kMaxNameBytes);
  }
  return spec;
}

Status ValidateJobSpec(const JobSpec& spec) {
  if (spec.command.empty() || spec.command[0].empty())
    return InvalidArgument("spec.command: is required (the program to run)");
  const Resources& r = spec.resources;
  if (r.gpus < 0)
    return InvalidArgument("spec.resources.gpus: must be >= 0, got " + FormatMilli(r.gpus));
  if (r.gpus > kWholeGpu && r.gpus % kWholeGpu != 0)
    return InvalidArgument("spec.resources.gpus: a request above 1 GPU must be whole, got " +
                           FormatMilli(r.gpus));
  if (r.gpu_memory > 0 && r.gpus == 0)
    return InvalidArgument("spec.resources.gpuMemory: needs spec.resources.gpus > 0");
  if (!r.gpu_models.empty() && r.gpus == 0)
    return InvalidArgument("spec.resources.gpuModel: needs spec.resources.gpus > 0");
  if (r.gpu_models.size() > kMaxGpuModels)
    return InvalidArgument("spec.resources.gpuModel: at most " + std::to_string(kMaxGpuModels) +
                           " models, got " + std::to_string(r.gpu_models.size()));
  for (const std::string& m : r.gpu_models) {
    if (!IsCanonicalGpuModel(m))
      return InvalidArgument("spec.resources.gpuModel: \"" + EscapeForTerminal(m) +
                             "\" is not a GPU model name (letters, digits, '-', at most 32; "
                             "e.g. A100, V100M32, T4)");
  }
  if (r.cpu < 0) return InvalidArgument("spec.resources.cpu: must be >= 0");
  if (r.memory < 0) return InvalidArgument("spec.resources.memory: must be >= 0");
  RETURN_IF_ERROR(CheckDuration(spec.time_limit, "spec.timeLimit"));
  RETURN_IF_ERROR(CheckDuration(spec.termination_grace, "spec.terminationGracePeriodSeconds"));
  if (spec.queue.empty()) return InvalidArgument("spec.queue: must not be empty");
  RETURN_IF_ERROR(CheckName(spec.queue, "spec.queue"));
  if (!spec.name.empty()) RETURN_IF_ERROR(CheckName(spec.name, "metadata.name"));
  RETURN_IF_ERROR(CheckName(spec.user, "metadata.user"));
  RETURN_IF_ERROR(CheckLabels(spec.labels, "metadata.labels"));
  RETURN_IF_ERROR(CheckCommand(spec.command, "spec.command"));
  RETURN_IF_ERROR(CheckEnv(spec.env, "spec.env"));
  RETURN_IF_ERROR(CheckText(spec.working_dir, "spec.workingDir", kMaxPathBytes));
  RETURN_IF_ERROR(ValidatePriority(spec.priority, "spec.priority"));
  if (spec.priority_class < PriorityClass::kScavenger ||
      spec.priority_class > PriorityClass::kInteractive)
    return InvalidArgument("spec.priorityClassName: not one of scavenger, batch, interactive");
  if (!spec.working_dir.empty() && spec.working_dir[0] != '/')
    return InvalidArgument("spec.workingDir: must be an absolute path, got \"" + spec.working_dir +
                           "\"");
  if (spec.training) RETURN_IF_ERROR(ValidateTrainingSpec(*spec.training));
  return Status::Ok();
}

nlohmann::json JobSpecToJson(const JobSpec& spec) {
  nlohmann::json meta = {{"name", spec.name}, {"user", spec.user}};
  if (!spec.labels.empty()) meta["labels"] = spec.labels;
  nlohmann::json res = {{"gpus", FormatMilli(spec.resources.gpus)},
                        {"cpu", FormatMilli(spec.resources.cpu)},
                        {"memory", std::to_string(spec.resources.memory) + "Mi"}};
  if (spec.resources.gpu_memory > 0)
    res["gpuMemory"] = std::to_string(spec.resources.gpu_memory) + "Mi";
  if (!spec.resources.gpu_models.empty()) res["gpuModel"] = spec.resources.gpu_models;
  nlohmann::json s = {{"command", spec.command},
                      {"queue", spec.queue},
                      {"priority", spec.priority},
                      {"priorityClassName", PriorityClassName(spec.priority_class)},
                      {"resources", res},
                      {"terminationGracePeriodSeconds", spec.termination_grace / kSecond}};
  if (!spec.env.empty()) s["env"] = spec.env;
  if (!spec.working_dir.empty()) s["workingDir"] = spec.working_dir;
  if (spec.time_limit > 0) s["timeLimit"] = std::to_string(spec.time_limit) + "ms";
  if (spec.training) AddTrainingFields(*spec.training, s);
  return {{"apiVersion", "berth/v1"},
          {"kind", spec.training ? "TrainingJob" : "Job"},
          {"metadata", meta},
          {"spec", s}};
}

MilliGpu RequestedGpus(const JobSpec& spec) {
  return spec.resources.gpus * (spec.training ? spec.training->MaxWorkers() : 1);
}

MilliGpu MinRequestedGpus(const JobSpec& spec) {
  return spec.resources.gpus * (spec.training ? spec.training->MinWorkers() : 1);
}

MilliGpu HeldGpus(const Job& job) {
  if (job.state != JobState::kScheduled && job.state != JobState::kRunning) return 0;
  // A placement without a share holds whole GPUs, or the fraction asked for.
  MilliGpu asked = job.spec.resources.gpus;
  MilliGpu fallback = asked >= kWholeGpu ? kWholeGpu : asked;
  auto held = [fallback](const Placement& p) {
    return static_cast<MilliGpu>(p.gpus.size()) * (p.gpu_share > 0 ? p.gpu_share : fallback);
  };
  if (job.placement.workers.empty()) return held(job.placement);
  MilliGpu total = 0;
  for (const Placement& w : job.placement.workers) total += held(w);
  return total;
}

nlohmann::json JobToJson(const Job& job) {
  nlohmann::json j = {
      {"id", job.id},
      {"name", job.spec.name},
      {"user", job.spec.user},
      {"queue", job.spec.queue},
      {"priority", job.spec.priority},
      {"priorityClassName", PriorityClassName(job.spec.priority_class)},
      {"state", JobStateName(job.state)},
      {"exitCode", job.exit_code ? nlohmann::json(*job.exit_code) : nlohmann::json(nullptr)},
      {"node", job.placement.node},
      {"gpus", job.placement.gpus},
      {"gpuUuids", job.placement.gpu_uuids},
      {"gpuShare", FormatMilli(job.placement.gpu_share)},
      {"submitTime", FormatTime(job.submit_time)},
      {"scheduledTime", FormatTime(job.schedule_time)},
      {"startTime", FormatTime(job.start_time)},
      {"endTime", FormatTime(job.end_time)},
      {"message", job.message},
      {"attempts", job.attempts},
      {"spec", JobSpecToJson(job.spec)},
  };
  j["gpusRequested"] = FormatMilli(RequestedGpus(job.spec));
  j["gpusHeld"] = FormatMilli(HeldGpus(job));
  if (job.spec.training) {
    j["gpusPerWorker"] = FormatMilli(job.spec.resources.gpus);
    if (job.spec.training->IsElastic())
      j["gpusRequestedMin"] = FormatMilli(MinRequestedGpus(job.spec));
  }
  if (job.attained_service > 0) j["attainedGpuSeconds"] = job.attained_service / 1000.0;
  if (job.queued_since > 0) j["requeuedTime"] = FormatTime(job.queued_since);
  if (!job.stop_reason.empty()) {
    j["stopReason"] = job.stop_reason;
    j["stopDeadline"] = FormatTime(job.stop_deadline);
  }
  if (job.spec.training) {
    j["kind"] = "TrainingJob";
    nlohmann::json workers = nlohmann::json::array();
    for (size_t i = 0; i < job.placement.workers.size(); ++i) {
      const Placement& w = job.placement.workers[i];
      workers.push_back({{"rank", i}, {"node", w.node}, {"gpus", w.gpus}});
    }
    j["workers"] = workers;
  }
  return j;
}

}  // namespace berth::model
