// A real Slurm 22.05 cluster for tests, all on this machine: munged, slurmctld
// and N slurmd, each slurmd a node with 4 "GPUs" (gres on existing device
// files, /dev/loop0-7: Slurm only needs distinct device files to bind). Every
// file (configuration, state, spool, logs, munge key and socket) lives in one
// temporary directory; the daemons run in the foreground as this process's
// children on free ports, and are stopped (jobs cancelled first) when the
// object goes. Needs root (slurmd runs jobs as their users) and the Debian
// packages slurmctld, slurmd, slurm-client and munge.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/net.h"
#include "integration/harness.h"

namespace berth::testing {

class SlurmCluster {
 public:
  struct Options {
    int nodes = 2;
    int gpus_per_node = 4;
    int cpus_per_node = 8;
    int memory_per_node = 8000;  // MiB
    std::string partition = "berth";
  };

  SlurmCluster() : SlurmCluster(Options{}) {}
  explicit SlurmCluster(Options o) : o_(std::move(o)) {}
  ~SlurmCluster() { Stop(); }

  // Why this machine cannot run the cluster (not root, a tool missing), or
  // empty when it can.
  static std::string Unavailable() {
    if (::geteuid() != 0) return "the Slurm tests need root (slurmd runs jobs as their users)";
    for (const char* tool : {"/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/sbin/munged",
                             "/usr/bin/sbatch", "/usr/bin/sinfo"}) {
      if (::access(tool, X_OK) != 0)
        return std::string(tool) +
               " is missing: install slurmctld, slurmd, slurm-client and munge "
               "(scripts/install-deps.sh --test)";
    }
    for (int i = 0; i < 8; ++i) {
      std::string dev = "/dev/loop" + std::to_string(i);
      if (::access(dev.c_str(), F_OK) != 0) return dev + " is missing (the nodes' gres files)";
    }
    return "";
  }

  // Writes the configuration and starts every daemon; returns an empty
  // string once sinfo shows every node idle, else what went wrong.
  std::string Start() {
    dir_ = dir_holder_.path();
    char host[256] = {};
    ::gethostname(host, sizeof(host) - 1);
    host_ = host;
    std::filesystem::create_directories(dir_ + "/state");
    std::filesystem::create_directories(dir_ + "/spool");
    // munge: its own key and socket, so no system munged is needed.
    std::string key(128, '\0');
    for (auto& c : key) c = static_cast<char>(std::rand() & 0xff);
    WriteFile(dir_ + "/munge.key", key);
    ::chmod((dir_ + "/munge.key").c_str(), 0600);
    ::chmod(dir_.c_str(), 0755);
    munged_ =
        Spawn({"/usr/sbin/munged", "--foreground", "--force", "--socket=" + dir_ + "/munge.sock",
               "--key-file=" + dir_ + "/munge.key", "--pid-file=" + dir_ + "/munged.pid",
               "--log-file=" + dir_ + "/munged.log", "--seed-file=" + dir_ + "/munged.seed"},
              "munged");
    if (!WaitFor([&] { return std::filesystem::exists(dir_ + "/munge.sock"); },
                 std::chrono::seconds(10)))
      return "munged did not start: " + ReadFile(dir_ + "/munged.out");

    int ctld_port = FreeTcpPort("127.0.0.1");
    std::string conf;
    conf += "ClusterName=berthtest\n";
    conf += "SlurmctldHost=" + host_ + "(127.0.0.1)\n";
    conf += "SlurmctldPort=" + std::to_string(ctld_port) + "\n";
    conf += "SlurmUser=root\nSlurmdUser=root\n";
    conf += "AuthType=auth/munge\nCredType=cred/munge\n";
    conf += "AuthInfo=socket=" + dir_ + "/munge.sock\n";
    conf += "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n";
    conf +=
        "JobAcctGatherType=jobacct_gather/none\nAccountingStorageType=accounting_storage/none\n";
    conf += "JobCompType=jobcomp/none\nMpiDefault=none\n";
    conf += "SelectType=select/cons_tres\nSelectTypeParameters=CR_Core\nGresTypes=gpu\n";
    conf += "StateSaveLocation=" + dir_ + "/state\n";
    conf += "SlurmdSpoolDir=" + dir_ + "/spool/%n\n";
    conf += "SlurmctldPidFile=" + dir_ + "/slurmctld.pid\n";
    conf += "SlurmdPidFile=" + dir_ + "/slurmd.%n.pid\n";
    conf += "SlurmctldLogFile=" + dir_ + "/slurmctld.log\n";
    conf += "SlurmdLogFile=" + dir_ + "/slurmd.%n.log\n";
    // More CPUs per node than this machine has; nodes idle at once.
    conf += "SlurmdParameters=config_overrides\nReturnToService=2\n";
    // Batch jobs start on the next pass, not after the default delay; a dead
    // slurmd is noticed in seconds; finished jobs stay visible a while.
    conf += "SchedulerParameters=batch_sched_delay=0,sched_min_interval=0\n";
    conf += "MessageTimeout=3\nSlurmdTimeout=5\nKillWait=5\nMinJobAge=600\n";
    std::string gres;
    std::vector<std::string> names;
    for (int n = 0; n < o_.nodes; ++n) {
      std::string name = "n" + std::to_string(n + 1);
      names.push_back(name);
      int port = FreeTcpPort("127.0.0.1");
      conf += "NodeName=" + name + " NodeHostname=" + host_ +
              " NodeAddr=127.0.0.1 Port=" + std::to_string(port) +
              " CPUs=" + std::to_string(o_.cpus_per_node) +
              " RealMemory=" + std::to_string(o_.memory_per_node) +
              " Gres=gpu:" + std::to_string(o_.gpus_per_node) + " State=UNKNOWN\n";
      int first = (n * o_.gpus_per_node) % 8;
      gres += "NodeName=" + name + " Name=gpu File=/dev/loop[" + std::to_string(first) + "-" +
              std::to_string(first + o_.gpus_per_node - 1) + "]\n";
    }
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ",") + n;
    conf += "PartitionName=" + o_.partition + " Nodes=" + list +
            " Default=YES MaxTime=INFINITE State=UP\n";
    conf_ = dir_ + "/slurm.conf";
    WriteFile(conf_, conf);
    WriteFile(dir_ + "/gres.conf", gres);

    ctld_ = Spawn({"/usr/sbin/slurmctld", "-D", "-i", "-f", conf_}, "slurmctld");
    for (const auto& n : names) StartNode(n);
    if (!WaitFor([&] { return AllIdle(names); }, std::chrono::seconds(30)))
      return "the nodes did not become idle: " + Sinfo() + "\n" + ReadFile(dir_ + "/slurmctld.log");
    return "";
  }

  // Stops slurmctld (SIGTERM: it saves its state) and starts it again.
  void StopController() { StopPid(ctld_); }
  void StartController() { ctld_ = Spawn({"/usr/sbin/slurmctld", "-D", "-f", conf_}, "slurmctld"); }

  // Starts (or restarts) the slurmd of node `name`.
  void StartNode(const std::string& name) {
    nodes_[name] = Spawn({"/usr/sbin/slurmd", "-D", "-f", conf_, "-N", name}, "slurmd." + name);
  }
  // SIGKILLs the slurmd of `name` (its running jobs' slurmstepd stay).
  void KillNode(const std::string& name) {
    auto it = nodes_.find(name);
    if (it == nodes_.end() || it->second <= 0) return;
    ::kill(it->second, SIGKILL);
    ::waitpid(it->second, nullptr, 0);
    it->second = 0;
  }

  // Runs a Slurm client tool (sinfo, squeue, scontrol, ...) against this cluster.
  CommandResult Tool(const std::string& tool, std::vector<std::string> args) const {
    args.insert(args.begin(), "/usr/bin/" + tool);
    return RunCommand(args, {"SLURM_CONF=" + conf_});
  }
  std::string Sinfo() const { return Tool("sinfo", {"-h", "-N", "-o", "%N %T"}).out; }

  void Stop() {
    if (ctld_ > 0) {
      // Cancel what is left so no task outlives the test, and wait for it.
      Tool("scancel", {"--partition=" + o_.partition});
      WaitFor([&] { return Tool("squeue", {"-h"}).out.empty(); }, std::chrono::seconds(15));
    }
    for (auto& [name, pid] : nodes_) StopPid(pid);
    StopPid(ctld_);
    StopPid(munged_);
  }

  const std::string& conf() const { return conf_; }
  const std::string& dir() const { return dir_; }
  const std::string& host() const { return host_; }
  const Options& options() const { return o_; }

 private:
  bool AllIdle(const std::vector<std::string>& names) const {
    std::string s = Sinfo();
    for (const auto& n : names)
      if (s.find(n + " idle\n") == std::string::npos) return false;
    return true;
  }

  pid_t Spawn(const std::vector<std::string>& args, const std::string& log) {
    return SpawnToFiles(args, {"SLURM_CONF=" + conf_}, dir_ + "/" + log + ".out",
                        dir_ + "/" + log + ".err");
  }
  static void StopPid(pid_t& pid) {
    if (pid <= 0) return;
    ::kill(pid, SIGTERM);
    bool gone =
        WaitFor([&] { return ::waitpid(pid, nullptr, WNOHANG) == pid; }, std::chrono::seconds(10));
    if (!gone) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    pid = 0;
  }

  Options o_;
  TempDir dir_holder_;
  std::string dir_, host_, conf_;
  pid_t munged_ = 0, ctld_ = 0;
  std::map<std::string, pid_t> nodes_;
};

// Skips the test (or fails it under BERTH_REQUIRE_TOOLS) when Slurm cannot run here.
#define BERTH_SKIP_WITHOUT_SLURM()                                                  \
  do {                                                                              \
    std::string berth_why_ = ::berth::testing::SlurmCluster::Unavailable();         \
    if (!berth_why_.empty()) BERTH_SKIP_UNLESS_REQUIRED("no Slurm: " + berth_why_); \
  } while (0)

}  // namespace berth::testing
