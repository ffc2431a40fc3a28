// LocalExecutor: what a run directory says when no shim of ours reports on it
// (Recover after a restart, a shim that died), and the removal of run
// directories (RemoveJobFiles, the retention cleaner).
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "exec/cgroup.h"
#include "exec/local_executor.h"

namespace berth::exec {

namespace fs = std::filesystem;

namespace {

// A shim died without a status (killed by hand, OOM): nobody will report its
// task any more, so end what is left of it and drop its cgroups.
void CleanUpAfterLostShim(const ShimInfo& info) {
  auto child = ReadProcStat(static_cast<pid_t>(info.child_pid));
  if (info.child_pid > 0 && child && child->start_ticks == info.child_start_ticks) {
    ::killpg(static_cast<pid_t>(info.child_pid), SIGKILL);
  }
  for (const auto& cg : info.cgroups) RemoveCgroup(cg);
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// Reaps the shim `info` names if it is a zombie child of this process.
void ReapIfOurZombie(const ShimInfo& info) {
  if (info.pid <= 0) return;
  auto st = ReadProcStat(static_cast<pid_t>(info.pid));
  if (st && st->start_ticks == info.start_ticks && st->state == 'Z') {
    ::waitpid(static_cast<pid_t>(info.pid), nullptr, WNOHANG);
  }
}

TaskEvent Lost(const TaskKey& key, TimeMs now, std::string why) {
  TaskEvent ev;
  ev.key = key;
  ev.type = TaskEventType::kLost;
  ev.time = now;
  ev.message = std::move(why);
  return ev;
}

}  // namespace

void LocalExecutor::ReportDeadShim(const TaskKey& key, const std::string& dir,
                                   bool started_reported, const std::string& who,
                                   std::vector<TaskEvent>& out) {
  const TimeMs now = clock_.Now();
  auto info = ReadShimInfo(dir);
  if (!info.ok() && info.status().code() == StatusCode::kNotFound) {
    // It died before recording itself; claim the run so that nothing can
    // start it later (another shim of the same run, should one exist).
    Status st = CreateFileExclusive(JoinPath(dir, kShimFile),
                                    AbandonedToJson(who + " ended before it recorded itself"));
    if (st.ok()) {
      out.push_back(Lost(key, now, who + " ended before it started the task; the task never ran"));
      return;
    }
    info = ReadShimInfo(dir);
  }
  if (info.ok() && info->abandoned) {
    out.push_back(Lost(key, now, "the task never ran: " + info->abandoned_reason));
    return;
  }
  if (info.ok() && !Exists(JoinPath(dir, kForkedFile))) {
    // Recorded but never forked, and it is gone: it never will.
    for (const auto& cg : info->cgroups) RemoveCgroup(cg);
    out.push_back(Lost(key, now, who + " ended before it started the task; the task never ran"));
    return;
  }
  // The command may have run: never start it again.
  if (info.ok()) CleanUpAfterLostShim(*info);
  if (!started_reported) {
    TaskEvent ev;
    ev.key = key;
    ev.type = TaskEventType::kStarted;
    ev.time = now;
    if (info.ok() && info->child_pid > 0) ev.external_id = std::to_string(info->child_pid);
    out.push_back(std::move(ev));
  }
  out.push_back(Lost(key, now,
                     who + " is gone and recorded no exit status; the task may have run" +
                         (info.ok() ? "" : " (" + info.status().message() + ")")));
}

void LocalExecutor::RecoverOne(const TaskKey& key, std::vector<TaskEvent>& out) {
  const std::string dir = RunDir(key);
  if (!Exists(dir)) {
    out.push_back(Lost(key, clock_.Now(), "no run directory " + dir + ": the task never ran here"));
    return;
  }
  // A shim may be recording itself right now: the claim below and the
  // shim's are both exclusive creations of shim.json, so exactly one wins.
  for (int round = 0; round < 3; ++round) {
    if (auto ev = EventFromStatus(key, dir, true)) {
      if (auto info = ReadShimInfo(dir); info.ok()) ReapIfOurZombie(*info);
      out.push_back(std::move(*ev));
      return;
    }
    auto info = ReadShimInfo(dir);
    if (!info.ok() && info.status().code() == StatusCode::kNotFound) {
      Status st = CreateFileExclusive(
          JoinPath(dir, kShimFile),
          AbandonedToJson("no berth-shim had recorded itself when the executor recovered"));
      if (st.code() == StatusCode::kAlreadyExists) continue;  // the shim was first
      if (!st.ok()) {
        out.push_back(Lost(key, clock_.Now(), "cannot claim the run: " + st.message()));
        return;
      }
      out.push_back(Lost(key, clock_.Now(),
                         "the task never ran: no berth-shim had recorded itself when the "
                         "executor recovered"));
      return;
    }
    if (info.ok() && info->abandoned) {
      out.push_back(Lost(key, clock_.Now(), "the task never ran: " + info->abandoned_reason));
      return;
    }
    if (info.ok()) {
      int pidfd = OpenLiveShim(*info);
      if (pidfd >= 0) {
        auto w = std::make_shared<Watched>();
        w->key = key;
        w->dir = dir;
        w->pid = static_cast<pid_t>(info->pid);
        w->pidfd = pidfd;
        if (info->child_pid > 0) {
          // Running: say so, in case the start was never reported.
          TaskEvent ev;
          ev.key = key;
          ev.type = TaskEventType::kStarted;
          ev.time = clock_.Now();
          ev.external_id = std::to_string(info->child_pid);
          out.push_back(std::move(ev));
          w->started_reported = true;
        }
        std::lock_guard<std::mutex> l(mu_);
        Status st = WatchLocked(std::move(w));
        if (!st.ok()) {
          spdlog::warn("local executor: cannot watch {}: {}", key.ToString(), st.ToString());
        }
        return;
      }
      // The shim is gone; it may have written its status just now.
      if (auto ev = EventFromStatus(key, dir, true)) {
        ReapIfOurZombie(*info);
        out.push_back(std::move(*ev));
        return;
      }
      ReapIfOurZombie(*info);
    }
    std::string who = "berth-shim";
    if (info.ok()) who += " (pid " + std::to_string(info->pid) + ")";
    ReportDeadShim(key, dir, false, who, out);
    return;
  }
  out.push_back(Lost(key, clock_.Now(), "shim.json kept changing while the executor recovered"));
}

void LocalExecutor::Recover(const std::vector<TaskKey>& known) {
  std::vector<TaskEvent> events;
  for (const TaskKey& key : known) {
    {
      std::lock_guard<std::mutex> l(mu_);
      recovered_.insert(key);
      if (tasks_.count(key) != 0) continue;
    }
    RecoverOne(key, events);
  }
  Post(std::move(events));
  std::lock_guard<std::mutex> l(cleaner_mu_);
  if (options_.run_retention > 0 && !cleaner_.joinable() && !cleaner_stop_) {
    cleaner_ = std::thread([this] { CleanerLoop(); });
  }
}

void LocalExecutor::PollRecoveredStarts(std::vector<TaskEvent>& out) {
  std::vector<std::shared_ptr<Watched>> waiting;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [key, w] : tasks_) {
      if (!w->started_reported && w->progress_fd < 0) waiting.push_back(w);
    }
  }
  for (const auto& w : waiting) {
    auto info = ReadShimInfo(w->dir);
    if (!info.ok() || info->child_pid <= 0) continue;
    w->started_reported = true;
    TaskEvent ev;
    ev.key = w->key;
    ev.type = TaskEventType::kStarted;
    ev.time = clock_.Now();
    ev.external_id = std::to_string(info->child_pid);
    out.push_back(std::move(ev));
  }
}

Result<int> LocalExecutor::RemoveJobFiles(JobId job) {
  // Every attempt's run directories, removed without following a link (a
  // task's work/ may hold any).
  return RemoveJobRunDirs(options_.run_root, job, nullptr);
}

int LocalExecutor::CleanUpOldRuns() {
  if (options_.run_retention <= 0) return 0;
  const TimeMs now = clock_.Now();
  int root = ::open(options_.run_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return 0;
  std::vector<std::string> names;
  if (DIR* d = ::fdopendir(::dup(root))) {
    while (struct dirent* e = ::readdir(d)) {
      if (TaskKey::Parse(e->d_name)) names.push_back(e->d_name);
    }
    ::closedir(d);
  }
  // When a run ended: its status, else its claim (an abandoned run, or a
  // shim that died without a status); a run with a live shim has not ended.
  auto ended_at = [&](const std::string& name) -> std::optional<TimeMs> {
    struct stat st;
    auto mtime_of = [&](const char* file) -> std::optional<TimeMs> {
      if (::fstatat(root, (name + "/" + file).c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
        return std::nullopt;
      return static_cast<TimeMs>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
    };
    if (auto t = mtime_of(kStatusFile)) return t;
    const std::string dir = JoinPath(options_.run_root, name);
    auto info = ReadShimInfo(dir);
    if (info.ok()) {
      if (!info->abandoned && ShimAlive(*info)) return std::nullopt;
      return mtime_of(kShimFile);
    }
    if (info.status().code() != StatusCode::kNotFound) return mtime_of(kSpecFile);
    // No shim ever recorded itself: claim the run (a late shim then never
    // starts it) once it is older than the retention.
    auto spec_time = mtime_of(kSpecFile);
    if (spec_time && now - *spec_time > options_.run_retention &&
        CreateFileExclusive(JoinPath(dir, kShimFile),
                            AbandonedToJson("removed after the retention period"))
            .ok()) {
      return spec_time;
    }
    return std::nullopt;
  };
  int removed = 0;
  for (const auto& name : names) {
    auto key = TaskKey::Parse(name);
    {
      std::lock_guard<std::mutex> l(mu_);
      if (tasks_.count(*key) != 0 || recovered_.count(*key) != 0) continue;
    }
    auto t = ended_at(name);
    if (!t || now - *t <= options_.run_retention) continue;
    Status st = RemoveTreeAt(root, name);
    if (st.ok()) {
      ++removed;
    } else {
      spdlog::warn("local executor: cannot remove old run {}: {}", name, st.message());
    }
  }
  ::close(root);
  if (removed > 0) {
    spdlog::info("local executor: removed {} run director{} older than {}", removed,
                 removed == 1 ? "y" : "ies", FormatDuration(options_.run_retention));
  }
  return removed;
}

void LocalExecutor::CleanerLoop() {
  std::unique_lock<std::mutex> l(cleaner_mu_);
  while (!cleaner_stop_) {
    l.unlock();
    CleanUpOldRuns();
    l.lock();
    auto interval = std::chrono::milliseconds(std::max<DurationMs>(options_.cleanup_interval, 10));
    cleaner_cv_.wait_for(l, interval, [this] { return cleaner_stop_; });
  }
}

}  // namespace berth::exec
