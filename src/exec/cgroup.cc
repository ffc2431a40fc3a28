#include "exec/cgroup.h"

#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <sstream>

namespace berth::exec {

namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

Status WriteSmall(const std::string& path, const std::string& text) {
  FILE* f = std::fopen(path.c_str(), "we");
  if (f == nullptr) return IoError(path + ": " + std::strerror(errno));
  size_t n = std::fwrite(text.data(), 1, text.size(), f);
  int e = (n != text.size()) ? errno : 0;
  if (std::fclose(f) != 0 && e == 0) e = errno;
  if (e != 0 || n != text.size()) return IoError(path + ": " + std::strerror(e ? e : EIO));
  return Status::Ok();
}

// mkdir that accepts an existing directory.
Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) == 0 || errno == EEXIST) return Status::Ok();
  return IoError(path + ": " + std::strerror(errno));
}

bool HasWord(const std::string& text, const std::string& word) {
  std::istringstream in(text);
  std::string w;
  while (in >> w) {
    if (w == word) return true;
  }
  return false;
}

// Value after `key` in a "key value" per line file (memory.events, oom_control).
int64_t KeyedValue(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string k;
  int64_t v;
  while (in >> k >> v) {
    if (k == key) return v;
  }
  return 0;
}

Status ProbeV2(const std::string& v2root, const std::string& name) {
  auto controllers = ReadWholeFile(JoinPath(v2root, "cgroup.controllers"));
  if (!controllers.ok()) return controllers.status();
  if (!HasWord(*controllers, "cpu") || !HasWord(*controllers, "memory")) {
    std::string have = *controllers;
    while (!have.empty() && std::isspace(static_cast<unsigned char>(have.back()))) have.pop_back();
    return Unavailable(v2root + ": cgroup v2 has no cpu and memory controllers (has: " +
                       (have.empty() ? std::string("none") : have) + ")");
  }
  auto enabled = ReadWholeFile(JoinPath(v2root, "cgroup.subtree_control"));
  if (!enabled.ok() || !HasWord(*enabled, "cpu") || !HasWord(*enabled, "memory")) {
    RETURN_IF_ERROR(WriteSmall(JoinPath(v2root, "cgroup.subtree_control"), "+cpu +memory"));
  }
  std::string parent = JoinPath(v2root, name);
  RETURN_IF_ERROR(MakeDir(parent));
  RETURN_IF_ERROR(WriteSmall(JoinPath(parent, "cgroup.subtree_control"), "+cpu +memory"));
  return Status::Ok();
}

}  // namespace

CgroupPlan ProbeCgroups(const std::string& root, const std::string& name, std::string* problem) {
  CgroupPlan plan;
  std::string v2root;
  if (Exists(JoinPath(root, "cgroup.controllers"))) {
    v2root = root;
  } else if (Exists(JoinPath(root, "unified/cgroup.controllers"))) {
    v2root = JoinPath(root, "unified");
  }
  std::string v2_problem = "no cgroup v2 hierarchy under " + root;
  if (!v2root.empty()) {
    Status st = ProbeV2(v2root, name);
    if (st.ok()) {
      plan.version = 2;
      plan.v2_parent = JoinPath(v2root, name);
      return plan;
    }
    v2_problem = st.message();
  }
  std::string v1_problem;
  for (const char* ctl : {"cpu", "memory"}) {
    std::string hier = JoinPath(root, ctl);
    std::string probe_file =
        std::string(ctl) == "cpu" ? "cpu.cfs_quota_us" : "memory.limit_in_bytes";
    if (!Exists(JoinPath(hier, probe_file))) {
      v1_problem += std::string(v1_problem.empty() ? "" : "; ") + "no cgroup v1 " + ctl +
                    " hierarchy at " + hier;
      continue;
    }
    Status st = MakeDir(JoinPath(hier, name));
    if (!st.ok()) {
      v1_problem += std::string(v1_problem.empty() ? "" : "; ") + st.message();
      continue;
    }
    (std::string(ctl) == "cpu" ? plan.cpu_parent : plan.memory_parent) = JoinPath(hier, name);
  }
  if (!plan.cpu_parent.empty() || !plan.memory_parent.empty()) {
    plan.version = 1;
    if (!v1_problem.empty() && problem != nullptr) {
      *problem = "cgroup v1 partly usable: " + v1_problem;
    }
    return plan;
  }
  if (problem != nullptr) *problem = v2_problem + "; " + v1_problem;
  return plan;
}

TaskCgroups CreateTaskCgroups(const CgroupPlan& plan, const std::string& leaf, MilliCpu cpu_limit,
                              MiB memory_limit, std::vector<std::string>* warnings) {
  TaskCgroups cg;
  cg.version = plan.version;
  if (cpu_limit <= 0 && memory_limit <= 0) return cg;
  auto warn = [&](const std::string& w) {
    if (warnings != nullptr) warnings->push_back(w);
  };
  const int64_t kPeriodUs = 100000;
  // milli-CPU -> microseconds of CPU per 100 ms period; the kernel's floor is 1 ms.
  int64_t quota = std::max<int64_t>(cpu_limit * kPeriodUs / kWholeCpu, 1000);
  int64_t bytes = memory_limit * 1024 * 1024;

  if (plan.version == 2) {
    std::string dir = JoinPath(plan.v2_parent, leaf);
    Status st = MakeDir(dir);
    if (!st.ok()) {
      warn("cannot create cgroup: " + st.message());
      return cg;
    }
    cg.dirs.push_back(dir);
    cg.procs_files.push_back(JoinPath(dir, "cgroup.procs"));
    if (cpu_limit > 0) {
      st = WriteSmall(JoinPath(dir, "cpu.max"),
                      std::to_string(quota) + " " + std::to_string(kPeriodUs));
      if (!st.ok()) warn("cannot set cpu limit: " + st.message());
    }
    if (memory_limit > 0) {
      st = WriteSmall(JoinPath(dir, "memory.max"), std::to_string(bytes));
      if (!st.ok()) {
        warn("cannot set memory limit: " + st.message());
      } else {
        cg.memory_dir = dir;
        (void)WriteSmall(JoinPath(dir, "memory.swap.max"), "0");
      }
    }
    return cg;
  }
  if (plan.version != 1) {
    warn("no usable cgroup hierarchy: running without cpu/memory limits");
    return cg;
  }
  if (cpu_limit > 0) {
    if (plan.cpu_parent.empty()) {
      warn("no cgroup v1 cpu hierarchy: running without the cpu limit");
    } else {
      std::string dir = JoinPath(plan.cpu_parent, leaf);
      Status st = MakeDir(dir);
      if (st.ok()) {
        cg.dirs.push_back(dir);
        cg.procs_files.push_back(JoinPath(dir, "cgroup.procs"));
        st = WriteSmall(JoinPath(dir, "cpu.cfs_period_us"), std::to_string(kPeriodUs));
        if (st.ok()) st = WriteSmall(JoinPath(dir, "cpu.cfs_quota_us"), std::to_string(quota));
      }
      if (!st.ok()) warn("cannot set cpu limit: " + st.message());
    }
  }
  if (memory_limit > 0) {
    if (plan.memory_parent.empty()) {
      warn("no cgroup v1 memory hierarchy: running without the memory limit");
    } else {
      std::string dir = JoinPath(plan.memory_parent, leaf);
      Status st = MakeDir(dir);
      if (st.ok()) {
        cg.dirs.push_back(dir);
        cg.procs_files.push_back(JoinPath(dir, "cgroup.procs"));
        st = WriteSmall(JoinPath(dir, "memory.limit_in_bytes"), std::to_string(bytes));
      }
      if (st.ok()) {
        cg.memory_dir = dir;
        // Without swap accounting this file is absent; then there is no swap to limit.
        std::string memsw = JoinPath(dir, "memory.memsw.limit_in_bytes");
        if (Exists(memsw)) (void)WriteSmall(memsw, std::to_string(bytes));
      } else {
        warn("cannot set memory limit: " + st.message());
      }
    }
  }
  return cg;
}

bool CgroupOomKilled(const TaskCgroups& cg) {
  if (cg.memory_dir.empty()) return false;
  if (cg.version == 2) {
    auto ev = ReadWholeFile(JoinPath(cg.memory_dir, "memory.events"));
    return ev.ok() && KeyedValue(*ev, "oom_kill") > 0;
  }
  auto ctl = ReadWholeFile(JoinPath(cg.memory_dir, "memory.oom_control"));
  if (ctl.ok() && KeyedValue(*ctl, "oom_kill") > 0) return true;
  auto failcnt = ReadWholeFile(JoinPath(cg.memory_dir, "memory.failcnt"));
  // Old kernels have no oom_kill counter; hitting the limit is the best hint.
  return ctl.ok() && ctl->find("oom_kill ") == std::string::npos && failcnt.ok() &&
         std::strtoll(failcnt->c_str(), nullptr, 10) > 0;
}

bool RemoveCgroup(const std::string& dir) {
  // Up to ~1 s: killed processes leave the cgroup as they exit.
  for (int i = 0; i < 100; ++i) {
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return true;
    if (errno != EBUSY) return false;
    auto procs = ReadWholeFile(JoinPath(dir, "cgroup.procs"));
    if (procs.ok()) {
      std::istringstream in(*procs);
      pid_t pid;
      while (in >> pid) ::kill(pid, SIGKILL);
    }
    struct timespec ts {
      0, 10 * 1000 * 1000
    };
    ::nanosleep(&ts, nullptr);
  }
  return false;
}

}  // namespace berth::exec
