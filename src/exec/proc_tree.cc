#include "exec/proc_tree.h"

#include <dirent.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "common/clock.h"
#include "exec/run_files.h"

namespace berth::exec {

namespace {

struct Proc {
  pid_t ppid = 0;
  char state = '?';
};

// Every process's parent and state, read once (O(processes)).
Result<std::unordered_map<pid_t, Proc>> ReadAll() {
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return Unavailable(std::string("/proc: ") + std::strerror(errno));
  std::unordered_map<pid_t, Proc> all;
  while (struct dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    auto st = ReadProcStat(static_cast<pid_t>(pid));
    if (!st) continue;  // exited meanwhile
    all[static_cast<pid_t>(pid)] = Proc{st->ppid, st->state};
  }
  ::closedir(d);
  return all;
}

bool Dead(char state) { return state == 'Z' || state == 'X'; }

}  // namespace

Result<std::vector<pid_t>> LiveDescendants(pid_t root) {
  ASSIGN_OR_RETURN(auto all, ReadAll());
  std::unordered_map<pid_t, std::vector<pid_t>> children;
  for (const auto& [pid, p] : all) children[p.ppid].push_back(pid);
  std::vector<pid_t> out;
  std::vector<pid_t> queue = {root};
  std::unordered_set<pid_t> seen = {root};
  for (size_t i = 0; i < queue.size(); ++i) {
    auto it = children.find(queue[i]);
    if (it == children.end()) continue;
    for (pid_t c : it->second) {
      if (!seen.insert(c).second) continue;
      queue.push_back(c);
      if (!Dead(all[c].state)) out.push_back(c);
    }
  }
  return out;
}

Result<int> SignalDescendants(pid_t root, int sig) {
  ASSIGN_OR_RETURN(std::vector<pid_t> pids, LiveDescendants(root));
  std::unordered_set<pid_t> tree(pids.begin(), pids.end());
  tree.insert(root);
  int sent = 0;
  for (pid_t pid : pids) {
    int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (fd < 0) continue;  // gone
    // The pidfd pins the process: if its parent is still in the tree, it is
    // the process found above and not a newcomer with a reused pid.
    auto st = ReadProcStat(pid);
    if (st && tree.count(st->ppid) != 0 &&
        ::syscall(SYS_pidfd_send_signal, fd, sig, nullptr, 0) == 0) {
      ++sent;
    }
    ::close(fd);
  }
  return sent;
}

Result<int> KillDescendants(pid_t root, int timeout_ms) {
  int64_t deadline = MonotonicNanos() + static_cast<int64_t>(timeout_ms) * 1000000;
  while (true) {
    ASSIGN_OR_RETURN(std::vector<pid_t> pids, LiveDescendants(root));
    if (pids.empty()) return 0;
    if (MonotonicNanos() >= deadline) return static_cast<int>(pids.size());
    ASSIGN_OR_RETURN(int sent, SignalDescendants(root, SIGKILL));
    (void)sent;
    struct timespec ts {
      0, 2 * 1000 * 1000
    };
    ::nanosleep(&ts, nullptr);
  }
}

}  // namespace berth::exec
