#include "exec/local_executor.h"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "exec/cgroup.h"
#include "exec/step_files.h"
#include "exec/task_log.h"
#include "exec/test_hooks.h"

extern char** environ;

namespace berth::exec {

namespace fs = std::filesystem;

namespace {

// The fd number the shim finds its progress pipe on.
constexpr int kShimProgressFd = 3;

int PidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

int PidfdSendSignal(int pidfd, int sig) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

std::string JoinInts(const std::vector<int>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) s += ",";
    s += std::to_string(v[i]);
  }
  return s;
}

}  // namespace

std::string DefaultShimPath() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return "berth-shim";
  return (exe.parent_path() / "berth-shim").string();
}

LocalExecutor::LocalExecutor(const LocalExecutorOptions& options, std::string shim_path,
                             CgroupPlan cgroups, Clock& clock, TaskEventSink sink)
    : options_(options),
      shim_path_(std::move(shim_path)),
      cgroups_(std::move(cgroups)),
      clock_(clock),
      sink_(std::move(sink)) {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wakefd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  struct epoll_event ev {};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;  // token 0: the wake fd
  ::epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev);
  thread_ = std::thread([this] { WatchLoop(); });
}

LocalExecutor::~LocalExecutor() { Shutdown(); }

std::string LocalExecutor::RunDir(const TaskKey& key) const {
  return JoinPath(options_.run_root, key.ToString());
}

Result<LogChunk> LocalExecutor::ReadLog(const TaskKey& key, int64_t offset, int64_t limit) const {
  return ReadTaskLog(RunDir(key), offset, limit);
}

bool LocalExecutor::RunsAsOwner() const { return options_.run_as_owner && ::geteuid() == 0; }

Result<std::optional<TaskAccount>> LocalExecutor::AccountFor(const std::string& user) const {
  if (!RunsAsOwner()) return std::optional<TaskAccount>();
  if (user.empty())
    return FailedPrecondition("the job has no owner, and tasks run as their owner's account");
  struct passwd pw;
  struct passwd* found = nullptr;
  std::vector<char> buf(16384);
  int rc = ::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found);
  if (found == nullptr) {
    return FailedPrecondition("owner \"" + user + "\": " +
                              (rc != 0
                                   ? std::string("cannot look the account up: ") + std::strerror(rc)
                                   : std::string("no such account on this machine")) +
                              " (tasks run as their owner's account)");
  }
  if (pw.pw_uid == ::geteuid()) return std::optional<TaskAccount>();
  TaskAccount a;
  a.uid = pw.pw_uid;
  a.gid = pw.pw_gid;
  a.name = pw.pw_name;
  a.home = pw.pw_dir != nullptr && *pw.pw_dir ? pw.pw_dir : "/";
  a.shell = pw.pw_shell != nullptr ? pw.pw_shell : "";
  return std::optional<TaskAccount>(std::move(a));
}

Result<std::string> LocalExecutor::ReadStepOutputs(const TaskKey& key) const {
  ASSIGN_OR_RETURN(std::string text, ReadWholeFile(JoinPath(RunDir(key), kStatusFile)));
  ASSIGN_OR_RETURN(RunStatus status, ParseRunStatus(text));
  if (status.step_outputs.empty())
    return NotFound(key.ToString() + ": the task's supervisor reported no step outputs");
  return status.step_outputs;
}

Status LocalExecutor::Start(const TaskSpec& spec) {
  if (stopping_) return FailedPrecondition("local executor: shut down");
  if (spec.argv.empty() || spec.argv[0].empty()) {
    return InvalidArgument("argv: must name a command");
  }
  const std::string key_name = spec.key.ToString();
  const std::string dir = RunDir(spec.key);

  RunSpec run;
  ASSIGN_OR_RETURN(std::optional<TaskAccount> account, AccountFor(spec.user));
  if (account) {
    run.uid = account->uid;
    run.gid = account->gid;
    run.user = account->name;
    run.home = account->home;
    run.shell = account->shell;
  }
  // The task's own directory: the run directory, or for a task of another
  // user the work/ directory in it that the user owns.
  const std::string task_dir = run.uid >= 0 ? JoinPath(dir, kWorkDir) : dir;
  run.key = spec.key;
  run.argv = spec.argv;
  run.env = spec.env;
  // A pipeline step's files: done by the shim as the task's owner.
  if (auto it = run.env.find(kStepFilesEnv); it != run.env.end()) {
    auto files = ParseStepFiles(it->second);
    if (!files.ok()) return files.status();
    run.step_files = it->second;
    run.env.erase(it);
  }
  // The placement is the truth: these override anything in spec.env.
  std::string gpus = JoinInts(spec.gpus);
  run.env["CUDA_VISIBLE_DEVICES"] = gpus;
  run.env["NVIDIA_VISIBLE_DEVICES"] = gpus;
  run.env["BERTH_JOB_ID"] = std::to_string(spec.key.job);
  run.env["BERTH_TASK_INDEX"] = std::to_string(spec.key.task);
  run.env["BERTH_ATTEMPT"] = std::to_string(spec.key.attempt);
  run.env["BERTH_RUN_DIR"] = task_dir;
  run.env["BERTH_NODE"] = spec.node;
  run.working_dir = spec.working_dir.empty() ? task_dir : spec.working_dir;
  run.cpu_limit = spec.cpu_limit;
  run.memory_limit = spec.memory_limit;
  run.time_limit = spec.time_limit;
  run.grace = std::max<DurationMs>(spec.termination_grace, 0);
  run.log_cap_bytes = options_.log_cap_bytes;
  run.cgroup = cgroups_;

  std::lock_guard<std::mutex> l(mu_);
  if (tasks_.count(spec.key) != 0) return AlreadyExists(key_name + ": already running");
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    // A leftover of an earlier run with the same key (e.g. an old database).
    auto info = ReadShimInfo(dir);
    if (info.ok() && ShimAlive(*info)) {
      return AlreadyExists(key_name + ": already running under berth-shim pid " +
                           std::to_string(info->pid));
    }
    int root = ::open(options_.run_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) return IoError(Errno(options_.run_root));
    Status st = RemoveTreeAt(root, key_name);
    ::close(root);
    if (!st.ok()) return IoError(dir + ": cannot remove the old run directory: " + st.message());
  }
  if (::mkdir(dir.c_str(), 0755) != 0) return IoError(Errno(dir));
  if (run.uid >= 0) {
    // Made in the directory just created (the daemon's own: nobody else can
    // have put a link there), then given to the owner.
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    bool ok = dfd >= 0 && ::mkdirat(dfd, kWorkDir, 0700) == 0 &&
              ::fchownat(dfd, kWorkDir, static_cast<uid_t>(run.uid), static_cast<gid_t>(run.gid),
                         AT_SYMLINK_NOFOLLOW) == 0;
    Status st = ok ? Status::Ok() : IoError(Errno(task_dir));
    if (dfd >= 0) ::close(dfd);
    RETURN_IF_ERROR(st);
  }
  RETURN_IF_ERROR(WriteFileAtomic(JoinPath(dir, kSpecFile), RunSpecToJson(run), false));
  TestPoint("spec-written", dir);

  int p[2];
  if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return IoError(Errno("pipe"));
  // Keep the write end off fd 3 so the dup2 below always clears close-on-exec.
  int wfd = ::fcntl(p[1], F_DUPFD_CLOEXEC, 10);
  ::close(p[1]);
  if (wfd < 0) {
    ::close(p[0]);
    return IoError(Errno("fcntl"));
  }

  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  std::string shim_log = JoinPath(dir, kShimLogFile);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, shim_log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, wfd, kShimProgressFd);
  // Nothing else of berthd's reaches the shim: its listening sockets and
  // connections (Asio opens them without close-on-exec) would otherwise stay
  // open in the shim until it closes them itself, keeping a dead daemon's
  // port and socket answering.
  posix_spawn_file_actions_addclosefrom_np(&fa, kShimProgressFd + 1);
  // A new session, so the shim outlives us and our terminal; stop signals are
  // blocked from the first instruction so an early Stop stays pending.
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGCHLD);
  posix_spawnattr_setsigmask(&attr, &mask);
  sigset_t defaults;
  sigfillset(&defaults);
  posix_spawnattr_setsigdefault(&attr, &defaults);

  std::string fd_arg = std::to_string(kShimProgressFd);
  std::vector<char*> argv = {const_cast<char*>(shim_path_.c_str()),
                             const_cast<char*>("--run-dir"),
                             const_cast<char*>(dir.c_str()),
                             const_cast<char*>("--progress-fd"),
                             fd_arg.data(),
                             nullptr};
  pid_t pid = 0;
  int rc = posix_spawn(&pid, shim_path_.c_str(), &fa, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(wfd);
  if (rc != 0) {
    ::close(p[0]);
    return IoError(key_name + ": cannot start berth-shim " + shim_path_ + ": " + std::strerror(rc));
  }
  TestPoint("shim-spawned", dir);
  int pidfd = PidfdOpen(pid);
  if (pidfd < 0) {
    Status st = IoError(Errno(key_name + ": pidfd_open"));
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    ::close(p[0]);
    return st;
  }
  auto w = std::make_shared<Watched>();
  w->key = spec.key;
  w->dir = dir;
  w->pid = pid;
  w->pidfd = pidfd;
  w->progress_fd = p[0];
  return WatchLocked(std::move(w));
}

Status LocalExecutor::WatchLocked(std::shared_ptr<Watched> w) {
  w->token = next_token_++;
  struct epoll_event ev {};
  ev.events = EPOLLIN;
  ev.data.u64 = w->token << 1;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, w->pidfd, &ev) != 0) {
    Status st = IoError(Errno("epoll_ctl"));
    ::close(w->pidfd);
    if (w->progress_fd >= 0) ::close(w->progress_fd);
    return st;
  }
  if (w->progress_fd >= 0) {
    ev.data.u64 = (w->token << 1) | 1;
    ::epoll_ctl(epfd_, EPOLL_CTL_ADD, w->progress_fd, &ev);
  }
  by_token_[w->token] = w;
  tasks_[w->key] = std::move(w);
  return Status::Ok();
}

void LocalExecutor::ForgetLocked(const std::shared_ptr<Watched>& w) {
  if (w->pidfd >= 0) {
    ::epoll_ctl(epfd_, EPOLL_CTL_DEL, w->pidfd, nullptr);
    ::close(w->pidfd);
    w->pidfd = -1;
  }
  if (w->progress_fd >= 0) {
    ::epoll_ctl(epfd_, EPOLL_CTL_DEL, w->progress_fd, nullptr);
    ::close(w->progress_fd);
    w->progress_fd = -1;
  }
  by_token_.erase(w->token);
  auto it = tasks_.find(w->key);
  if (it != tasks_.end() && it->second == w) tasks_.erase(it);
}

Status LocalExecutor::Stop(const TaskKey& key, DurationMs grace) {
  grace = std::max<DurationMs>(grace, 0);
  const std::string dir = RunDir(key);
  auto write_request = [&] {
    return WriteFileAtomic(JoinPath(dir, kStopFile), std::to_string(grace) + "\n", false);
  };
  auto signal_shim = [&](int pidfd) -> Status {
    if (PidfdSendSignal(pidfd, SIGTERM) != 0 && errno != ESRCH) {
      return IoError(Errno(key.ToString() + ": signal berth-shim"));
    }
    return Status::Ok();
  };
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = tasks_.find(key);
    if (it != tasks_.end() && it->second->pidfd >= 0) {
      RETURN_IF_ERROR(write_request());
      return signal_shim(it->second->pidfd);
    }
  }
  std::error_code ec;
  if (!fs::exists(dir, ec)) return NotFound(key.ToString() + ": no such task on this executor");
  if (fs::exists(JoinPath(dir, kStatusFile), ec)) return Status::Ok();
  // Written before looking for the shim: a shim that has not recorded itself
  // yet finds the request when it does, before it forks the task.
  RETURN_IF_ERROR(write_request());
  auto info = ReadShimInfo(dir);
  if (!info.ok() || info->abandoned) return Status::Ok();
  int pidfd = OpenLiveShim(*info);
  if (pidfd < 0) return Status::Ok();
  Status st = signal_shim(pidfd);
  ::close(pidfd);
  return st;
}

std::optional<TaskEvent> LocalExecutor::EventFromStatus(const TaskKey& key, const std::string& dir,
                                                        bool use_end_time) const {
  auto text = ReadWholeFile(JoinPath(dir, kStatusFile));
  if (!text.ok()) return std::nullopt;
  TaskEvent ev;
  ev.key = key;
  ev.time = clock_.Now();
  auto status = ParseRunStatus(*text);
  if (!status.ok()) {
    ev.type = TaskEventType::kLost;
    ev.message = status.status().message();
    return ev;
  }
  if (use_end_time && status->end_time > 0) ev.time = status->end_time;
  ev.type = status->started ? TaskEventType::kExited : TaskEventType::kStartFailed;
  ev.exit_code = status->exit_code;
  ev.signal = status->signal;
  ev.message = status->error;
  if (status->pid > 0) ev.external_id = std::to_string(status->pid);
  return ev;
}

void LocalExecutor::Post(std::vector<TaskEvent> events) {
  if (events.empty()) return;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& e : events) pending_.push_back(std::move(e));
  }
  Wake();
}

void LocalExecutor::Wake() {
  uint64_t one = 1;
  ssize_t n = ::write(wakefd_, &one, sizeof(one));
  (void)n;
}

void LocalExecutor::ReadProgress(Watched& w, std::vector<TaskEvent>& out) {
  char buf[4096];
  while (w.progress_fd >= 0) {
    ssize_t n = ::read(w.progress_fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n < 0 && errno == EAGAIN) break;
      // EOF: the shim closed it or exited; its exit comes through the pidfd.
      ::epoll_ctl(epfd_, EPOLL_CTL_DEL, w.progress_fd, nullptr);
      ::close(w.progress_fd);
      w.progress_fd = -1;
      break;
    }
    w.buf.append(buf, static_cast<size_t>(n));
    size_t nl;
    while ((nl = w.buf.find('\n')) != std::string::npos) {
      std::string line = w.buf.substr(0, nl);
      w.buf.erase(0, nl + 1);
      if (line.rfind("started ", 0) == 0) {
        w.started_reported = true;
        TaskEvent ev;
        ev.key = w.key;
        ev.type = TaskEventType::kStarted;
        ev.time = clock_.Now();
        ev.external_id = line.substr(8);
        out.push_back(std::move(ev));
      } else if (line.rfind("exited ", 0) == 0 && !w.reported) {
        // status.json is in place before this line is written.
        if (auto ev = EventFromStatus(w.key, w.dir, false)) {
          w.reported = true;
          out.push_back(std::move(*ev));
        }
      }
    }
  }
}

void LocalExecutor::OnShimExit(const std::shared_ptr<Watched>& w, std::vector<TaskEvent>& out) {
  ReadProgress(*w, out);                // a "started" line may still be in the pipe
  ::waitpid(w->pid, nullptr, WNOHANG);  // reaps it if it is our child
  if (w->reported) {                    // its end went out with the "exited" line
    std::lock_guard<std::mutex> l(mu_);
    ForgetLocked(w);
    return;
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    ForgetLocked(w);
  }
  if (std::optional<TaskEvent> ev = EventFromStatus(w->key, w->dir, false)) {
    if (ev->type == TaskEventType::kExited && !w->started_reported) {
      // A recovered task that ended before its start was seen: the start first.
      TaskEvent started = *ev;
      started.type = TaskEventType::kStarted;
      started.exit_code.reset();
      started.signal = 0;
      started.message.clear();
      out.push_back(std::move(started));
    }
    out.push_back(std::move(*ev));
    return;
  }
  ReportDeadShim(w->key, w->dir, w->started_reported,
                 "berth-shim (pid " + std::to_string(w->pid) + ")", out);
}

void LocalExecutor::WatchLoop() {
  struct epoll_event evs[64];
  while (true) {
    bool poll_starts = false;
    {
      std::lock_guard<std::mutex> l(mu_);
      for (const auto& [key, w] : tasks_) {
        poll_starts = poll_starts || (!w->started_reported && w->progress_fd < 0);
      }
    }
    // Recovered shims have no pipe: their start is polled for (task.json).
    int n = ::epoll_wait(epfd_, evs, 64, poll_starts ? 50 : -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      spdlog::error("local executor: epoll_wait: {}", std::strerror(errno));
      return;
    }
    std::vector<TaskEvent> out;
    std::vector<std::shared_ptr<Watched>> exited;
    {
      std::lock_guard<std::mutex> l(mu_);
      while (!pending_.empty()) {
        out.push_back(std::move(pending_.front()));
        pending_.pop_front();
      }
      // Progress lines before exits, so kStarted precedes kExited.
      for (int i = 0; i < n; ++i) {
        uint64_t token = evs[i].data.u64 >> 1;
        if (token == 0) {
          uint64_t v;
          ssize_t r = ::read(wakefd_, &v, sizeof(v));
          (void)r;
          continue;
        }
        auto it = by_token_.find(token);
        if (it == by_token_.end()) continue;
        if (evs[i].data.u64 & 1) {
          ReadProgress(*it->second, out);
        } else {
          exited.push_back(it->second);
        }
      }
    }
    for (const auto& w : exited) OnShimExit(w, out);
    if (poll_starts) PollRecoveredStarts(out);
    for (const auto& ev : out) {
      if (sink_) sink_(ev);
    }
    if (stopping_) {
      std::lock_guard<std::mutex> l(mu_);
      if (pending_.empty()) return;
    }
  }
}

void LocalExecutor::Shutdown() {
  {
    std::lock_guard<std::mutex> l(shutdown_mu_);
    if (shut_down_) return;
    shut_down_ = true;
  }
  stopping_ = true;
  Wake();
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard<std::mutex> l(cleaner_mu_);
    cleaner_stop_ = true;
  }
  cleaner_cv_.notify_all();
  if (cleaner_.joinable()) cleaner_.join();
  std::lock_guard<std::mutex> l(mu_);
  for (auto& [token, w] : by_token_) {
    if (w->pidfd >= 0) ::close(w->pidfd);
    if (w->progress_fd >= 0) ::close(w->progress_fd);
  }
  by_token_.clear();
  tasks_.clear();
  ::close(epfd_);
  ::close(wakefd_);
}

Result<std::unique_ptr<LocalExecutor>> MakeLocalExecutor(const LocalExecutorOptions& options,
                                                         Clock& clock, TaskEventSink sink) {
  if (options.run_root.empty()) return InvalidArgument("run_root: must be set");
  LocalExecutorOptions opts = options;
  std::error_code ec;
  fs::create_directories(opts.run_root, ec);
  if (ec) return IoError("run_root " + opts.run_root + ": " + ec.message());
  opts.run_root = fs::absolute(opts.run_root, ec).lexically_normal().string();
  if (!opts.run_root.empty() && opts.run_root.size() > 1 && opts.run_root.back() == '/') {
    opts.run_root.pop_back();
  }
  if (opts.log_cap_bytes <= 0) return InvalidArgument("log_cap_bytes: must be > 0");
  std::string shim = opts.shim_path.empty() ? DefaultShimPath() : opts.shim_path;
  if (::access(shim.c_str(), X_OK) != 0) {
    return FailedPrecondition("shim_path: berth-shim not found or not executable at " + shim +
                              " (build the berth-shim target, or set the path)");
  }
  if (opts.run_as_owner && ::geteuid() == 0) {
    spdlog::info("local executor: running as root: each task runs as its owner's account");
    // Tasks of other users reach their work/ directories through run_root.
    for (fs::path p = opts.run_root; !p.empty(); p = p.parent_path()) {
      struct stat st;
      if (::stat(p.c_str(), &st) == 0 && (st.st_mode & S_IXOTH) == 0) {
        spdlog::warn(
            "local executor: {} is not searchable by other users: tasks that run as their owner "
            "cannot reach their directories under {} (chmod o+x)",
            p.string(), opts.run_root);
        break;
      }
      if (p == p.root_path()) break;
    }
  } else if (::geteuid() == 0) {
    spdlog::warn("local executor: executor.runAsOwner is off: every task runs as root");
  } else {
    struct passwd* pw = ::getpwuid(::geteuid());
    spdlog::info(
        "local executor: not running as root: every task runs as this process's user ({}, uid "
        "{}); berthd serves only its own user",
        pw != nullptr ? pw->pw_name : "?", ::geteuid());
  }
  CgroupPlan plan;
  if (opts.use_cgroups) {
    std::string problem;
    plan = ProbeCgroups(opts.cgroup_root, opts.cgroup_name, &problem);
    if (plan.version == 0) {
      spdlog::warn(
          "local executor: no usable cgroup hierarchy ({}); tasks run without cpu and "
          "memory limits",
          problem);
    } else if (!problem.empty()) {
      spdlog::warn("local executor: {}; that limit is not enforced", problem);
    }
  }
  return std::make_unique<LocalExecutor>(opts, std::move(shim), std::move(plan), clock,
                                         std::move(sink));
}

}  // namespace berth::exec
