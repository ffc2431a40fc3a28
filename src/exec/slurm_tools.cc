#include "exec/slurm_tools.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <sstream>

extern char** environ;

namespace berth::exec {

namespace {

// What one tool may print before it is cut off (sinfo of a large cluster
// stays far below).
constexpr size_t kMaxOutput = 16u << 20;

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t b = 0;
  for (;;) {
    size_t e = s.find(sep, b);
    out.push_back(s.substr(b, e == std::string::npos ? std::string::npos : e - b));
    if (e == std::string::npos) return out;
    b = e + 1;
  }
}

bool ParseInt(const std::string& s, int64_t* out) {
  if (s.empty() || s.size() > 18) return false;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

int64_t MonotonicMs() {
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

std::string FirstLine(const std::string& s) {
  std::string t = s.substr(0, s.find('\n'));
  if (t.size() > 300) t = t.substr(0, 300) + "...";
  return t;
}

}  // namespace

void ParseGpuGres(const std::string& gres, int* count, std::string* type) {
  *count = 0;
  type->clear();
  // Entries are comma-separated, but a socket list "(S:0-1)" may hold commas too.
  std::vector<std::string> entries;
  std::string cur;
  int depth = 0;
  for (char c : gres) {
    if (c == '(') ++depth;
    if (c == ')' && depth > 0) --depth;
    if (c == ',' && depth == 0) {
      entries.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  entries.push_back(cur);
  for (std::string e : entries) {
    e = e.substr(0, e.find('('));
    std::vector<std::string> parts = Split(e, ':');
    if (parts.size() < 2 || parts[0] != "gpu") continue;
    int64_t n = 0;
    if (!ParseInt(parts.back(), &n) || n > 4096) continue;
    *count += static_cast<int>(n);
    if (parts.size() >= 3 && type->empty()) *type = parts[1];
  }
}

bool UsableNodeState(const std::string& state) {
  if (state.empty()) return false;
  // Flags sinfo appends: * not responding, ~ powered off, # powering up,
  // ! pending power down, % powering down, @ pending reboot, ^ rebooting.
  if (state.find_first_of("*~#!%@^") != std::string::npos) return false;
  for (const char* bad : {"down", "drain", "fail", "maint", "inval", "unk", "reboot", "future",
                          "power", "no_respond", "perfctrs", "reserved"}) {
    if (state.find(bad) != std::string::npos) return false;
  }
  std::string base = state.substr(0, state.find_first_of("+-$"));
  return base == "idle" || base == "mixed" || base == "allocated" || base == "completing" ||
         base == "planned";
}

Result<std::vector<SlurmNode>> ParseSinfo(const std::string& text) {
  std::vector<SlurmNode> out;
  std::set<std::string> seen;
  int line_no = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    std::vector<std::string> f = Split(line, '|');
    auto bad = [&](const std::string& why) {
      return InvalidArgument("sinfo line " + std::to_string(line_no) + " (\"" + FirstLine(line) +
                             "\"): " + why);
    };
    if (f.size() != 6) return bad("expected 6 fields separated by |");
    SlurmNode n;
    n.name = f[0];
    if (n.name.empty()) return bad("no node name");
    n.address = f[1].empty() ? n.name : f[1];
    int64_t cpus = 0, mem = 0;
    if (!ParseInt(f[2], &cpus)) return bad("CPUs: not a number");
    // A node whose memory is not configured reports 1 (MiB).
    if (!ParseInt(f[3], &mem)) return bad("memory: not a number");
    n.cpu = cpus * 1000;
    n.memory = mem;
    ParseGpuGres(f[4], &n.gpus, &n.gpu_type);
    n.state = f[5];
    n.usable = UsableNodeState(n.state);
    if (!seen.insert(n.name).second) continue;
    out.push_back(std::move(n));
  }
  return out;
}

Result<std::vector<SlurmJob>> ParseSqueue(const std::string& text) {
  std::vector<SlurmJob> out;
  int line_no = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    std::vector<std::string> f = Split(line, '|');
    if (f.size() < 5) {
      return InvalidArgument("squeue line " + std::to_string(line_no) + " (\"" + FirstLine(line) +
                             "\"): expected 5 fields separated by |");
    }
    SlurmJob j;
    j.id = f[0];
    j.name = f[1];
    j.state = f[2];
    j.nodes = f[3];
    // A reason may itself hold a "|"; it is the last field.
    j.reason = f[4];
    for (size_t i = 5; i < f.size(); ++i) j.reason += "|" + f[i];
    out.push_back(std::move(j));
  }
  return out;
}

bool SlurmJobEnded(const std::string& state) {
  static const std::set<std::string> kEnded = {
      "BOOT_FAIL", "CANCELLED", "COMPLETED",    "DEADLINE",      "FAILED", "NODE_FAIL",
      "PREEMPTED", "TIMEOUT",   "SPECIAL_EXIT", "OUT_OF_MEMORY", "REVOKED"};
  return kEnded.count(state) != 0;
}

SlurmTools::SlurmTools(SlurmToolsOptions options) : options_(std::move(options)) {
  if (options_.bin_dir.empty()) options_.bin_dir = "/usr/bin";
}

std::string SlurmTools::Failure(const std::string& tool, const ToolResult& r) {
  std::string why = FirstLine(r.err.empty() ? r.out : r.err);
  return tool + ": exit " + std::to_string(r.exit_code) + (why.empty() ? "" : ": " + why);
}

Result<ToolResult> SlurmTools::Run(const std::string& tool, const std::vector<std::string>& args,
                                   const std::string& input) const {
  const std::string path = options_.bin_dir + "/" + tool;
  std::vector<std::string> env_store;
  for (char** e = environ; e && *e; ++e) {
    if (std::strncmp(*e, "SLURM_CONF=", 11) == 0 && !options_.conf.empty()) continue;
    env_store.emplace_back(*e);
  }
  if (!options_.conf.empty()) env_store.push_back("SLURM_CONF=" + options_.conf);
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_store = {path};
  argv_store.insert(argv_store.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_store) argv.push_back(a.data());
  argv.push_back(nullptr);

  int in_p[2], out_p[2], err_p[2];
  if (::pipe2(in_p, O_CLOEXEC) != 0) return IoError(std::string("pipe: ") + std::strerror(errno));
  if (::pipe2(out_p, O_CLOEXEC) != 0) {
    ::close(in_p[0]);
    ::close(in_p[1]);
    return IoError(std::string("pipe: ") + std::strerror(errno));
  }
  if (::pipe2(err_p, O_CLOEXEC) != 0) {
    for (int fd : {in_p[0], in_p[1], out_p[0], out_p[1]}) ::close(fd);
    return IoError(std::string("pipe: ") + std::strerror(errno));
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_p[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out_p[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_p[1], 2);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t def;
  sigemptyset(&def);
  sigaddset(&def, SIGPIPE);
  posix_spawnattr_setsigdefault(&attr, &def);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, path.c_str(), &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(in_p[0]);
  ::close(out_p[1]);
  ::close(err_p[1]);
  if (rc != 0) {
    for (int fd : {in_p[1], out_p[0], err_p[0]}) ::close(fd);
    return Unavailable(path + ": cannot run: " + std::strerror(rc));
  }

  ToolResult r;
  int in_fd = in_p[1];
  ::fcntl(in_fd, F_SETFL, O_NONBLOCK);
  size_t written = 0;
  if (input.empty()) {
    ::close(in_fd);
    in_fd = -1;
  }
  int fds[2] = {out_p[0], err_p[0]};
  std::string* bufs[2] = {&r.out, &r.err};
  const int64_t deadline = MonotonicMs() + options_.timeout;
  bool timed_out = false;
  while (fds[0] >= 0 || fds[1] >= 0 || in_fd >= 0) {
    int64_t left = deadline - MonotonicMs();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    struct pollfd p[3];
    int n = 0;
    for (int fd : fds) {
      if (fd >= 0) p[n++] = {fd, POLLIN, 0};
    }
    if (in_fd >= 0) p[n++] = {in_fd, POLLOUT, 0};
    int pr = ::poll(p, n, static_cast<int>(std::min<int64_t>(left, 1000)));
    if (pr < 0 && errno != EINTR) break;
    for (int i = 0; i < n; ++i) {
      if (p[i].revents == 0) continue;
      if (p[i].fd == in_fd) {
        ssize_t w = ::write(in_fd, input.data() + written, input.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if (w < 0 && errno != EAGAIN && errno != EINTR) written = input.size();
        if (written >= input.size()) {
          ::close(in_fd);
          in_fd = -1;
        }
        continue;
      }
      int k = p[i].fd == fds[0] ? 0 : 1;
      char buf[65536];
      ssize_t got = ::read(fds[k], buf, sizeof(buf));
      if (got > 0) {
        if (bufs[k]->size() < kMaxOutput) bufs[k]->append(buf, static_cast<size_t>(got));
      } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
        ::close(fds[k]);
        fds[k] = -1;
      }
    }
  }
  for (int fd : fds) {
    if (fd >= 0) ::close(fd);
  }
  if (in_fd >= 0) ::close(in_fd);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return Unavailable(tool + ": no answer within " + std::to_string(options_.timeout / 1000) +
                       "s (killed)");
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

Result<std::vector<SlurmNode>> SlurmTools::Nodes() const {
  std::vector<std::string> args = {"-h", "-N", "-o", "%N|%o|%c|%m|%G|%T"};
  if (!options_.partition.empty()) args.push_back("--partition=" + options_.partition);
  ASSIGN_OR_RETURN(ToolResult r, Run("sinfo", args));
  if (r.exit_code != 0) return Unavailable(Failure("sinfo", r));
  return ParseSinfo(r.out);
}

Result<std::vector<SlurmJob>> SlurmTools::Jobs() const {
  ASSIGN_OR_RETURN(ToolResult r, Run("squeue", {"-h", "-t", "all", "-o", "%i|%j|%T|%N|%r"}));
  if (r.exit_code != 0) return Unavailable(Failure("squeue", r));
  return ParseSqueue(r.out);
}

Result<std::string> SlurmTools::Submit(const std::vector<std::string>& args,
                                       const std::string& script) const {
  std::vector<std::string> a = {"--parsable"};
  a.insert(a.end(), args.begin(), args.end());
  ASSIGN_OR_RETURN(ToolResult r, Run("sbatch", a, script));
  if (r.exit_code != 0) return Unavailable(Failure("sbatch", r));
  // "<id>" or "<id>;<cluster>".
  std::string id = r.out.substr(0, r.out.find_first_of(";\n"));
  int64_t n = 0;
  if (!ParseInt(id, &n)) return Internal("sbatch: no job id in \"" + FirstLine(r.out) + "\"");
  return id;
}

Status SlurmTools::Cancel(const std::string& id, const std::string& signal) const {
  std::vector<std::string> args;
  if (!signal.empty()) args = {"--batch", "--signal=" + signal};
  args.push_back(id);
  ASSIGN_OR_RETURN(ToolResult r, Run("scancel", args));
  if (r.exit_code != 0) return Unavailable(Failure("scancel", r));
  return Status::Ok();
}

}  // namespace berth::exec
