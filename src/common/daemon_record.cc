#include "common/daemon_record.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace berth {

std::string UserDataDir() {
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x) return std::string(x) + "/berth";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/tmp") + "/.local/share/berth";
}

std::string DefaultDataDir() {
  if (const char* d = std::getenv("BERTH_DATA_DIR"); d && *d) return d;
  return UserDataDir();
}

namespace {

std::string RecordPath(const std::string& dir) { return dir + "/" + kDaemonRecordName; }

}  // namespace

Status WriteDaemonRecord(const std::string& dir, const DaemonRecord& record) {
  std::string path = RecordPath(dir);
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  std::string text = "url=" + record.url + "\npid=" + std::to_string(record.pid) +
                     "\ndataDir=" + record.data_dir + "\n";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("cannot write " + tmp + ": " + std::strerror(errno));
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    return IoError("cannot write " + path + ": " + why);
  }
  return Status::Ok();
}

Result<std::optional<DaemonRecord>> ReadDaemonRecord(const std::string& dir) {
  std::string path = RecordPath(dir);
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT || errno == ENOTDIR) return std::optional<DaemonRecord>();
    return IoError("cannot read " + path + ": " + std::strerror(errno));
  }
  DaemonRecord r;
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.empty()) continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos)
      return InvalidArgument(path + ": line " + std::to_string(line_no) + ": expected key=value");
    std::string key = line.substr(0, eq), value = line.substr(eq + 1);
    if (key == "url") {
      r.url = value;
    } else if (key == "pid") {
      char* end = nullptr;
      errno = 0;
      long v = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || errno != 0 || v <= 0 || v > (1L << 30))
        return InvalidArgument(path + ": pid: expected a positive process id, got \"" + value +
                               "\"");
      r.pid = static_cast<pid_t>(v);
    } else if (key == "dataDir") {
      r.data_dir = value;
    }  // other keys: written by a newer berthd, ignored
  }
  if (r.url.rfind("http://", 0) != 0 && r.url.rfind("https://", 0) != 0)
    return InvalidArgument(path + ": url: expected http://HOST:PORT, got \"" + r.url + "\"");
  if (r.pid == 0) return InvalidArgument(path + ": pid: missing");
  return std::optional<DaemonRecord>(r);
}

void RemoveDaemonRecord(const std::string& dir, pid_t pid) {
  auto r = ReadDaemonRecord(dir);
  if (r.ok() && *r && (*r)->pid == pid) ::unlink(RecordPath(dir).c_str());
}

bool DaemonRecordLive(const DaemonRecord& record) {
  if (record.pid <= 0) return false;
  if (::kill(record.pid, 0) != 0 && errno != EPERM) return false;
  if (record.data_dir.empty()) return true;
  int fd = ::open((record.data_dir + "/" + kDaemonLockName).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == EACCES;  // cannot tell: trust the pid
  bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);  // releases the shared lock if we got it
  return held;
}

}  // namespace berth
