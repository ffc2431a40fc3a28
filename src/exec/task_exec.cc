#include "exec/task_exec.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <unordered_map>

namespace berth::exec {

namespace {

// Kept from the shim's environment for a task that runs as another user.
bool KeptForOtherUser(const std::string& name) {
  return name == "PATH" || name == "LANG" || name == "LANGUAGE" || name == "TZ" ||
         name.rfind("LC_", 0) == 0;
}

class EnvBuilder {
 public:
  void Set(std::string name, const std::string& value) {
    std::string entry = name + "=" + value;
    auto [it, inserted] = index_.emplace(std::move(name), entries_.size());
    if (inserted) {
      entries_.push_back(std::move(entry));
    } else {
      entries_[it->second] = std::move(entry);
    }
  }
  std::string Get(const std::string& name) const {
    auto it = index_.find(name);
    if (it == index_.end()) return {};
    return entries_[it->second].substr(name.size() + 1);
  }
  bool Has(const std::string& name) const { return index_.count(name) != 0; }
  std::vector<std::string> Take() { return std::move(entries_); }
  void Reserve(size_t n) {
    index_.reserve(n);
    entries_.reserve(n);
  }

 private:
  std::unordered_map<std::string, size_t> index_;
  std::vector<std::string> entries_;
};

}  // namespace

Result<ExecPlan> PlanExec(const RunSpec& spec, char** base) {
  ExecPlan p;
  p.argv = spec.argv;
  p.working_dir = spec.working_dir;
  p.switch_user = spec.uid >= 0 && static_cast<uid_t>(spec.uid) != ::geteuid();
  EnvBuilder env;
  env.Reserve(spec.env.size() + 64);
  for (char** e = base; e != nullptr && *e != nullptr; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (eq == nullptr) continue;
    std::string name(*e, static_cast<size_t>(eq - *e));
    if (p.switch_user && !KeptForOtherUser(name)) continue;
    env.Set(std::move(name), eq + 1);
  }
  env.Set("PWD", spec.working_dir);
  if (spec.uid >= 0) {
    env.Set("HOME", spec.home);
    env.Set("USER", spec.user);
    env.Set("LOGNAME", spec.user);
    env.Set("SHELL", spec.shell.empty() ? "/bin/sh" : spec.shell);
  }
  for (const auto& [k, v] : spec.env) env.Set(k, v);

  const std::string& cmd = spec.argv[0];
  if (cmd.find('/') != std::string::npos) {
    p.paths.push_back(cmd);
  } else {
    // The task's own PATH, as execvp would use it after the variables are set.
    std::string path = env.Has("PATH") ? env.Get("PATH") : "/bin:/usr/bin";
    size_t start = 0;
    while (true) {
      size_t colon = path.find(':', start);
      std::string dir = path.substr(start, colon == std::string::npos ? colon : colon - start);
      p.paths.push_back(dir.empty() ? cmd : dir + "/" + cmd);
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
  }
  p.env = env.Take();

  if (p.switch_user) {
    p.uid = static_cast<uid_t>(spec.uid);
    p.gid = static_cast<gid_t>(spec.gid);
    int n = 64;
    p.groups.resize(static_cast<size_t>(n));
    if (::getgrouplist(spec.user.c_str(), p.gid, p.groups.data(), &n) < 0) {
      p.groups.resize(static_cast<size_t>(n));
      if (::getgrouplist(spec.user.c_str(), p.gid, p.groups.data(), &n) < 0)
        return Internal("cannot list the groups of user " + spec.user);
    }
    p.groups.resize(static_cast<size_t>(n));
  }
  return p;
}

int SwitchUser(const ExecPlan& plan) {
  if (!plan.switch_user) return 0;
  if (::setgroups(plan.groups.size(), plan.groups.data()) != 0 || ::setgid(plan.gid) != 0 ||
      ::setuid(plan.uid) != 0) {
    return errno;
  }
  // Never back: a task that could regain root would defeat the switch.
  if (::setuid(0) == 0) return EPERM;
  return 0;
}

ExecFailure ExecTask(const ExecPlan& plan, pid_t shim) {
  if (int e = SwitchUser(plan); e != 0) return {ExecFailure::kCredentials, e};
  // Set after the switch (a change of credentials clears it): if the shim
  // dies, the task dies with it instead of running unsupervised.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != shim) ::_exit(127);
  if (::chdir(plan.working_dir.c_str()) != 0) return {ExecFailure::kChdir, errno};

  std::vector<char*> argv;
  argv.reserve(plan.argv.size() + 2);
  argv.push_back(nullptr);  // room for "sh" in front, for the ENOEXEC case
  for (const auto& a : plan.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  envp.reserve(plan.env.size() + 1);
  for (const auto& e : plan.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  bool denied = false;
  int last = ENOENT;
  for (const auto& path : plan.paths) {
    ::execve(path.c_str(), argv.data() + 1, envp.data());
    int e = errno;
    if (e == ENOEXEC) {
      // No #! line: run it as a shell script, as execvp does.
      argv[0] = const_cast<char*>("/bin/sh");
      char* saved = argv[1];
      argv[1] = const_cast<char*>(path.c_str());
      ::execve("/bin/sh", argv.data(), envp.data());
      argv[1] = saved;
      return {ExecFailure::kExec, ENOEXEC};
    }
    if (e == EACCES) {
      denied = true;
    } else if (e != ENOENT && e != ENOTDIR && e != ESTALE && e != ENODEV && e != ETIMEDOUT) {
      return {ExecFailure::kExec, e};
    }
    last = e;
  }
  return {ExecFailure::kExec, denied ? EACCES : last};
}

namespace {
void WriteAllTo(int fd, const std::string& s) {
  const char* p = s.data();
  size_t n = s.size();
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return;
    p += w;
    n -= static_cast<size_t>(w);
  }
}
}  // namespace

Result<std::string> RunAsTaskUser(const RunSpec& spec, const std::function<std::string()>& work) {
  constexpr size_t kMaxHelperOutput = 8 << 20;
  auto plan = PlanExec(spec, nullptr);
  if (!plan.ok()) return plan.status();
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return IoError(std::string("pipe: ") + std::strerror(errno));
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(p[0]);
    ::close(p[1]);
    return IoError(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::close(p[0]);
    if (int e = SwitchUser(*plan); e != 0) {
      WriteAllTo(p[1], "cannot run as user " + spec.user + ": " + std::strerror(e));
      ::_exit(2);
    }
    // Set after the switch (which clears it): it dies with its parent.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(2);
    ::umask(022);
    WriteAllTo(p[1], work());
    ::_exit(0);
  }
  ::close(p[1]);
  std::string out;
  char buf[16 * 1024];
  while (true) {
    ssize_t n = ::read(p[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (out.size() < kMaxHelperOutput) out.append(buf, static_cast<size_t>(n));
  }
  ::close(p[0]);
  int ws = 0;
  while (::waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
    return Internal(out.empty() ? "the helper that runs as the task's owner failed" : out);
  if (out.size() >= kMaxHelperOutput) return Internal("the helper's report is too large");
  return out;
}

int ExitCodeFor(const ExecFailure& f) {
  if (f.stage == ExecFailure::kExec &&
      (f.err == EACCES || f.err == ENOEXEC || f.err == EISDIR || f.err == EPERM)) {
    return 126;
  }
  return 127;
}

std::string DescribeFailure(const ExecFailure& f, const RunSpec& spec) {
  const std::string& cmd = spec.argv[0];
  switch (f.stage) {
    case ExecFailure::kChdir:
      return "working directory " + spec.working_dir + ": " + std::strerror(f.err);
    case ExecFailure::kStdio:
      return std::string("cannot set up the task's stdio: ") + std::strerror(f.err);
    case ExecFailure::kCredentials:
      return "cannot run as user " + spec.user + " (uid " + std::to_string(spec.uid) +
             "): " + std::strerror(f.err);
    case ExecFailure::kExec:
      break;
  }
  switch (f.err) {
    case ENOENT:
      return "command not found: " + cmd;
    case EACCES:
    case EPERM:
      return "permission denied: " + cmd;
    case ENOEXEC:
      return "cannot execute " + cmd + ": exec format error";
    default:
      return "cannot execute " + cmd + ": " + std::strerror(f.err);
  }
}

}  // namespace berth::exec
