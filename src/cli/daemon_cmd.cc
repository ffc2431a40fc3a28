// berth up / berth down: start berthd (in the foreground, or detached and
// waiting until the daemon it started answers) and stop the daemon that the
// discovery rule (cli/discovery.h) finds.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <thread>

#include "cli/commands.h"
#include "cli/discovery.h"
#include "common/clock.h"
#include "common/daemon_record.h"
#include "common/net.h"

namespace berth::cli {
namespace {

struct UpFlags {
  bool detach = false;
  std::string listen, data_dir, config, policy, log_level;
  int gpus = -1;
};

std::string FindBerthd() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  std::string dir = ec ? "" : self.parent_path().string();
  if (!dir.empty() && ::access((dir + "/berthd").c_str(), X_OK) == 0) return dir + "/berthd";
  return "berthd";  // from PATH
}

// The lines `path` gained past byte `offset` (the last `max` of them).
std::vector<std::string> LinesSince(const std::string& path, std::streamoff offset, size_t max) {
  std::ifstream in(path);
  in.seekg(offset);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  if (lines.size() > max)
    lines.erase(lines.begin(), lines.end() - static_cast<std::ptrdiff_t>(max));
  return lines;
}

int Up(const UpFlags& f) {
  std::string berthd = FindBerthd();
  std::vector<std::string> args = {berthd};
  if (!f.listen.empty()) args.insert(args.end(), {"--listen", f.listen});
  if (!f.data_dir.empty()) args.insert(args.end(), {"--data-dir", f.data_dir});
  if (!f.config.empty()) args.insert(args.end(), {"--config", f.config});
  if (f.gpus >= 0) args.insert(args.end(), {"--gpus", std::to_string(f.gpus)});
  if (!f.policy.empty()) args.insert(args.end(), {"--policy", f.policy});
  if (!f.log_level.empty()) args.insert(args.end(), {"--log-level", f.log_level});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  if (!f.detach) {
    ::execvp(argv[0], argv.data());
    std::cerr << "berth: cannot start " << berthd << ": " << std::strerror(errno) << "\n";
    return kExitError;
  }

  // Where the daemon will answer: its record in its data directory (the only
  // way to learn the port of --listen HOST:0), or the address --listen (or
  // the default) names. Either counts only when /healthz there reports the
  // pid of the daemon started here: another daemon may answer there.
  std::string probe;
  if (!f.listen.empty()) {
    std::string host = "127.0.0.1";
    int port = 7420;
    if (Status st = ParseListen(f.listen, &host, &port); !st.ok())
      return Report(st.WithContext("--listen"));
    if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    if (port != 0) probe = "http://" + host + ":" + std::to_string(port);
  } else if (f.config.empty()) {
    probe = "http://127.0.0.1:7420";
  }
  std::string dir = f.data_dir.empty() ? DefaultDataDir() : f.data_dir;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Report(InvalidArgument("--data-dir: cannot create " + dir + ": " + ec.message()));
  std::string log = dir + "/berthd.log";
  struct stat log_st {};
  std::streamoff log_start = ::stat(log.c_str(), &log_st) == 0 ? log_st.st_size : 0;

  pid_t pid = ::fork();
  if (pid < 0) {
    std::cerr << "berth: fork: " << std::strerror(errno) << "\n";
    return kExitError;
  }
  if (pid == 0) {
    ::setsid();
    FILE* out = std::freopen(log.c_str(), "a", stderr);
    if (out) ::dup2(::fileno(stderr), STDOUT_FILENO);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    ::execvp(argv[0], argv.data());
    std::fprintf(stderr, "berth: cannot start %s: %s\n", berthd.c_str(), std::strerror(errno));
    ::_exit(127);
  }
  int64_t deadline = MonotonicNanos() + 20'000'000'000LL;
  while (MonotonicNanos() < deadline) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      std::cerr << "berth: berthd (pid " << pid << ") did not start: it exited with "
                << (WIFEXITED(status) ? "code " + std::to_string(WEXITSTATUS(status))
                                      : "signal " + std::to_string(WTERMSIG(status)))
                << "; it said (" << log << "):\n";
      for (const auto& l : LinesSince(log, log_start, 10)) std::cerr << "  " << l << "\n";
      return kExitError;
    }
    std::vector<std::string> urls;
    if (auto rec = ReadDaemonRecord(dir); rec.ok() && *rec && (*rec)->pid == pid)
      urls.push_back((*rec)->url);
    if (!probe.empty()) urls.push_back(probe);
    for (const std::string& url : urls) {
      ApiClient api(url);
      auto h = api.Get("/healthz");
      if (!h.ok() || !(*h)["pid"].is_number_integer() || (*h)["pid"].get<pid_t>() != pid) continue;
      std::cout << "berthd " << h->value("version", "") << " is up at " << url << " (pid " << pid
                << ", " << h->value("inventory", "") << ", policy " << h->value("policy", "")
                << "); log: " << log << "\n";
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::cerr << "berth: berthd (pid " << pid << ") did not answer within 20 s"
            << (probe.empty() ? "" : " at " + probe) << "; it keeps running; see " << log << "\n";
  return kExitError;
}

// Gone, or a zombie waiting for a parent that does not reap.
bool ProcessGone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  std::getline(stat, s);
  size_t rp = s.rfind(')');
  if (s.empty()) return ::kill(pid, 0) != 0 && errno == ESRCH;
  return rp != std::string::npos && rp + 2 < s.size() && s[rp + 2] == 'Z';
}

int Down(const std::string& data_dir_flag, const CLI::App& root) {
  std::string stale_dir;
  auto target = data_dir_flag.empty()
                    ? FindDaemon(DiscoveryInputs::FromEnvironment(ServerFlag(root)), &stale_dir)
                    : FindDaemonInDataDir(data_dir_flag, "--data-dir", &stale_dir);
  if (!target.ok()) {
    if (stale_dir.empty()) return Report(target.status());
    // A crashed daemon's record: nothing to stop, and clear it so the next
    // command does not trip over it.
    auto rec = ReadDaemonRecord(stale_dir);
    std::string path = stale_dir + "/" + kDaemonRecordName;
    if (rec.ok() && *rec && !DaemonRecordLive(**rec) && ::unlink(path.c_str()) == 0) {
      std::cerr << "berth: no berthd is running: the one recorded in " << path << " (pid "
                << (*rec)->pid << ") is gone; removed its stale record\n";
      return kExitError;
    }
    return Report(target.status());
  }
  DaemonRecord daemon;
  if (target->record) {
    daemon = *target->record;
  } else {
    // An address only (--server, BERTH_SERVER, the default): ask the daemon
    // who it is, and stop it only if its record on this machine agrees.
    ApiClient api(target->url);
    auto h = api.Get("/healthz");
    if (!h.ok())
      return Report(h.status().WithContext("no berthd to stop (from " + target->source + ")"));
    if (!(*h)["pid"].is_number_integer() || !(*h)["dataDir"].is_string())
      return Report(FailedPrecondition("berthd at " + target->url +
                                       " does not say its pid; stop it with SIGTERM"));
    pid_t pid = (*h)["pid"].get<pid_t>();
    std::string dir = (*h)["dataDir"].get<std::string>();
    auto rec = ReadDaemonRecord(dir);
    if (!rec.ok() || !*rec || (*rec)->pid != pid || !DaemonRecordLive(**rec))
      return Report(FailedPrecondition("berthd at " + target->url + " (pid " + std::to_string(pid) +
                                       ", data " + dir +
                                       ") does not run on this machine (no record of it in " + dir +
                                       "); run `berth down` where it runs"));
    daemon = **rec;
  }
  std::string which = "berthd at " + daemon.url + " (pid " + std::to_string(daemon.pid) +
                      ", data " + daemon.data_dir + ", found via " + target->source + ")";
  if (::kill(daemon.pid, SIGTERM) != 0) {
    std::cerr << "berth: cannot stop " << which << ": " << std::strerror(errno) << "\n";
    return kExitError;
  }
  int64_t deadline = MonotonicNanos() + 30'000'000'000LL;
  while (MonotonicNanos() < deadline) {
    if (ProcessGone(daemon.pid)) {
      std::cout << which << " stopped; running tasks keep running\n";
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::cerr << "berth: " << which << " did not stop within 30 s\n";
  return kExitError;
}

}  // namespace

std::vector<Command> AddDaemonCommands(CLI::App& app) {
  auto f = std::make_shared<UpFlags>();
  auto* up = app.add_subcommand("up", "start berthd (foreground unless --detach)");
  up->add_flag(
      "-d,--detach", f->detach,
      "run in the background; wait until the daemon started here answers (exit 1 if it fails)");
  up->add_option("--listen", f->listen, "HOST:PORT (default 127.0.0.1:7420; port 0: a free one)");
  up->add_option("--data-dir", f->data_dir,
                 "state directory (default $BERTH_DATA_DIR, else ~/.local/share/berth)");
  up->add_option("--config", f->config, "YAML configuration file");
  up->add_option("--gpus", f->gpus, "declare N simulated GPUs (machines without NVIDIA GPUs)");
  up->add_option("--policy", f->policy, "scheduling policy");
  up->add_option("--log-level", f->log_level, "trace, debug, info, warn, error");
  auto down_dir = std::make_shared<std::string>();
  auto* down = app.add_subcommand("down",
                                  "stop the berthd that --server / BERTH_SERVER / BERTH_DATA_DIR / "
                                  "... finds (tasks keep running)");
  down->add_option("--data-dir", *down_dir, "stop the daemon using this state directory instead");
  return {{up, [f] { return Up(*f); }}, {down, [down_dir, &app] { return Down(*down_dir, app); }}};
}

}  // namespace berth::cli
