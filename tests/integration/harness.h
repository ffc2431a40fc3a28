// Helpers for tests that run the real berthd and berth binaries: a temporary
// directory, a daemon process on a free port, running CLI commands, and
// waiting on conditions with deadlines.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/client.h"
#include "common/daemon_record.h"

namespace berth::testing {

inline std::string BinDir() { return std::string(BERTH_BINARY_DIR) + "/bin"; }

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "berth-test-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  // BERTH_TEST_KEEP=1 keeps the directories (daemon logs, run dirs) for a post-mortem.
  ~TempDir() {
    const char* keep = std::getenv("BERTH_TEST_KEEP");
    if (keep && *keep && std::string(keep) != "0") return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

// Polls `cond` every 10 ms until it holds or `timeout` passes.
inline bool WaitFor(const std::function<bool()>& cond,
                    std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Starts argv (argv[0] a path) with `env` added, its stdout and stderr
// written to the two files; returns the child's pid.
inline pid_t SpawnToFiles(const std::vector<std::string>& args, const std::vector<std::string>& env,
                          const std::string& outf, const std::string& errf) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int o = ::open(outf.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = ::open(errf.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(o, 1);
    ::dup2(e, 2);
    for (const auto& kv : env) ::putenv(const_cast<char*>(kv.c_str()));
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

// Runs argv to completion, capturing stdout and stderr.
inline CommandResult RunCommand(const std::vector<std::string>& args,
                                const std::vector<std::string>& env = {}) {
  std::string outf =
      std::filesystem::temp_directory_path() /
      ("berth-out-" + std::to_string(::getpid()) + "-" + std::to_string(std::rand()));
  std::string errf = outf + ".err";
  pid_t pid = SpawnToFiles(args, env, outf, errf);
  int status = 0;
  ::waitpid(pid, &status, 0);
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = ReadFile(outf);
  r.err = ReadFile(errf);
  std::filesystem::remove(outf);
  std::filesystem::remove(errf);
  return r;
}

// A berthd process with its own data directory and a free port.
class Daemon {
 public:
  explicit Daemon(std::vector<std::string> extra_args = {}, std::vector<std::string> env = {})
      : extra_(std::move(extra_args)), env_(std::move(env)) {}
  // Cancels whatever is still active (tasks outlive berthd by design, so a
  // test must not leave them behind), then stops the daemon.
  ~Daemon() {
    if (Alive() && !url_.empty()) {
      cli::ApiClient api(socket_url());
      auto active = api.Get("/api/v1/jobs?state=Pending,Scheduled,Running,Preempted");
      if (active.ok()) {
        for (const auto& j : (*active)["items"])
          (void)api.Post("/api/v1/jobs/" + j["id"].dump() + "/cancel", "");
        WaitFor(
            [&] {
              auto left = api.Get("/api/v1/jobs?state=Pending,Scheduled,Running,Preempted");
              return left.ok() && (*left)["items"].empty();
            },
            std::chrono::seconds(10));
      }
    }
    Stop();
  }

  const std::string& data_dir() const { return dir_.path(); }
  // The TCP address (http://127.0.0.1:PORT): a request there needs a token
  // (token(), AuthHeader()).
  const std::string& url() const { return url_; }
  // The Unix socket in the data directory ("unix:PATH"), where berthd knows
  // the caller from the kernel: the test's own account (root: an admin).
  std::string socket_url() const { return "unix:" + dir_.path() + "/berthd.sock"; }

  // A token of the test's account (made once, over the socket), for
  // requests over TCP.
  const std::string& token() const {
    if (token_.empty()) {
      cli::ApiClient api(socket_url());
      auto t = api.Post("/api/v1/tokens", R"({"description":"test harness"})");
      if (t.ok()) token_ = (*t).value("token", "");
      EXPECT_FALSE(token_.empty()) << (t.ok() ? t->dump() : t.status().message());
    }
    return token_;
  }
  // "Authorization: Bearer <token()>" as a header pair.
  std::pair<std::string, std::string> AuthHeader() const {
    return {"Authorization", "Bearer " + token()};
  }

  // Starts berthd and waits until /healthz answers.
  bool Start() {
    std::filesystem::remove(dir_ / kDaemonRecordName);
    pid_ = ::fork();
    if (pid_ == 0) {
      int log = ::open((dir_ / "berthd.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(log, 1);
      ::dup2(log, 2);
      ::setpgid(0, 0);
      for (const auto& kv : env_) ::putenv(const_cast<char*>(kv.c_str()));
      std::vector<std::string> args = {BinDir() + "/berthd", "--listen", "127.0.0.1:0",
                                       "--data-dir", dir_.path()};
      args.insert(args.end(), extra_.begin(), extra_.end());
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    bool up = WaitFor([&] {
      auto rec = ReadDaemonRecord(dir_.path());
      if (!rec.ok() || !*rec) return false;
      url_ = (*rec)->url;
      cli::ApiClient api(socket_url());
      return api.Get("/healthz").ok();
    });
    return up;
  }

  // SIGKILL, as a crash would.
  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = 0;
  }

  // SIGTERM and wait: a clean shutdown. Returns the exit status.
  int Stop() {
    if (pid_ <= 0) return 0;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  bool Alive() const { return pid_ > 0 && ::kill(pid_, 0) == 0; }
  pid_t pid() const { return pid_; }

  // Runs the berth CLI against this daemon, over its Unix socket.
  CommandResult Cli(std::vector<std::string> args) const {
    args.insert(args.begin(), {BinDir() + "/berth", "--server", socket_url()});
    return RunCommand(args);
  }

  nlohmann::json Get(const std::string& path) const {
    cli::ApiClient api(socket_url());
    auto r = api.Get(path);
    return r.ok() ? *r : nlohmann::json();
  }
  std::string GetText(const std::string& path) const {
    cli::ApiClient api(socket_url());
    auto r = api.GetText(path);
    return r.ok() ? *r : "";
  }
  nlohmann::json Job(const std::string& id) const { return Get("/api/v1/jobs/" + id); }
  std::string State(const std::string& id) const {
    auto j = Job(id);
    return j.is_object() ? j.value("state", "") : "";
  }

 private:
  std::vector<std::string> extra_;
  std::vector<std::string> env_;
  TempDir dir_;
  pid_t pid_ = 0;
  std::string url_;
  mutable std::string token_;
};

inline std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Writes a job document (YAML or JSON) into `work` and `berth submit -f`s
// it against `d`; returns the job id.
inline std::string SubmitDoc(const Daemon& d, const TempDir& work, const std::string& doc) {
  static int n = 0;
  std::string path = work / ("job" + std::to_string(n++) + ".json");
  WriteFile(path, doc);
  CommandResult r = d.Cli({"submit", "-f", path});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return Trim(r.out);
}

// `berth run [flags] -- /bin/sh -c script` against `d`; returns the job id.
inline std::string SubmitScript(const Daemon& d, const std::vector<std::string>& flags,
                                const std::string& script) {
  std::vector<std::string> args = {"run"};
  args.insert(args.end(), flags.begin(), flags.end());
  args.insert(args.end(), {"--", "/bin/sh", "-c", script});
  CommandResult r = d.Cli(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return Trim(r.out);
}

}  // namespace berth::testing
