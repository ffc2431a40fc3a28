#include "exec/slurm_executor.h"

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "exec/local_executor.h"
#include "exec/run_files.h"
#include "exec/step_files.h"
#include "exec/task_log.h"

namespace berth::exec {

namespace fs = std::filesystem;

namespace {

// Written by the batch script before the shim starts: what Slurm bound.
constexpr char kSlurmEnvFile[] = "slurm.env";
// Slurm's own output for the batch step (the task's goes to output.log).
constexpr char kSlurmOutFile[] = "slurm.out";
// The job id sbatch returned (for operators; berthd finds jobs by name).
constexpr char kSlurmJobFile[] = "slurm_job_id";

std::string JoinInts(const std::vector<int>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

// 'text' for /bin/sh, whatever it holds.
std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

// What the batch script recorded: node=, gpus=, job=.
std::map<std::string, std::string> ReadSlurmEnv(const std::string& dir) {
  std::map<std::string, std::string> kv;
  auto text = ReadWholeFile(JoinPath(dir, kSlurmEnvFile));
  if (!text.ok()) return kv;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    size_t eq = line.find('=');
    if (eq != std::string::npos) kv[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return kv;
}

std::vector<int> ParseInts(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      out.push_back(std::stoi(item));
    } catch (const std::exception&) {
    }
  }
  return out;
}

// A job id's number ("123", or 123 of an array's "123_4"); -1 if none.
int64_t JobNumber(const std::string& id) {
  int64_t n = 0;
  size_t i = 0;
  for (; i < id.size() && i < 18 && id[i] >= '0' && id[i] <= '9'; ++i) n = n * 10 + (id[i] - '0');
  return i == 0 ? -1 : n;
}

// True for sbatch failures that say slurmctld is down or unreachable (as
// opposed to a job it refuses).
bool SlurmUnreachable(const std::string& message) {
  for (const char* m :
       {"Unable to contact slurm controller", "Socket timed out", "Zero Bytes were transmitted",
        "temporarily unable", "Connection refused", "no answer within"}) {
    if (message.find(m) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

SlurmExecutor::SlurmExecutor(SlurmExecutorOptions options, Clock& clock, TaskEventSink sink)
    : options_(std::move(options)), tools_(options_.tools), clock_(clock), sink_(std::move(sink)) {
  thread_ = std::thread([this] { PollLoop(); });
}

SlurmExecutor::~SlurmExecutor() { Shutdown(); }

std::string SlurmExecutor::RunDir(const TaskKey& key) const {
  return JoinPath(options_.run_root, key.ToString());
}

std::string SlurmExecutor::BatchScript(const std::string& dir, const std::string& shim) {
  std::string s = "#!/bin/sh\n";
  s += "# berth task: the shim runs the command (spec.json) and writes its log and status.\n";
  s += "d=" + ShellQuote(dir) + "\n";
  s += "printf 'node=%s\\ngpus=%s\\njob=%s\\n' \"${SLURMD_NODENAME:-}\" \"${SLURM_JOB_GPUS:-}\" "
       "\"${SLURM_JOB_ID:-}\" > \"$d/slurm.env.tmp\" && mv -f \"$d/slurm.env.tmp\" "
       "\"$d/slurm.env\"\n";
  s += "exec " + ShellQuote(shim) + " --run-dir \"$d\"\n";
  return s;
}

Result<LogChunk> SlurmExecutor::ReadLog(const TaskKey& key, int64_t offset, int64_t limit) const {
  return ReadTaskLog(RunDir(key), offset, limit);
}

Result<std::string> SlurmExecutor::ReadStepOutputs(const TaskKey& key) const {
  ASSIGN_OR_RETURN(std::string text, ReadWholeFile(JoinPath(RunDir(key), kStatusFile)));
  ASSIGN_OR_RETURN(RunStatus status, ParseRunStatus(text));
  if (status.step_outputs.empty())
    return NotFound(key.ToString() + ": the task's supervisor reported no step outputs");
  return status.step_outputs;
}

Status SlurmExecutor::Start(const TaskSpec& spec) {
  if (spec.argv.empty() || spec.argv[0].empty())
    return InvalidArgument("argv: must name a command");
  if (spec.node.empty()) return InvalidArgument("node: the Slurm executor needs a node");
  const std::string key_name = spec.key.ToString();
  const std::string dir = RunDir(spec.key);
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stop_) return FailedPrecondition("slurm executor: shut down");
    if (tasks_.count(spec.key)) return AlreadyExists(key_name + ": already running");
  }

  // The owner's account (as root), for --uid/--gid and the run directory.
  int64_t uid = -1, gid = -1;
  std::string user_name, home, shell;
  if (options_.run_as_owner && !spec.user.empty() && ::geteuid() == 0) {
    struct passwd pw;
    struct passwd* found = nullptr;
    std::vector<char> buf(16384);
    int rc = ::getpwnam_r(spec.user.c_str(), &pw, buf.data(), buf.size(), &found);
    if (found == nullptr) {
      return FailedPrecondition(
          "user \"" + spec.user + "\": " +
          (rc != 0 ? std::string("cannot look the account up: ") + std::strerror(rc)
                   : std::string("no such account on this machine")) +
          " (tasks run as their owner)");
    }
    uid = pw.pw_uid;
    gid = pw.pw_gid;
    user_name = pw.pw_name;
    home = pw.pw_dir ? pw.pw_dir : "/";
    shell = pw.pw_shell ? pw.pw_shell : "";
  }

  RunSpec run;
  run.key = spec.key;
  run.argv = spec.argv;
  run.env = spec.env;
  // A pipeline step's files: done by the shim, which Slurm starts as the
  // task's owner, inside the run directory (exec/step_files.h).
  if (auto it = run.env.find(kStepFilesEnv); it != run.env.end()) {
    auto files = ParseStepFiles(it->second);
    if (!files.ok()) return files.status();
    run.step_files = it->second;
    run.env.erase(it);
  }
  // Whole GPUs: Slurm binds them and sets CUDA_VISIBLE_DEVICES itself. A
  // fraction has no gres (Slurm cannot share a GPU without gres/shard):
  // the task sees the GPU Berth chose.
  const bool whole = spec.gpu_share == 0 || spec.gpu_share >= kWholeGpu;
  if (!whole) {
    run.env["CUDA_VISIBLE_DEVICES"] = JoinInts(spec.gpus);
    run.env["NVIDIA_VISIBLE_DEVICES"] = JoinInts(spec.gpus);
  }
  run.env["BERTH_JOB_ID"] = std::to_string(spec.key.job);
  run.env["BERTH_TASK_INDEX"] = std::to_string(spec.key.task);
  run.env["BERTH_ATTEMPT"] = std::to_string(spec.key.attempt);
  run.env["BERTH_RUN_DIR"] = dir;
  run.env["BERTH_NODE"] = spec.node;
  if (uid >= 0) {
    run.env["USER"] = user_name;
    run.env["LOGNAME"] = user_name;
    run.env["HOME"] = home;
    if (!shell.empty()) run.env["SHELL"] = shell;
  }
  run.working_dir = spec.working_dir.empty() ? dir : spec.working_dir;
  run.time_limit = spec.time_limit;
  run.grace = std::max<DurationMs>(spec.termination_grace, 0);
  run.log_cap_bytes = options_.log_cap_bytes;
  // Limits are Slurm's (--cpus-per-task, --mem); the shim switches no user
  // (Slurm started it as the owner) and makes no cgroups.

  std::error_code ec;
  if (fs::exists(dir, ec)) {
    // A leftover with the same key (an old database): gone unless it runs.
    int root = ::open(options_.run_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) return IoError(options_.run_root + ": " + std::strerror(errno));
    Status st = RemoveTreeAt(root, key_name);
    ::close(root);
    if (!st.ok()) return IoError(dir + ": cannot remove the old run directory: " + st.message());
  }
  if (::mkdir(dir.c_str(), 0755) != 0) return IoError(dir + ": " + std::strerror(errno));
  RETURN_IF_ERROR(WriteFileAtomic(JoinPath(dir, kSpecFile), RunSpecToJson(run), true));
  if (uid >= 0 && ::chown(dir.c_str(), static_cast<uid_t>(uid), static_cast<gid_t>(gid)) != 0)
    return IoError(dir + ": cannot give it to " + user_name + ": " + std::strerror(errno));

  std::vector<std::string> args = {
      "--job-name=" + options_.job_name_prefix + key_name,
      "--nodelist=" + spec.node,
      "--nodes=1",
      "--ntasks=1",
      "--no-requeue",
      "--output=" + JoinPath(dir, kSlurmOutFile),
      "--chdir=" + dir,
      "--cpus-per-task=" + std::to_string(std::max<int64_t>(1, (spec.cpu_limit + 999) / 1000)),
  };
  if (!options_.tools.partition.empty()) args.push_back("--partition=" + options_.tools.partition);
  if (whole && !spec.gpus.empty()) args.push_back("--gres=gpu:" + std::to_string(spec.gpus.size()));
  if (spec.memory_limit > 0) args.push_back("--mem=" + std::to_string(spec.memory_limit));
  if (spec.time_limit > 0) {
    // The shim enforces the limit; Slurm's is a backstop after the grace.
    DurationMs total = spec.time_limit + run.grace + options_.kill_after;
    args.push_back("--time=" + std::to_string((total + 59999) / 60000));
  }
  if (uid >= 0) {
    args.push_back("--uid=" + std::to_string(uid));
    args.push_back("--gid=" + std::to_string(gid));
  }
  std::string shim = options_.shim_path;
  auto id = tools_.Submit(args, BatchScript(dir, shim));
  if (!id.ok()) {
    // Nothing was submitted: no run directory stays behind.
    if (int root = ::open(options_.run_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        root >= 0) {
      (void)RemoveTreeAt(root, key_name);
      ::close(root);
    }
    if (!SlurmUnreachable(id.status().message())) return id.status();
    TaskEvent ev;
    ev.key = spec.key;
    ev.type = TaskEventType::kLost;
    ev.time = clock_.Now();
    ev.message = "not submitted, Slurm cannot be reached (" + id.status().message() + ")";
    spdlog::warn("{}: {}; back to the queue", key_name, ev.message);
    std::lock_guard<std::mutex> l(mu_);
    delayed_.emplace_back(clock_.Now() + options_.unreachable_retry, std::move(ev));
    return Status::Ok();
  }
  (void)WriteFileAtomic(JoinPath(dir, kSlurmJobFile), *id + "\n", false);

  auto w = std::make_shared<Watched>();
  w->key = spec.key;
  w->dir = dir;
  w->slurm_id = *id;
  w->node = spec.node;
  w->gpus = spec.gpus;
  spdlog::debug("{}: Slurm job {} on {} ({} GPUs)", key_name, *id, spec.node, spec.gpus.size());
  std::lock_guard<std::mutex> l(mu_);
  tasks_[spec.key] = std::move(w);
  cv_.notify_all();
  return Status::Ok();
}

Status SlurmExecutor::Stop(const TaskKey& key, DurationMs grace) {
  std::shared_ptr<Watched> w;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = tasks_.find(key);
    if (it != tasks_.end()) w = it->second;
  }
  if (!w) {
    std::error_code ec;
    if (fs::exists(JoinPath(RunDir(key), kStatusFile), ec)) return Status::Ok();
    return NotFound(key.ToString() + ": no such task");
  }
  grace = std::max<DurationMs>(grace, 0);
  (void)WriteFileAtomic(JoinPath(w->dir, kStopFile), std::to_string(grace), false);
  std::string id, state;
  {
    std::lock_guard<std::mutex> l(mu_);
    id = w->slurm_id;
    state = w->last_state;
    w->hard_kill_at = clock_.Now() + grace + options_.kill_after;
  }
  if (id.empty()) return Status::Ok();  // found by name at the next poll; the backstop cancels it
  // A job that has not started: cancel it (its shim never runs). Else TERM
  // to the batch step only, which is the shim: it stops the task with `grace`.
  Status st = state == "PENDING" ? tools_.Cancel(id) : tools_.Cancel(id, "TERM");
  if (!st.ok()) spdlog::warn("{}: stop: {}", key.ToString(), st.message());
  return Status::Ok();
}

void SlurmExecutor::Recover(const std::vector<TaskKey>& known) {
  std::vector<TaskEvent> lost;
  std::lock_guard<std::mutex> l(mu_);
  for (const TaskKey& key : known) {
    if (tasks_.count(key)) continue;
    const std::string dir = RunDir(key);
    std::error_code ec;
    if (!fs::exists(dir, ec)) {
      TaskEvent ev;
      ev.key = key;
      ev.type = TaskEventType::kLost;
      ev.time = clock_.Now();
      ev.message = "no run directory: it was never submitted to Slurm";
      pending_.push_back(ev);
      continue;
    }
    auto w = std::make_shared<Watched>();
    w->key = key;
    w->dir = dir;
    auto id = ReadWholeFile(JoinPath(dir, kSlurmJobFile));
    if (id.ok()) w->slurm_id = id->substr(0, id->find('\n'));
    auto env = ReadSlurmEnv(dir);
    w->node = env.count("node") ? env["node"] : "";
    tasks_[key] = std::move(w);
  }
  cv_.notify_all();
}

TaskEvent SlurmExecutor::StartedEvent(const Watched& w, TimeMs time) const {
  TaskEvent ev;
  ev.key = w.key;
  ev.type = TaskEventType::kStarted;
  ev.time = time;
  auto env = ReadSlurmEnv(w.dir);
  std::string id = env.count("job") && !env["job"].empty() ? env["job"] : w.slurm_id;
  // Not a pid: a Slurm job id, marked so nobody mistakes it for one.
  ev.external_id = "slurm-" + id;
  std::string node = env.count("node") ? env["node"] : "";
  std::vector<int> bound = ParseInts(env.count("gpus") ? env["gpus"] : "");
  ev.message = "Slurm job " + id + (node.empty() ? "" : " on " + node) +
               (bound.empty() ? "" : ", GPUs " + JoinInts(bound));
  if (!node.empty() && !w.node.empty() && node != w.node) {
    spdlog::warn("{}: Slurm ran it on {}, not on {} as placed", w.key.ToString(), node, w.node);
  }
  if (!w.gpus.empty() && !bound.empty() && bound != w.gpus) {
    spdlog::warn("{}: Slurm bound GPUs {} on {}, Berth placed it on {}", w.key.ToString(),
                 JoinInts(bound), node, JoinInts(w.gpus));
  }
  return ev;
}

bool SlurmExecutor::Check(Watched& w, const SlurmJob* job, bool slurm_ok, TimeMs now,
                          std::vector<TaskEvent>& out) {
  if (job) {
    w.last_state = job->state;
    if (w.slurm_id.empty()) w.slurm_id = job->id;
  }
  // The truth first: the shim's status.
  auto status_text = ReadWholeFile(JoinPath(w.dir, kStatusFile));
  if (status_text.ok()) {
    auto st = ParseRunStatus(*status_text);
    if (st.ok()) {
      if (st->started && !w.started_reported) {
        out.push_back(StartedEvent(w, st->start_time ? st->start_time : now));
        w.started_reported = true;
      }
      TaskEvent ev;
      ev.key = w.key;
      ev.time = st->end_time ? st->end_time : now;
      ev.external_id = "slurm-" + w.slurm_id;
      ev.exit_code = st->exit_code;
      ev.signal = st->signal;
      if (st->started) {
        ev.type = TaskEventType::kExited;
      } else {
        ev.type = TaskEventType::kStartFailed;
        ev.message = st->error;
      }
      out.push_back(ev);
      return true;
    }
  }
  if (!w.started_reported) {
    auto info = ReadShimInfo(w.dir);
    if (info.ok() && info->child_pid > 0) {
      out.push_back(StartedEvent(w, now));
      w.started_reported = true;
    }
  }
  // Slurm's view: a job that ended (or that Slurm forgot) without a status.
  bool ended = job ? SlurmJobEnded(job->state) : slurm_ok;
  if (!ended) {
    w.gone_since = 0;
    return false;
  }
  if (w.gone_since == 0) {
    w.gone_since = now;
    return false;
  }
  if (now - w.gone_since < options_.settle) return false;
  std::string how =
      job ? "ended " + job->state +
                (job->reason.empty() || job->reason == "None" ? "" : " (" + job->reason + ")")
          : "is unknown to Slurm";
  std::string who = "Slurm job " + (w.slurm_id.empty() ? "?" : w.slurm_id);
  // Nobody recorded the run: claim it, so a shim that comes late runs nothing.
  Status claim = CreateFileExclusive(JoinPath(w.dir, kShimFile), AbandonedToJson(who + " " + how));
  TaskEvent ev;
  ev.key = w.key;
  ev.type = TaskEventType::kLost;
  ev.time = now;
  ev.external_id = w.slurm_id.empty() ? "" : "slurm-" + w.slurm_id;
  ev.node_failed = job && job->state == "NODE_FAIL";
  if (claim.ok()) {
    ev.message = who + " " + how + " before its task started";
    out.push_back(ev);
  } else {
    // The shim ran: the command may have run.
    if (!w.started_reported) {
      out.push_back(StartedEvent(w, now));
      w.started_reported = true;
    }
    ev.message = who + " " + how + " without a status from its task";
    out.push_back(ev);
  }
  if (job && !SlurmJobEnded(job->state) && !w.slurm_id.empty()) (void)tools_.Cancel(w.slurm_id);
  return true;
}

void SlurmExecutor::PollOnce() {
  std::vector<std::shared_ptr<Watched>> watched;
  std::vector<TaskEvent> events;
  {
    std::lock_guard<std::mutex> l(mu_);
    events.swap(pending_);
    for (auto& [k, w] : tasks_) watched.push_back(w);
    TimeMs now = clock_.Now();
    for (auto it = delayed_.begin(); it != delayed_.end();) {
      if (it->first <= now) {
        events.push_back(std::move(it->second));
        it = delayed_.erase(it);
      } else {
        ++it;
      }
    }
  }
  if (!watched.empty()) {
    auto jobs = tools_.Jobs();
    if (!jobs.ok() && (last_warned_ == 0 || clock_.Now() - last_warned_ > 60 * kSecond)) {
      last_warned_ = clock_.Now();
      spdlog::warn("slurm: cannot read job states: {}", jobs.status().message());
    }
    std::map<std::string, const SlurmJob*> by_name;
    if (jobs.ok()) {
      // The newest job of a name wins (ids grow).
      for (const SlurmJob& j : *jobs) {
        if (j.name.rfind(options_.job_name_prefix, 0) != 0) continue;
        auto& slot = by_name[j.name.substr(options_.job_name_prefix.size())];
        if (!slot || JobNumber(j.id) > JobNumber(slot->id)) slot = &j;
      }
    }
    TimeMs now = clock_.Now();
    std::vector<TaskKey> done;
    for (auto& w : watched) {
      std::string hard_kill;
      const SlurmJob* job = nullptr;
      auto it = by_name.find(w->key.ToString());
      if (it != by_name.end() && (w->slurm_id.empty() || it->second->id == w->slurm_id))
        job = it->second;
      bool finished;
      {
        std::lock_guard<std::mutex> l(mu_);
        finished = Check(*w, job, jobs.ok(), now, events);
        if (!finished && w->hard_kill_at > 0 && now >= w->hard_kill_at) {
          w->hard_kill_at = 0;
          hard_kill = w->slurm_id;
        }
        if (finished) done.push_back(w->key);
      }
      if (!hard_kill.empty()) (void)tools_.Cancel(hard_kill);
    }
    std::lock_guard<std::mutex> l(mu_);
    for (const TaskKey& k : done) tasks_.erase(k);
  }
  Post(std::move(events));
}

void SlurmExecutor::Post(std::vector<TaskEvent> events) {
  for (const TaskEvent& ev : events) {
    if (sink_) sink_(ev);
  }
}

void SlurmExecutor::PollLoop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_) {
    l.unlock();
    PollOnce();
    l.lock();
    cv_.wait_for(l, std::chrono::milliseconds(options_.poll_interval), [&] { return stop_; });
  }
}

Result<int> SlurmExecutor::RemoveJobFiles(JobId job) {
  return RemoveJobRunDirs(options_.run_root, job, [this](const TaskKey& key) {
    std::lock_guard<std::mutex> l(mu_);
    return tasks_.count(key) > 0;  // still running
  });
}

void SlurmExecutor::Shutdown() {
  std::lock_guard<std::mutex> sl(shutdown_mu_);
  if (shut_down_) return;
  shut_down_ = true;
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

Result<std::unique_ptr<SlurmExecutor>> MakeSlurmExecutor(const SlurmExecutorOptions& options,
                                                         Clock& clock, TaskEventSink sink) {
  SlurmExecutorOptions o = options;
  if (o.run_root.empty()) return InvalidArgument("executor.slurm.runRoot: required");
  std::error_code ec;
  fs::create_directories(o.run_root, ec);
  if (ec)
    return IoError("executor.slurm.runRoot: cannot create " + o.run_root + ": " + ec.message());
  // Tasks of other users must reach their run directories through it.
  ::chmod(o.run_root.c_str(), 0755);
  if (o.shim_path.empty()) o.shim_path = DefaultShimPath();
  if (::access(o.shim_path.c_str(), X_OK) != 0)
    return InvalidArgument("executor.slurm.shimPath: " + o.shim_path + ": " + std::strerror(errno));
  if (o.poll_interval < 10) return InvalidArgument("executor.slurm.pollInterval: at least 10ms");
  SlurmTools tools(o.tools);
  auto nodes = tools.Nodes();
  if (!nodes.ok()) return Unavailable("slurm: " + nodes.status().message());
  return std::make_unique<SlurmExecutor>(std::move(o), clock, std::move(sink));
}

}  // namespace berth::exec
