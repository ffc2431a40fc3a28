#include "exec/run_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

namespace berth::exec {

using nlohmann::json;

namespace {

Status JsonError(const char* file, const std::exception& e) {
  return InvalidArgument(std::string(file) + ": " + e.what());
}

json KeyToJson(const TaskKey& k) {
  return json{{"job", k.job}, {"task", k.task}, {"attempt", k.attempt}};
}

TaskKey KeyFromJson(const json& j) {
  TaskKey k;
  k.job = j.at("job").get<JobId>();
  k.task = j.at("task").get<int>();
  k.attempt = j.at("attempt").get<int>();
  return k;
}

}  // namespace

std::string RunSpecToJson(const RunSpec& s) {
  json j;
  j["key"] = KeyToJson(s.key);
  j["argv"] = s.argv;
  j["env"] = s.env;
  j["workingDir"] = s.working_dir;
  j["cpuLimitMilli"] = s.cpu_limit;
  j["memoryLimitMiB"] = s.memory_limit;
  j["timeLimitMs"] = s.time_limit;
  j["graceMs"] = s.grace;
  j["logCapBytes"] = s.log_cap_bytes;
  j["cgroup"] = json{{"version", s.cgroup.version},
                     {"v2Parent", s.cgroup.v2_parent},
                     {"cpuParent", s.cgroup.cpu_parent},
                     {"memoryParent", s.cgroup.memory_parent}};
  if (s.uid >= 0) {
    j["runAs"] = json{
        {"uid", s.uid}, {"gid", s.gid}, {"user", s.user}, {"home", s.home}, {"shell", s.shell}};
  }
  if (!s.step_files.empty()) j["stepFiles"] = s.step_files;
  // Compact: a spec may carry a large environment.
  return j.dump() + "\n";
}

Result<RunSpec> ParseRunSpec(const std::string& text) {
  try {
    json j = json::parse(text);
    RunSpec s;
    s.key = KeyFromJson(j.at("key"));
    s.argv = j.at("argv").get<std::vector<std::string>>();
    s.env = j.value("env", std::map<std::string, std::string>{});
    s.working_dir = j.at("workingDir").get<std::string>();
    s.cpu_limit = j.value("cpuLimitMilli", int64_t{0});
    s.memory_limit = j.value("memoryLimitMiB", int64_t{0});
    s.time_limit = j.value("timeLimitMs", int64_t{0});
    s.grace = j.value("graceMs", int64_t{30 * kSecond});
    s.log_cap_bytes = j.value("logCapBytes", int64_t{100LL << 20});
    if (j.contains("cgroup")) {
      const json& c = j["cgroup"];
      s.cgroup.version = c.value("version", 0);
      s.cgroup.v2_parent = c.value("v2Parent", "");
      s.cgroup.cpu_parent = c.value("cpuParent", "");
      s.cgroup.memory_parent = c.value("memoryParent", "");
    }
    if (j.contains("runAs")) {
      const json& r = j["runAs"];
      s.uid = r.at("uid").get<int64_t>();
      s.gid = r.at("gid").get<int64_t>();
      s.user = r.at("user").get<std::string>();
      s.home = r.value("home", "");
      s.shell = r.value("shell", "");
      if (s.uid < 0 || s.gid < 0 || s.user.empty())
        return InvalidArgument("spec.json: runAs: needs uid, gid >= 0 and a user name");
    }
    s.step_files = j.value("stepFiles", "");
    if (s.argv.empty()) return InvalidArgument("spec.json: argv: must not be empty");
    return s;
  } catch (const std::exception& e) {
    return JsonError(kSpecFile, e);
  }
}

std::string RunStatusToJson(const RunStatus& s) {
  json j{{"started", s.started},  {"exitCode", s.exit_code},
         {"signal", s.signal},    {"startTime", s.start_time},
         {"endTime", s.end_time}, {"error", s.error},
         {"pid", s.pid}};
  if (!s.step_outputs.empty()) j["stepOutputs"] = s.step_outputs;
  return j.dump(2) + "\n";
}

Result<RunStatus> ParseRunStatus(const std::string& text) {
  try {
    json j = json::parse(text);
    RunStatus s;
    s.started = j.value("started", true);
    s.exit_code = j.at("exitCode").get<int>();
    s.signal = j.value("signal", 0);
    s.start_time = j.value("startTime", int64_t{0});
    s.end_time = j.value("endTime", int64_t{0});
    s.error = j.value("error", "");
    s.pid = j.value("pid", int64_t{0});
    s.step_outputs = j.value("stepOutputs", "");
    return s;
  } catch (const std::exception& e) {
    return JsonError(kStatusFile, e);
  }
}

std::string ShimInfoToJson(const ShimInfo& s) {
  json j{{"pid", s.pid}, {"startTicks", s.start_ticks}, {"cgroups", s.cgroups}};
  return j.dump(2) + "\n";
}

std::string AbandonedToJson(const std::string& reason) {
  json j{{"abandoned", true}, {"reason", reason}, {"pid", 0}, {"startTicks", 0}};
  return j.dump(2) + "\n";
}

std::string TaskInfoToJson(const ShimInfo& s) {
  json j{{"pid", s.child_pid}, {"startTicks", s.child_start_ticks}};
  return j.dump(2) + "\n";
}

Result<ShimInfo> ParseShimInfo(const std::string& text) {
  try {
    json j = json::parse(text);
    ShimInfo s;
    s.abandoned = j.value("abandoned", false);
    s.abandoned_reason = j.value("reason", "");
    s.pid = j.at("pid").get<int64_t>();
    s.start_ticks = j.at("startTicks").get<uint64_t>();
    s.cgroups = j.value("cgroups", std::vector<std::string>{});
    return s;
  } catch (const std::exception& e) {
    return JsonError(kShimFile, e);
  }
}

Result<ShimInfo> ReadShimInfo(const std::string& dir) {
  ASSIGN_OR_RETURN(std::string text, ReadWholeFile(JoinPath(dir, kShimFile)));
  ASSIGN_OR_RETURN(ShimInfo info, ParseShimInfo(text));
  auto task = ReadWholeFile(JoinPath(dir, kTaskFile));
  if (task.ok()) {
    try {
      json j = json::parse(*task);
      info.child_pid = j.at("pid").get<int64_t>();
      info.child_start_ticks = j.at("startTicks").get<uint64_t>();
    } catch (const std::exception& e) {
      return JsonError(kTaskFile, e);
    }
  }
  return info;
}

std::optional<ProcStat> ReadProcStat(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  auto text = ReadWholeFile("/proc/" + std::to_string(pid) + "/stat");
  if (!text.ok()) return std::nullopt;
  // The command name (field 2) is in parentheses and may hold spaces or ')':
  // the fields after the last ')' are fixed.
  size_t close = text->rfind(')');
  if (close == std::string::npos) return std::nullopt;
  const char* p = text->c_str() + close + 1;
  ProcStat st;
  // Fields 3.. : state, then 18 numbers, then starttime (field 22).
  int field = 3;
  while (*p != '\0') {
    while (*p == ' ') ++p;
    if (*p == '\0') break;
    const char* start = p;
    while (*p != ' ' && *p != '\0') ++p;
    if (field == 3) st.state = *start;
    if (field == 4) st.ppid = static_cast<pid_t>(std::strtol(start, nullptr, 10));
    if (field == 22) {
      st.start_ticks = std::strtoull(start, nullptr, 10);
      return st;
    }
    ++field;
  }
  return std::nullopt;
}

bool ShimAlive(const ShimInfo& info) {
  auto st = ReadProcStat(static_cast<pid_t>(info.pid));
  return st && st->start_ticks == info.start_ticks && st->state != 'Z' && st->state != 'X';
}

namespace {

// Writes `data` to a new file `tmp` (replacing a stale one, never through a link).
Status WriteNewFile(const std::string& tmp, const std::string& data, bool sync) {
  const int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
  int fd = ::open(tmp.c_str(), flags, 0644);
  if (fd < 0 && errno == EEXIST) {  // a stale one (or anything planted there)
    ::unlink(tmp.c_str());
    fd = ::open(tmp.c_str(), flags, 0644);
  }
  if (fd < 0) return IoError(tmp + ": " + std::strerror(errno));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return IoError(tmp + ": " + std::strerror(e));
    }
    off += static_cast<size_t>(n);
  }
  if (sync && ::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    return IoError(tmp + ": fsync: " + std::strerror(e));
  }
  ::close(fd);
  return Status::Ok();
}

}  // namespace

int OpenLiveShim(const ShimInfo& info) {
  if (info.abandoned || !ShimAlive(info)) return -1;
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, static_cast<pid_t>(info.pid), 0));
  if (fd < 0) return -1;
  // Checked again after opening: the pidfd now pins the process it names.
  if (!ShimAlive(info)) {
    ::close(fd);
    return -1;
  }
  return fd;
}

Status WriteFileAtomic(const std::string& path, const std::string& data, bool sync) {
  std::string tmp = path + ".tmp";
  RETURN_IF_ERROR(WriteNewFile(tmp, data, sync));
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return IoError(path + ": rename: " + std::strerror(e));
  }
  return Status::Ok();
}

Status CreateFileExclusive(const std::string& path, const std::string& data) {
  // A temp name of this process's own: two creators never share one.
  std::string tmp = path + ".new." + std::to_string(::getpid());
  RETURN_IF_ERROR(WriteNewFile(tmp, data, false));
  int rc = ::link(tmp.c_str(), path.c_str());
  int e = errno;
  ::unlink(tmp.c_str());
  if (rc == 0) return Status::Ok();
  if (e == EEXIST) return AlreadyExists(path + ": already exists");
  return IoError(path + ": link: " + std::strerror(e));
}

Result<std::string> ReadWholeFile(const std::string& path) {
  // O_NONBLOCK: a FIFO planted in place of a file must not hang the reader.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound(path + ": no such file");
    if (errno == ELOOP) return FailedPrecondition(path + ": is a symbolic link; not followed");
    return IoError(path + ": " + std::strerror(errno));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return FailedPrecondition(path + ": not a regular file");
  }
  std::string out;
  char buf[8192];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return IoError(path + ": " + std::strerror(e));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

namespace {

// Deeper trees than this (a task can make any) are left in place with an
// error rather than exhaust the daemon's stack or descriptors.
constexpr int kMaxRemoveDepth = 128;

Status RemoveTreeDepth(int dirfd, const std::string& name, int depth) {
  if (depth > kMaxRemoveDepth)
    return FailedPrecondition(name + ": nested deeper than " + std::to_string(kMaxRemoveDepth) +
                              " directories; not removed");
  struct stat st;
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return IoError(name + ": " + std::strerror(errno));
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(dirfd, name.c_str(), 0) != 0 && errno != ENOENT)
      return IoError(name + ": " + std::strerror(errno));
    return Status::Ok();
  }
  // Entries are removed through the directory's own fd: a directory renamed
  // or swapped for a link meanwhile is never followed out of the tree.
  int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::Ok();
    return IoError(name + ": " + std::strerror(errno));
  }
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    int e = errno;
    ::close(fd);
    return IoError(name + ": " + std::strerror(e));
  }
  Status first = Status::Ok();
  while (struct dirent* e = ::readdir(d)) {
    std::string child = e->d_name;
    if (child == "." || child == "..") continue;
    Status st2 = RemoveTreeDepth(::dirfd(d), child, depth + 1);
    if (!st2.ok() && first.ok()) first = Status(st2.code(), name + "/" + st2.message());
  }
  ::closedir(d);
  if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT && first.ok())
    first = IoError(name + ": " + std::strerror(errno));
  return first;
}

}  // namespace

Status RemoveTreeAt(int dirfd, const std::string& name) { return RemoveTreeDepth(dirfd, name, 0); }

Result<int> RemoveJobRunDirs(const std::string& run_root, JobId job,
                             const std::function<bool(const TaskKey&)>& keep) {
  const std::string prefix = "job-" + std::to_string(job) + ".";
  int root = ::open(run_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) {
    if (errno == ENOENT) return 0;
    return IoError(run_root + ": " + std::strerror(errno));
  }
  std::vector<std::pair<std::string, TaskKey>> dirs;
  if (DIR* d = ::fdopendir(::dup(root))) {
    while (struct dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name.rfind(prefix, 0) != 0) continue;
      if (auto key = TaskKey::Parse(name)) dirs.emplace_back(name, *key);
    }
    ::closedir(d);
  }
  int removed = 0;
  std::string first_error;
  for (const auto& [name, key] : dirs) {
    if (keep && keep(key)) continue;
    Status st = RemoveTreeAt(root, name);
    if (st.ok()) {
      ++removed;
    } else if (first_error.empty()) {
      first_error = st.message();
    }
  }
  ::close(root);
  if (!first_error.empty()) return IoError("could not remove " + first_error);
  return removed;
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty() || dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

}  // namespace berth::exec
