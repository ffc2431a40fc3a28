// berth-shim: the per-task supervisor that lets work outlive the daemon.
//
//   berth-shim --run-dir DIR [--progress-fd N]
//
// Reads DIR/spec.json, makes the task's cgroups, records itself in
// DIR/shim.json (created exclusively: if the executor gave the run up first,
// the shim exits without starting anything; run_files.h), then starts the
// task in a new process group, as the account the spec names, with its
// output going through the shim into DIR/output.log (capped, rotated to
// output.log.1), and enforces the time limit. SIGTERM asks it to stop the
// task: SIGTERM to the task's process group and every other process it
// started, then SIGKILL after the grace period (DIR/stop holds a grace in ms
// that overrides the spec's); a stop that comes before the command runs ends
// the start (status: not started). When the task's main process exits,
// everything else it started is SIGKILLed, in its process group or not (the
// shim is a child subreaper, so orphans come back to it: proc_tree.h), and
// DIR/status.json is written atomically. Progress lines
// ("started <pid>", "failed <msg>", "exited <code> <signal>") go to fd N when
// given; if nobody reads them any more the shim carries on. Single-threaded.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/clock.h"
#include "exec/cgroup.h"
#include "exec/metrics_tap.h"
#include "exec/proc_tree.h"
#include "exec/run_files.h"
#include "exec/step_files.h"
#include "exec/task_exec.h"
#include "exec/task_log.h"
#include "exec/test_hooks.h"

extern char** environ;

namespace berth::exec {
namespace {

constexpr int64_t kNanosPerMs = 1000 * 1000;
constexpr int64_t kNever = INT64_MAX;
// After the task's main process exits: how long to wait for the rest of its
// output (writers that escaped the process group may hold the pipe open).
constexpr int64_t kDrainNanos = 2000 * kNanosPerMs;

void WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

// The task's output log (exec/task_log.h: capped, rotated) plus the shim's
// own lines, marked so users can tell them from the task's.
class LogWriter {
 public:
  LogWriter(const std::string& dir, int64_t cap) : out_(dir, cap) {}
  bool Open() { return out_.Open(); }
  void Write(const char* p, size_t n) {
    out_.Write(p, n);
    if (tap) tap->Feed(p, n);  // experiment trials' metrics (exec/metrics_tap.h)
  }
  void Line(const std::string& msg) {
    std::string s = "[berth-shim] " + msg + "\n";
    out_.Write(s.data(), s.size());
  }

  std::unique_ptr<MetricsTap> tap;

 private:
  TaskLogWriter out_;
};

sigset_t ShimSignals() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGTERM);
  sigaddset(&s, SIGINT);
  sigaddset(&s, SIGCHLD);
  return s;
}

class Shim {
 public:
  Shim(std::string dir, int progress_fd, std::string containment_problem)
      : dir_(std::move(dir)),
        progress_fd_(progress_fd),
        containment_problem_(std::move(containment_problem)) {}

  int Run() {
    // Every file is reached through this descriptor: if the directory is
    // removed and made again for another run meanwhile, this shim touches
    // only its own (deleted) one.
    dirfd_ = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dirfd_ < 0) {
      std::fprintf(stderr, "berth-shim: %s: %s\n", dir_.c_str(), std::strerror(errno));
      return 1;
    }
    at_ = "/proc/self/fd/" + std::to_string(dirfd_);
    auto text = ReadWholeFile(Path(kSpecFile));
    Result<RunSpec> spec = text.ok() ? ParseRunSpec(*text) : Result<RunSpec>(text.status());
    TestPoint("shim-begun", at_);

    sigset_t sigs = ShimSignals();
    sfd_ = ::signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
    info_.pid = ::getpid();
    if (auto st = ReadProcStat(::getpid())) info_.start_ticks = st->start_ticks;

    if (!spec.ok()) {
      if (!Claim()) return 0;
      std::fprintf(stderr, "berth-shim: %s\n", spec.status().ToString().c_str());
      status_.exit_code = 127;
      status_.error = "berth-shim: " + spec.status().message();
      status_.start_time = status_.end_time = SystemClock::Default().Now();
      WriteStatus();
      Progress("failed " + status_.error);
      return 1;
    }
    spec_ = std::move(spec).value();

    std::vector<std::string> warnings;
    cg_ = CreateTaskCgroups(spec_.cgroup, spec_.key.ToString() + "-" + std::to_string(info_.pid),
                            spec_.cpu_limit, spec_.memory_limit, &warnings);
    info_.cgroups = cg_.dirs;
    if (!Claim()) {
      for (const auto& dir : cg_.dirs) RemoveCgroup(dir);
      return 0;
    }
    TestPoint("shim-recorded", at_);

    log_ = std::make_unique<LogWriter>(at_, spec_.log_cap_bytes);
    if (!log_->Open()) {
      std::fprintf(stderr, "berth-shim: cannot open %s: %s\n", kOutputFile, std::strerror(errno));
    }
    log_->tap = MetricsTap::FromEnv(spec_.env);
    for (const auto& w : warnings) log_->Line("warning: " + w);
    if (info_.start_ticks == 0) {  // a cheap probe: /proc/<pid>/stat could not be read
      containment_problem_ += std::string(containment_problem_.empty() ? "" : "; ") +
                              "/proc cannot be read, so the task's processes cannot be found";
    }
    if (!containment_problem_.empty()) {
      log_->Line("warning: process containment is not guaranteed (" + containment_problem_ +
                 "): processes the task starts outside its process group may outlive it");
    }

    if (!PrepareStepFiles() || !StartChild()) {
      Finish();
      return 0;
    }
    Loop();
    Finish();
    return 0;
  }

 private:
  std::string Path(const char* name) const { return JoinPath(at_, name); }

  // Records the shim in shim.json, created exclusively. False if someone was
  // first: the executor gave the run up (it found no shim after a restart)
  // or another shim runs it; then this shim must not start anything.
  bool Claim() {
    Status st = CreateFileExclusive(Path(kShimFile), ShimInfoToJson(info_));
    if (st.ok()) return true;
    if (st.code() == StatusCode::kAlreadyExists) {
      auto other = ReadShimInfo(at_);
      std::string why = other.ok() && other->abandoned
                            ? "the executor gave this run up (" + other->abandoned_reason + ")"
                            : "another berth-shim recorded itself for this run";
      std::fprintf(stderr, "berth-shim: not starting the task: %s\n", why.c_str());
    } else {
      std::fprintf(stderr, "berth-shim: not starting the task: cannot record itself: %s\n",
                   st.ToString().c_str());
    }
    return false;
  }

  void Progress(const std::string& line) {
    if (progress_fd_ < 0) return;
    std::string s = line + "\n";
    ssize_t n;
    do {
      n = ::write(progress_fd_, s.data(), s.size());
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN) {
      // The daemon is gone (EPIPE) or the fd is bad: carry on without it.
      ::close(progress_fd_);
      progress_fd_ = -1;
    }
  }

  void WriteStatus(bool sync = true) {
    Status st = WriteFileAtomic(Path(kStatusFile), RunStatusToJson(status_), sync);
    if (!st.ok()) std::fprintf(stderr, "berth-shim: %s\n", st.ToString().c_str());
  }

  // fsyncs status.json (written without it) once the daemon has been told.
  void SyncStatus() {
    const std::string path = Path(kStatusFile);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::fsync(fd) != 0)
      std::fprintf(stderr, "berth-shim: fsync %s: %s\n", path.c_str(), std::strerror(errno));
    if (fd >= 0) ::close(fd);
  }

  [[noreturn]] static void ChildFail(int err_fd, ExecFailure::Stage stage, int err) {
    ExecFailure f{stage, err};
    WriteAll(err_fd, reinterpret_cast<const char*>(&f), sizeof(f));
    ::_exit(ExitCodeFor(f));
  }

  // In the forked child: becomes the task. Never returns.
  [[noreturn]] void ChildExec(int out_w, int err_w, const ExecPlan& plan) {
    sigset_t none;
    sigemptyset(&none);
    ::signal(SIGPIPE, SIG_DFL);
    ::signal(SIGHUP, SIG_DFL);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::setpgid(0, 0);
    int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0 || ::dup2(null_fd, 0) < 0 || ::dup2(out_w, 1) < 0 || ::dup2(out_w, 2) < 0) {
      ChildFail(err_w, ExecFailure::kStdio, errno);
    }
    std::string pid = std::to_string(::getpid());
    for (const auto& f : cg_.procs_files) {
      int fd = ::open(f.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0 || ::write(fd, pid.data(), pid.size()) < 0) {
        std::fprintf(stderr, "[berth-shim] warning: cannot join cgroup %s: %s\n", f.c_str(),
                     std::strerror(errno));
      }
      if (fd >= 0) ::close(fd);
    }
    ExecFailure f = ExecTask(plan, info_.pid);
    ChildFail(err_w, f.stage, f.err);
  }

  // Drains the signal queue; true if a stop (SIGTERM/SIGINT) was in it.
  // A SIGCHLD read here is not lost: Loop reaps once before it waits.
  bool TakeStopSignal() {
    struct signalfd_siginfo si;
    bool term = false;
    while (::read(sfd_, &si, sizeof(si)) == static_cast<ssize_t>(sizeof(si))) {
      if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) term = true;
    }
    return term;
  }

  bool StopFileExists() const {
    struct stat st;
    return ::stat(Path(kStopFile).c_str(), &st) == 0;
  }

  // A pipeline step: its input artifacts copied in as the task's owner.
  bool PrepareStepFiles() {
    if (spec_.step_files.empty()) return true;
    auto files = ParseStepFiles(spec_.step_files);
    if (!files.ok()) return FailStart("berth-shim: " + files.status().message(), 127);
    step_files_ = std::move(files).value();
    if (step_files_.inputs.empty()) return true;
    const StepFiles& f = step_files_;
    auto r = RunAsTaskUser(spec_, [&f] { return CopyStepInputs(f).message(); });
    if (!r.ok()) return FailStart("berth-shim: " + r.status().message(), 127);
    if (!r->empty()) return FailStart(*r, 127);
    return true;
  }

  // A pipeline step that succeeded: its outputs read as the task's owner.
  void CollectStepFiles() {
    if (!status_.started || status_.exit_code != 0 || !step_files_.HasOutputs()) return;
    const StepFiles& f = step_files_;
    auto r = RunAsTaskUser(spec_, [&f] { return CollectStepOutputs(f); });
    status_.step_outputs = r.ok() ? *r : nlohmann::json{{"error", r.status().message()}}.dump();
  }

  // Forks and execs the task. False if it did not start (status_ says why).
  // A stop that comes before the command runs ends the start at once.
  bool StartChild() {
    const std::string stopped = "stopped before the task started";
    if (TakeStopSignal() || StopFileExists()) return FailStart(stopped, 128 + SIGTERM);
    auto plan = PlanExec(spec_, environ);
    if (!plan.ok()) return FailStart("berth-shim: " + plan.status().message(), 127);
    if (TakeStopSignal() || StopFileExists()) return FailStart(stopped, 128 + SIGTERM);
    // From here on the command may run: an executor that finds this shim
    // gone without a status cannot tell whether it did.
    int mark = ::open(Path(kForkedFile).c_str(),
                      O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (mark < 0)
      return FailStart(std::string("berth-shim: ") + kForkedFile + ": " + std::strerror(errno),
                       127);
    ::close(mark);

    int out[2];
    int errp[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(errp, O_CLOEXEC) != 0) {
      return FailStart(std::string("berth-shim: pipe: ") + std::strerror(errno), 127);
    }
    TimeMs start = SystemClock::Default().Now();
    pid_t pid = ::fork();
    if (pid < 0) return FailStart(std::string("berth-shim: fork: ") + std::strerror(errno), 127);
    if (pid == 0) {
      ::close(out[0]);
      ::close(errp[0]);
      ChildExec(out[1], errp[1], *plan);
    }
    TestPoint("task-forked", at_);
    ::setpgid(pid, pid);  // also done by the child; whichever runs first wins
    child_ = pid;
    ::close(out[1]);
    ::close(errp[1]);
    out_r_ = out[0];
    ::fcntl(out_r_, F_SETFL, ::fcntl(out_r_, F_GETFL) | O_NONBLOCK);

    // Wait for the exec (EOF: the close-on-exec pipe closed) or the child's
    // report of a failure, and for a stop request meanwhile.
    ExecFailure f{};
    size_t got = 0;
    bool stop = false;
    bool known = false;  // the exec's outcome arrived
    while (!known) {
      struct pollfd fds[2] = {{errp[0], POLLIN, 0}, {sfd_, POLLIN, 0}};
      int timeout = stop ? 0 : -1;
      int r = ::poll(fds, 2, timeout);
      if (r < 0 && errno == EINTR) continue;
      if (r == 0) break;  // stopped, and the command has not run
      if (fds[1].revents & POLLIN) stop = TakeStopSignal() || stop;
      if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
        ssize_t n = ::read(errp[0], reinterpret_cast<char*>(&f) + got, sizeof(f) - got);
        if (n < 0 && errno == EINTR) continue;
        if (n > 0) {
          got += static_cast<size_t>(n);
          if (got == sizeof(f)) known = true;
        } else {
          known = true;  // EOF (or an error: treat as exec'd, the exit tells)
        }
      }
    }
    ::close(errp[0]);
    if (!known) {
      ::killpg(pid, SIGKILL);
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      child_ = -1;
      EndDescendants();
      DrainOutput(MonotonicNanos() + 100 * kNanosPerMs);
      return FailStart(stopped, 128 + SIGTERM);
    }
    if (got == sizeof(f)) {
      ::waitpid(pid, nullptr, 0);
      child_ = -1;
      DrainOutput(MonotonicNanos() + kDrainNanos);
      return FailStart(DescribeFailure(f, spec_), ExitCodeFor(f));
    }

    status_.started = true;
    status_.start_time = start;
    status_.pid = pid;
    start_mono_ = MonotonicNanos();
    if (spec_.time_limit > 0) time_limit_at_ = start_mono_ + spec_.time_limit * kNanosPerMs;
    TestPoint("task-started", at_);
    Progress("started " + std::to_string(pid));
    info_.child_pid = pid;
    if (auto st = ReadProcStat(pid)) info_.child_start_ticks = st->start_ticks;
    Status st = WriteFileAtomic(Path(kTaskFile), TaskInfoToJson(info_), false);
    if (!st.ok()) std::fprintf(stderr, "berth-shim: %s\n", st.ToString().c_str());
    TestPoint("started-reported", at_);
    if (stop) OnStopRequest();
    return true;
  }

  bool FailStart(const std::string& error, int code) {
    status_.started = false;
    status_.exit_code = code;
    status_.error = error;
    status_.start_time = status_.end_time = SystemClock::Default().Now();
    log_->Line(error);
    Progress("failed " + error);
    return false;
  }

  // SIGKILLs whatever the task started that is still alive, wherever it moved
  // (other process groups and sessions included), until nothing is left.
  void EndDescendants() {
    auto left = KillDescendants(info_.pid, 2000);
    if (!left.ok()) {
      log_->Line("warning: cannot list the task's processes: " + left.status().message());
    } else if (*left > 0) {
      log_->Line("warning: " + std::to_string(*left) +
                 " process(es) the task started could not be ended");
    }
  }

  void Loop() {
    Reap();  // a SIGCHLD may have been read while the task started
    while (true) {
      int64_t now = MonotonicNanos();
      if (child_done_ && (out_r_ < 0 || now >= drain_until_)) break;
      if (!child_done_ && !stopping_ && now >= time_limit_at_) {
        BeginStop("time limit exceeded", spec_.grace,
                  "time limit of " + FormatDuration(spec_.time_limit) + " exceeded");
      }
      if (!child_done_ && stopping_ && !killed_ && now >= kill_at_) {
        log_->Line("grace period over: sending SIGKILL");
        Kill();
      }
      int64_t next = kNever;
      if (!child_done_ && !stopping_) next = std::min(next, time_limit_at_);
      if (!child_done_ && stopping_ && !killed_) next = std::min(next, kill_at_);
      if (child_done_) next = std::min(next, drain_until_);
      int timeout = -1;
      if (next != kNever) {
        int64_t ms = (std::max<int64_t>(next - now, 0) + kNanosPerMs - 1) / kNanosPerMs;
        timeout = static_cast<int>(std::min<int64_t>(ms, INT_MAX));
      }
      struct pollfd fds[2];
      int nfds = 0;
      fds[nfds++] = {sfd_, POLLIN, 0};
      if (out_r_ >= 0) fds[nfds++] = {out_r_, POLLIN, 0};
      int r = ::poll(fds, nfds, timeout);
      if (r < 0) {
        if (errno == EINTR) continue;
        std::fprintf(stderr, "berth-shim: poll: %s\n", std::strerror(errno));
        break;
      }
      if (nfds > 1 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) ReadOutput();
      if (fds[0].revents & POLLIN) HandleSignals();
    }
  }

  void ReadOutput() {
    char buf[64 * 1024];
    while (out_r_ >= 0) {
      ssize_t n = ::read(out_r_, buf, sizeof(buf));
      if (n > 0) {
        log_->Write(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;
      ::close(out_r_);  // EOF or error
      out_r_ = -1;
    }
  }

  // Copies what is left in the output pipe, until EOF or `until`.
  void DrainOutput(int64_t until) {
    while (out_r_ >= 0) {
      int64_t now = MonotonicNanos();
      if (now >= until) break;
      struct pollfd p = {out_r_, POLLIN, 0};
      int ms = static_cast<int>((until - now + kNanosPerMs - 1) / kNanosPerMs);
      if (::poll(&p, 1, ms) > 0) ReadOutput();
    }
  }

  void HandleSignals() {
    struct signalfd_siginfo si;
    bool chld = false;
    bool term = false;
    while (::read(sfd_, &si, sizeof(si)) == static_cast<ssize_t>(sizeof(si))) {
      if (si.ssi_signo == SIGCHLD) chld = true;
      if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) term = true;
    }
    if (chld) Reap();
    if (term) OnStopRequest();
  }

  // Reaps every exited child (the shim is a subreaper, so orphans of the task
  // come here too). The task's main process is seen first without reaping, so
  // its process group can be killed while the group id is still reserved.
  void Reap() {
    while (true) {
      siginfo_t si;
      std::memset(&si, 0, sizeof(si));
      if (::waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0) return;
      pid_t pid = si.si_pid;
      if (pid == child_ && !child_done_) {
        status_.end_time = SystemClock::Default().Now();
        ::killpg(child_, SIGKILL);  // whatever the task left behind in its group
        EndDescendants();           // and anywhere else
        int ws = 0;
        ::waitpid(pid, &ws, 0);
        child_done_ = true;
        wait_status_ = ws;
        drain_until_ = MonotonicNanos() + kDrainNanos;
      } else {
        ::waitpid(pid, nullptr, 0);
      }
    }
  }

  void OnStopRequest() {
    DurationMs grace = spec_.grace;
    if (auto text = ReadWholeFile(Path(kStopFile)); text.ok()) {
      char* end = nullptr;
      long long v = std::strtoll(text->c_str(), &end, 10);
      if (end != text->c_str() && v >= 0) grace = v;
    }
    if (child_done_ || child_ < 0) return;
    if (!stopping_) {
      BeginStop("", grace, "stop requested");
    } else if (!killed_) {
      kill_at_ = std::min(kill_at_, MonotonicNanos() + grace * kNanosPerMs);
    }
  }

  void BeginStop(const std::string& reason, DurationMs grace, const std::string& why) {
    stopping_ = true;
    reason_ = reason;
    if (grace <= 0) {
      log_->Line(why + ": sending SIGKILL");
      Kill();
      return;
    }
    log_->Line(why + ": sending SIGTERM, SIGKILL in " + FormatDuration(grace));
    ::killpg(child_, SIGTERM);
    (void)SignalDescendants(info_.pid, SIGTERM);
    kill_at_ = MonotonicNanos() + grace * kNanosPerMs;
  }

  void Kill() {
    killed_ = true;
    ::killpg(child_, SIGKILL);
    (void)SignalDescendants(info_.pid, SIGKILL);
  }

  void Finish() {
    if (status_.started) {
      if (WIFEXITED(wait_status_)) {
        status_.exit_code = WEXITSTATUS(wait_status_);
      } else if (WIFSIGNALED(wait_status_)) {
        status_.signal = WTERMSIG(wait_status_);
        status_.exit_code = 128 + status_.signal;
      }
      if (status_.signal == SIGKILL && CgroupOomKilled(cg_)) {
        status_.error = "out of memory: memory limit of " + std::to_string(spec_.memory_limit) +
                        " MiB exceeded";
        log_->Line(status_.error);
      } else if (!reason_.empty()) {
        status_.error = reason_;
      } else if (killed_) {
        status_.error = "killed after the grace period";
      }
    }
    EndDescendants();
    for (const auto& dir : cg_.dirs) {
      if (!RemoveCgroup(dir)) {
        std::fprintf(stderr, "berth-shim: cannot remove cgroup %s: %s\n", dir.c_str(),
                     std::strerror(errno));
      }
    }
    CollectStepFiles();
    TestPoint("task-exited", at_);
    if (log_ && log_->tap) log_->tap->Flush();
    // The daemon acts on the "exited" line (reading status.json), so the
    // fsync that keeps the status over a power loss is off its path.
    WriteStatus(false);
    TestPoint("status-written", at_);
    Progress("exited " + std::to_string(status_.exit_code) + " " + std::to_string(status_.signal));
    SyncStatus();
  }

  std::string dir_;
  int progress_fd_;
  std::string containment_problem_;
  int dirfd_ = -1;
  std::string at_;  // the run directory through dirfd_: /proc/self/fd/N
  RunSpec spec_;
  StepFiles step_files_;
  std::unique_ptr<LogWriter> log_;
  int sfd_ = -1;
  ShimInfo info_;
  TaskCgroups cg_;
  RunStatus status_;

  pid_t child_ = -1;
  int out_r_ = -1;
  int64_t start_mono_ = 0;
  int64_t time_limit_at_ = kNever;
  int64_t kill_at_ = kNever;
  int64_t drain_until_ = kNever;
  bool stopping_ = false;
  bool killed_ = false;
  bool child_done_ = false;
  int wait_status_ = 0;
  std::string reason_;
};

}  // namespace
}  // namespace berth::exec

int main(int argc, char** argv) {
  std::string dir;
  int progress_fd = -1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--run-dir" && i + 1 < argc) {
      dir = argv[++i];
    } else if (a == "--progress-fd" && i + 1 < argc) {
      progress_fd = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: berth-shim --run-dir DIR [--progress-fd N]\n");
      return 2;
    }
  }
  if (dir.empty()) {
    std::fprintf(stderr, "usage: berth-shim --run-dir DIR [--progress-fd N]\n");
    return 2;
  }
  // Signals first: a stop that arrives early stays pending until the loop
  // reads it (the executor also starts the shim with these blocked).
  sigset_t sigs = berth::exec::ShimSignals();
  ::sigprocmask(SIG_BLOCK, &sigs, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  ::signal(SIGHUP, SIG_IGN);
  // Only stdio and the progress fd are ours; anything else leaked in is closed.
  if (progress_fd > 3) ::close_range(3, static_cast<unsigned>(progress_fd) - 1, 0);
  ::close_range(static_cast<unsigned>(std::max(progress_fd, 2)) + 1, ~0U, 0);
  if (progress_fd >= 0) {
    ::fcntl(progress_fd, F_SETFL, ::fcntl(progress_fd, F_GETFL) | O_NONBLOCK);
    ::fcntl(progress_fd, F_SETFD, FD_CLOEXEC);
  }
  std::string containment_problem;
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    containment_problem = std::string("cannot become a child subreaper: ") + std::strerror(errno);
  }
  berth::exec::Shim shim(dir, progress_fd, containment_problem);
  return shim.Run();
}
