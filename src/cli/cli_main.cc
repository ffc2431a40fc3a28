// berth: the command-line client of berthd.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/discovery.h"
#include "cli/interrupt.h"
#include "cli/job_gpus.h"
#include "cli/spec_defaults.h"
#include "common/text.h"
#include "cli/table.h"
#include "common/clock.h"
#include "common/quantity.h"
#include "model/job.h"
#include "model/spec_reader.h"

#ifndef BERTH_VERSION
#define BERTH_VERSION "0.0.0"
#endif

namespace berth::cli {

int Report(const Status& st) {
  std::cerr << "berth: error: " << EscapeForTerminal(st.message()) << "\n";
  if (st.code() == StatusCode::kUnavailable) return kExitNoServer;
  if (st.code() == StatusCode::kInvalidArgument || st.code() == StatusCode::kUnschedulable)
    return kExitUsage;
  return kExitError;
}

namespace {

using nlohmann::json;

// "2026-11-23T19:27:55.123Z" -> ms since the epoch (0 if empty).
TimeMs ParseTime(const std::string& s) {
  if (s.empty()) return 0;
  struct tm tm = {};
  int ms = 0;
  if (std::sscanf(s.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) < 6)
    return 0;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<TimeMs>(timegm(&tm)) * 1000 + ms;
}

std::string Str(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return "";
  if (j[key].is_string()) return j[key].get<std::string>();
  return j[key].dump();
}

std::string GpuList(const json& job) {
  std::string out;
  for (const auto& g : job.value("gpus", json::array())) out += (out.empty() ? "" : ",") + g.dump();
  return out;
}

std::string Age(TimeMs t) {
  if (!t) return "";
  return FormatDuration(SystemClock::Default().Now() - t);
}

std::string Runtime(const json& j) {
  TimeMs start = ParseTime(Str(j, "startTime"));
  if (!start) return "";
  TimeMs end = ParseTime(Str(j, "endTime"));
  return FormatDuration((end ? end : SystemClock::Default().Now()) - start);
}

void PrintJob(const json& j) {
  auto row = [](const std::string& k, const std::string& v) {
    if (!v.empty())
      std::cout << k << std::string(k.size() < 14 ? 14 - k.size() : 1, ' ') << EscapeForTerminal(v) << "\n";
  };
  row("Id:", Str(j, "id"));
  row("Name:", Str(j, "name"));
  row("User:", Str(j, "user"));
  row("Queue:", Str(j, "queue"));
  row("Priority:", Str(j, "priority"));
  row("Class:", Str(j, "priorityClassName"));
  row("State:", Str(j, "state"));
  row("Message:", Str(j, "message"));
  row("Waiting:", Str(j, "waitingReason"));
  row("Exit code:", Str(j, "exitCode"));
  std::string cmd;
  try {
    for (const auto& a : j["spec"]["spec"]["command"]) cmd += (cmd.empty() ? "" : " ") + a.get<std::string>();
  } catch (const std::exception&) {
  }
  row("Command:", cmd);
  row("GPUs asked:", GpusAsked(j));
  row("GPUs held:", GpusHeld(j));
  row("Node:", Str(j, "node"));
  std::string gpus = GpuList(j);
  if (!gpus.empty() && !j.contains("workers")) {  // training jobs: one line per worker below
    std::string uu;
    for (const auto& u : j.value("gpuUuids", json::array())) uu += (uu.empty() ? "" : ",") + u.get<std::string>();
    row("GPU indices:", gpus + (uu.empty() ? "" : " (" + uu + ")"));
  }
  row("Attempts:", Str(j, "attempts"));
  row("Submitted:", Str(j, "submitTime"));
  row("Scheduled:", Str(j, "scheduledTime"));
  row("Started:", Str(j, "startTime"));
  row("Ended:", Str(j, "endTime"));
  row("Run time:", Runtime(j));
  if (j.contains("training") && j["training"].is_object()) {  // training jobs
    const json& t = j["training"];
    row("World size:", Str(t, "worldSize"));
    row("Restarts:", Str(t, "restarts") + " (" + Str(t, "restartsLeft") + " left)");
    row("Resizes:", Str(t, "resizes"));
    std::string hist;
    for (const auto& h : t.value("worldSizeHistory", json::array()))
      hist += (hist.empty() ? "" : " -> ") + Str(h, "worldSize");
    row("Size history:", hist);
    row("Last failure:", Str(t, "lastFailure"));
    for (const auto& w : t.value("workers", json::array())) {
      row("Worker " + Str(w, "rank") + ":", Str(w, "node") + " GPU " + GpuList(w) + " " + Str(w, "state") +
                                               (Str(w, "exitCode").empty() ? "" : " exit " + Str(w, "exitCode")));
    }
  }
  if (j.contains("gpuUsage") && j["gpuUsage"].is_object()) {
    const json& u = j["gpuUsage"];
    auto num = [&](const char* k) { return u.contains(k) && u[k].is_number() ? u[k].dump() : ""; };
    std::string util = num("avgUtilization").empty()
                           ? "utilization not measured"
                           : "utilization avg " + num("avgUtilization") + "% peak " + num("peakUtilization") + "%";
    std::string mem = num("avgMemoryMiB").empty()
                          ? "memory not measured"
                          : "memory avg " + num("avgMemoryMiB") + " MiB peak " + num("peakMemoryMiB") + " MiB";
    row("GPU usage:", util + ", " + mem + (num("avgUtilization").empty() ? " (no driver readings)" : ""));
  }
}

// Streams a job's logs to stdout until it ends. Returns the final state
// event's JSON (state, exitCode, message).
Result<json> FollowLogs(ApiClient& api, const std::string& id) {
  json end;
  Status st = api.Stream("/api/v1/jobs/" + id + "/logs?follow=true",
                         [&](const std::string& event, const std::string& data) {
                           if (event == "end") {
                             try {
                               end = json::parse(data);
                             } catch (const std::exception&) {
                             }
                             return false;
                           }
                           std::cout << data << "\n" << std::flush;
                           return true;
                         });
  if (!st.ok()) return st;
  if (end.is_null()) {  // the stream closed early: ask for the state
    ASSIGN_OR_RETURN(json job, api.Get("/api/v1/jobs/" + id));
    end = {{"state", job["state"]}, {"exitCode", job["exitCode"]}, {"message", job["message"]}};
  }
  return end;
}

// The exit code `berth run --wait` ends with, like srun: the job's own.
int ExitCodeFor(const json& end) {
  std::string state = end.value("state", "");
  if (!end["exitCode"].is_null() && state != "Cancelled") return end["exitCode"].get<int>();
  if (state == "Succeeded") return 0;
  if (state == "Cancelled") return 130;
  return kExitError;
}

// Ctrl-C cancels the job (cli/interrupt.h) unless `detach_on_interrupt`.
int WaitAndExit(ApiClient& api, const std::string& id, bool detach_on_interrupt) {
  WaitInterrupts interrupts(api.url(), id, "job " + id, detach_on_interrupt);
  auto end = FollowLogs(api, id);
  if (!end.ok()) return Report(end.status());
  std::string state = end->value("state", "");
  if (state != "Succeeded")
    std::cerr << "berth: job " << id << " " << state << ": " << end->value("message", "") << "\n";
  return interrupts.interrupted() ? kExitInterrupted : ExitCodeFor(*end);
}

json BuildRunSpec(const std::vector<std::string>& command, const std::string& name,
                  const std::string& queue, int64_t priority, const std::string& gpus,
                  const std::string& cpu, const std::string& memory, const std::string& time_limit,
                  const std::vector<std::string>& envs, const std::string& workdir) {
  json resources = json::object();
  if (!gpus.empty()) resources["gpus"] = gpus;
  if (!cpu.empty()) resources["cpu"] = cpu;
  if (!memory.empty()) resources["memory"] = memory;
  json spec = {{"command", command}, {"resources", resources}};
  if (!queue.empty()) spec["queue"] = queue;
  if (priority) spec["priority"] = priority;
  if (!time_limit.empty()) spec["timeLimit"] = time_limit;
  if (!workdir.empty()) spec["workingDir"] = workdir;
  json env = json::object();
  for (const auto& e : envs) {
    size_t eq = e.find('=');
    if (eq == std::string::npos) {
      const char* v = std::getenv(e.c_str());
      env[e] = v ? v : "";
    } else {
      env[e.substr(0, eq)] = e.substr(eq + 1);
    }
  }
  if (!env.empty()) spec["env"] = env;
  json meta = json::object();  // metadata.user: berthd records the caller
  if (!name.empty()) meta["name"] = name;
  return {{"apiVersion", "berth/v1"}, {"kind", "Job"}, {"metadata", meta}, {"spec", spec}};
}

std::string Pct(const json& t, const char* key) {
  if (!t.contains(key) || !t[key].is_number()) return "-";
  std::ostringstream s;
  s << static_cast<int>(t[key].get<double>() + 0.5) << "%";
  return s.str();
}

// Declared GPUs have no driver to read: their readings are "n/a", explained
// under the table ("-" is a reading an NVML GPU did not report).
void PrintGpus(const json& reply) {
  Table t({"NODE", "GPU", "MODEL", "UTIL", "MEMORY", "TEMP", "POWER", "ALLOC", "JOB", "USER"});
  bool any_declared = false;
  for (const auto& n : reply["nodes"]) {
    for (const auto& g : n["gpus"]) {
      bool declared = g.value("declared", false);
      any_declared |= declared;
      json tel = declared ? json::object() : g.value("telemetry", json::object());
      std::string na = declared ? "n/a" : "-";
      std::string mem = na, temp = na, power = na;
      int64_t total = g.value("memoryMiB", int64_t{0});
      auto num = [&](const char* k) { return tel.contains(k) && tel[k].is_number(); };
      if (num("memoryUsedMiB"))
        mem = std::to_string(tel["memoryUsedMiB"].get<int64_t>()) + "/" + std::to_string(total) + " MiB";
      else
        mem = na + "/" + std::to_string(total) + " MiB";
      if (num("temperatureC"))
        temp = std::to_string(tel["temperatureC"].get<int>()) + "C";
      if (num("powerW")) {
        std::ostringstream s;
        s << static_cast<int>(tel["powerW"].get<double>() + 0.5) << "W";
        power = s.str();
      }
      std::string jobs, users;
      for (const auto& h : g["jobs"]) {
        jobs += (jobs.empty() ? "" : ",") + h["job"].dump();
        users += (users.empty() ? "" : ",") + h["user"].get<std::string>();
      }
      t.Add({n["name"].get<std::string>(), g["index"].dump(), g.value("model", ""),
             declared ? na : Pct(tel, "utilization"), mem, temp, power, g.value("allocated", "0"),
             jobs.empty() ? "-" : jobs, users.empty() ? "-" : users});
    }
  }
  t.Print(std::cout);
  if (any_declared)
    std::cout << "\nn/a: declared GPUs (berthd --gpus N, or no NVIDIA driver found) are scheduled but "
                 "not measured: no driver reports their utilization, memory, temperature or power, "
                 "nor their jobs' GPU usage\n";
}

int Main(int argc, char** argv) {
  CLI::App app{"berth: run jobs on a shared pool of GPUs (client of berthd)", "berth"};
  app.require_subcommand(1);
  std::string server_flag;
  app.add_option("--server", server_flag,
                 "berthd URL (default: $BERTH_SERVER, else the daemon recorded in $BERTH_DATA_DIR, /run/berth "
                 "or ~/.local/share/berth, else http://127.0.0.1:7420)");
  app.set_version_flag("--version", BERTH_VERSION);

  // up / down (daemon_cmd.cc) first in --help, the other groups after the job commands.
  std::vector<Command> commands = AddDaemonCommands(app);

  // run / submit
  auto* run = app.add_subcommand("run", "run a command as a job: berth run [flags] -- CMD ARGS");
  std::string gpus, cpu, memory, name, queue, time_limit, workdir, priority_class;
  int64_t priority = 0;
  std::vector<std::string> envs, command;
  bool wait = false;
  run->add_option("--gpus", gpus, "GPUs (whole, or a fraction like 0.5)");
  run->add_option("--cpu", cpu, "CPU cores (e.g. 2 or 500m)");
  run->add_option("--memory", memory, "memory (e.g. 16Gi, 512Mi)");
  run->add_option("--name", name, "job name");
  run->add_option("--queue", queue, "queue (default: default)");
  run->add_option("--priority", priority, "priority within the class and queue: higher starts first (-1000000..1000000)");
  run->add_option("--priority-class", priority_class,
                  "scavenger, batch (default) or interactive: orders before --priority and decides who may preempt whom");
  run->add_option("--time-limit", time_limit, "time limit (e.g. 2h, 90s)");
  run->add_option("-e,--env", envs, "KEY=VALUE (or KEY to pass this shell's value)");
  run->add_option("--workdir", workdir, "working directory (absolute; default: the current directory)");
  run->add_flag("-w,--wait", wait, "stream the logs and exit with the job's exit code (Ctrl-C cancels the job)");
  bool detach_on_interrupt = false;
  run->add_flag("--detach-on-interrupt", detach_on_interrupt,
                "with --wait: Ctrl-C stops waiting and leaves the job running");
  run->add_option("command", command, "the command and its arguments (after --)")->required();
  auto* submit = app.add_subcommand("submit", "submit a job document (YAML or JSON)");
  std::string file;
  bool submit_wait = false;
  submit->add_option("-f,--file", file, "the job file ('-' for standard input)")->required();
  submit->add_flag("-w,--wait", submit_wait, "stream the logs and exit with the job's exit code (Ctrl-C cancels the job)");
  submit->add_flag("--detach-on-interrupt", detach_on_interrupt,
                   "with --wait: Ctrl-C stops waiting and leaves the job running");

  // ps / get / logs / cancel / events / gpus
  auto* ps = app.add_subcommand("ps", "list jobs (active ones unless --all or --state)");
  bool all = false;
  std::string ps_state, ps_user, ps_queue, output = "table";
  int64_t ps_limit = 0;
  ps->add_flag("-a,--all", all, "include ended jobs");
  ps->add_option("--state", ps_state, "comma-separated states");
  ps->add_option("--user", ps_user, "only this user's jobs (--user alone: yours)")->expected(0, 1);
  ps->add_option("--queue", ps_queue, "only this queue's jobs");
  ps->add_option("--limit", ps_limit, "at most N jobs (newest)");
  ps->add_option("-o,--output", output, "table or json")->check(CLI::IsMember({"table", "json"}));
  auto* get = app.add_subcommand("get", "show one job");
  std::string id;
  get->add_option("id", id, "job id")->required();
  get->add_option("-o,--output", output, "table or json")->check(CLI::IsMember({"table", "json"}));
  auto* logs = app.add_subcommand("logs", "print a job's output");
  bool follow = false;
  logs->add_option("id", id, "job id")->required();
  logs->add_flag("-f,--follow", follow, "keep printing until the job ends");
  int log_worker = -1;
  logs->add_option("--worker", log_worker, "training jobs: this worker's (rank's) output");
  auto* cancel = app.add_subcommand("cancel", "cancel jobs (SIGTERM, grace period, SIGKILL)");
  std::vector<std::string> ids;
  cancel->add_option("ids", ids, "job ids")->required();
  auto* events = app.add_subcommand("events", "print the event log");
  std::string ev_job;
  int64_t after = 0;
  events->add_option("--job", ev_job, "only this job's events");
  events->add_option("--after", after, "events after this sequence number");
  events->add_flag("-f,--follow", follow, "keep printing new events");
  events->add_option("-o,--output", output, "table or json")->check(CLI::IsMember({"table", "json"}));
  auto* gpus_cmd = app.add_subcommand("gpus", "show every GPU, its telemetry and its jobs");
  bool watch = false;
  gpus_cmd->add_flag("-w,--watch", watch, "refresh every 2 s");
  gpus_cmd->add_option("-o,--output", output, "table or json")->check(CLI::IsMember({"table", "json"}));

  // Command groups defined in their own files.
  for (auto group : {AddSimCommands, AddPipelineCommands, AddTrainCommands}) {
    auto added = group(app);
    commands.insert(commands.end(), added.begin(), added.end());
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }
  for (const Command& c : commands)
    if (c.app->parsed()) return c.run();

  ApiClient api(ServerUrlOrExit(app));

  if (run->parsed() || submit->parsed()) {
    std::string body;
    if (run->parsed()) {
      for (auto [flag, val] : {std::pair<const char*, std::string*>{"--gpus", &gpus}, {"--cpu", &cpu}}) {
        if (val->empty()) continue;
        auto r = model::ParseMilli(*val);
        if (!r.ok()) return Report(InvalidArgument(std::string(flag) + ": " + r.status().message()));
      }
      if (!memory.empty()) {
        auto r = model::ParseMemory(memory);
        if (!r.ok()) return Report(InvalidArgument("--memory: " + r.status().message()));
      }
      if (workdir.empty()) workdir = CurrentDir();
      if (Status st = model::ValidatePriority(priority, "--priority"); !st.ok()) return Report(st);
      if (!priority_class.empty()) {
        auto c = model::ParsePriorityClass(priority_class, "--priority-class");
        if (!c.ok()) return Report(c.status());
      }
      json doc = BuildRunSpec(command, name, queue, priority, gpus, cpu, memory, time_limit, envs, workdir);
      if (!priority_class.empty()) doc["spec"]["priorityClassName"] = priority_class;
      body = doc.dump();
    } else {
      std::stringstream ss;
      if (file == "-") {
        ss << std::cin.rdbuf();
      } else {
        std::ifstream in(file);
        if (!in) return Report(InvalidArgument("-f: cannot read \"" + file + "\""));
        ss << in.rdbuf();
      }
      body = WithSpecDefaults(ss.str(), DefaultsForFile(file));
      wait = submit_wait;
    }
    auto job = api.Post("/api/v1/jobs", body, "application/yaml");
    if (!job.ok()) return Report(job.status());
    std::string jid = (*job)["id"].dump();
    if (!wait) {
      std::cout << jid << "\n";
      return 0;
    }
    std::cerr << "berth: job " << jid << " submitted\n";
    return WaitAndExit(api, jid, detach_on_interrupt);
  }

  if (ps->parsed()) {
    std::string q = "/api/v1/jobs?newest=" + std::string(ps_limit > 0 ? "true" : "false");
    if (!ps_state.empty()) q += "&state=" + ps_state;
    else if (!all) q += "&state=Pending,Scheduled,Running,Preempted";
    if (ps->count("--user") && ps_user.empty()) ps_user = CallerName();
    if (!ps_user.empty()) q += "&user=" + ps_user;
    if (!ps_queue.empty()) q += "&queue=" + ps_queue;
    if (ps_limit > 0) q += "&limit=" + std::to_string(ps_limit);
    auto r = api.Get(q);
    if (!r.ok()) return Report(r.status());
    if (output == "json") {
      std::cout << (*r)["items"].dump(2) << "\n";
      return 0;
    }
    Table t({"ID", "NAME", "USER", "QUEUE", "STATE", "GPUS", "NODE", "ASSIGNED", "AGE", "RUNTIME", "EXIT"});
    for (const auto& j : (*r)["items"]) {
      std::string node = Str(j, "node"), assigned = GpuList(j);
      if (j.contains("workers")) {  // training job: one node:gpus entry per worker
        assigned.clear();
        for (const auto& w : j["workers"]) assigned += (assigned.empty() ? "" : " ") + Str(w, "node") + ":" + GpuList(w);
        node = std::to_string(j["workers"].size()) + " workers";
      }
      t.Add({j["id"].dump(), Str(j, "name"), Str(j, "user"), Str(j, "queue"), Str(j, "state"),
             GpusColumn(j), node, assigned, Age(ParseTime(Str(j, "submitTime"))),
             Runtime(j), Str(j, "exitCode")});
    }
    t.Print(std::cout);
    return 0;
  }
  if (get->parsed()) {
    auto r = api.Get("/api/v1/jobs/" + id);
    if (!r.ok()) return Report(r.status());
    if (output == "json") std::cout << r->dump(2) << "\n";
    else PrintJob(*r);
    return 0;
  }
  if (logs->parsed()) {
    std::string wq = log_worker >= 0 ? "worker=" + std::to_string(log_worker) : "";
    if (follow && log_worker < 0) {
      auto end = FollowLogs(api, id);
      return end.ok() ? 0 : Report(end.status());
    }
    if (follow) {
      Status st = api.Stream("/api/v1/jobs/" + id + "/logs?follow=true&" + wq,
                             [&](const std::string& event, const std::string& data) {
                               if (event == "end") return false;
                               std::cout << data << "\n" << std::flush;
                               return true;
                             });
      return st.ok() ? 0 : Report(st);
    }
    Status st = api.CopyLog(
        "/api/v1/jobs/" + id + "/logs" + (wq.empty() ? "" : "?" + wq),
        [](const std::string& text) { std::cout << text; },
        [](int64_t gone) { std::cerr << "berth: " << gone << " bytes of older output were rotated away\n"; });
    std::cout << std::flush;
    return st.ok() ? 0 : Report(st);
  }
  if (cancel->parsed()) {
    int rc = 0;
    for (const auto& one : ids) {
      auto r = api.Post("/api/v1/jobs/" + one + "/cancel", "");
      if (!r.ok()) {
        rc = Report(r.status());  // berthd's message names the job
        continue;
      }
      std::cout << "job " << one << ": " << ((*r)["state"] == "Cancelled" ? "cancelled" : "cancelling") << "\n";
    }
    return rc;
  }
  if (events->parsed()) {
    std::string q = "/api/v1/events?after=" + std::to_string(after);
    if (!ev_job.empty()) q += "&job=" + ev_job;
    auto print = [&](const json& e) {
      if (output == "json") {
        std::cout << e.dump() << "\n" << std::flush;
        return;
      }
      // Events about no job (pipeline runs, ...) name their subject in the message.
      std::string job = e.value("job", 0) ? "  job " + Str(e, "job") : "";
      std::cout << Str(e, "time") << "  " << Str(e, "type") << job << "  " << EscapeForTerminal(Str(e, "message"))
                << "\n" << std::flush;
    };
    if (follow) {
      Status st = api.Stream(q + "&follow=true", [&](const std::string&, const std::string& data) {
        try {
          print(json::parse(data));
        } catch (const std::exception&) {
        }
        return true;
      });
      return st.ok() ? 0 : Report(st);
    }
    auto r = api.Get(q);
    if (!r.ok()) return Report(r.status());
    for (const auto& e : (*r)["items"]) print(e);
    return 0;
  }
  if (gpus_cmd->parsed()) {
    while (true) {
      auto r = api.Get("/api/v1/gpus");
      if (!r.ok()) return Report(r.status());
      if (output == "json") {
        std::cout << r->dump(2) << "\n";
        return 0;
      }
      if (watch) std::cout << "\033[H\033[2J" << "berth gpus  " << FormatTime(SystemClock::Default().Now()) << "\n\n";
      PrintGpus(*r);
      std::cout << std::flush;
      if (!watch) return 0;
      std::this_thread::sleep_for(std::chrono::seconds(2));
    }
  }
  return 0;
}

}  // namespace
}  // namespace berth::cli

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  return berth::cli::Main(argc, argv);
}
