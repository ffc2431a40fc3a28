// berth run / submit / ps / get / logs / cancel: the job commands, grouped as
// the API's job routes are (src/api). Each command parses its flags into a
// struct of its own and runs against the daemon found by cli/discovery.h.
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/discovery.h"
#include "cli/interrupt.h"
#include "cli/job_gpus.h"
#include "cli/json_fields.h"
#include "cli/spec_defaults.h"
#include "cli/table.h"
#include "common/clock.h"
#include "common/quantity.h"
#include "common/text.h"
#include "model/job.h"
#include "model/spec_reader.h"

namespace berth::cli {
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
      std::cout << k << std::string(k.size() < 14 ? 14 - k.size() : 1, ' ') << EscapeForTerminal(v)
                << "\n";
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
    for (const auto& a : j["spec"]["spec"]["command"])
      cmd += (cmd.empty() ? "" : " ") + a.get<std::string>();
  } catch (const std::exception&) {
  }
  row("Command:", cmd);
  row("GPUs asked:", GpusAsked(j));
  row("GPUs held:", GpusHeld(j));
  row("Node:", Str(j, "node"));
  std::string gpus = GpuList(j);
  if (!gpus.empty() && !j.contains("workers")) {  // training jobs: one line per worker below
    std::string uu;
    for (const auto& u : j.value("gpuUuids", json::array()))
      uu += (uu.empty() ? "" : ",") + u.get<std::string>();
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
      row("Worker " + Str(w, "rank") + ":",
          Str(w, "node") + " GPU " + GpuList(w) + " " + Str(w, "state") +
              (Str(w, "exitCode").empty() ? "" : " exit " + Str(w, "exitCode")));
    }
  }
  if (j.contains("gpuUsage") && j["gpuUsage"].is_object()) {
    const json& u = j["gpuUsage"];
    auto num = [&](const char* k) { return u.contains(k) && u[k].is_number() ? u[k].dump() : ""; };
    std::string util = num("avgUtilization").empty() ? "utilization not measured"
                                                     : "utilization avg " + num("avgUtilization") +
                                                           "% peak " + num("peakUtilization") + "%";
    std::string mem =
        num("avgMemoryMiB").empty()
            ? "memory not measured"
            : "memory avg " + num("avgMemoryMiB") + " MiB peak " + num("peakMemoryMiB") + " MiB";
    row("GPU usage:",
        util + ", " + mem + (num("avgUtilization").empty() ? " (no driver readings)" : ""));
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

struct RunFlags {
  std::string gpus, cpu, memory, name, queue, time_limit, workdir, priority_class;
  int64_t priority = 0;
  std::vector<std::string> envs, command;
  bool wait = false;
  bool detach_on_interrupt = false;
};

struct SubmitFlags {
  std::string file;
  bool wait = false;
  bool detach_on_interrupt = false;
};

// Sends the job document and, with --wait, follows it to its end.
int SubmitAndMaybeWait(const std::string& server, const std::string& body, bool wait,
                       bool detach_on_interrupt) {
  ApiClient api(server);
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

int RunRun(RunFlags f, const std::string& server) {
  for (auto [flag, val] :
       {std::pair<const char*, std::string*>{"--gpus", &f.gpus}, {"--cpu", &f.cpu}}) {
    if (val->empty()) continue;
    auto r = model::ParseMilli(*val);
    if (!r.ok()) return Report(InvalidArgument(std::string(flag) + ": " + r.status().message()));
  }
  if (!f.memory.empty()) {
    auto r = model::ParseMemory(f.memory);
    if (!r.ok()) return Report(InvalidArgument("--memory: " + r.status().message()));
  }
  if (f.workdir.empty()) f.workdir = CurrentDir();
  if (Status st = model::ValidatePriority(f.priority, "--priority"); !st.ok()) return Report(st);
  if (!f.priority_class.empty()) {
    auto c = model::ParsePriorityClass(f.priority_class, "--priority-class");
    if (!c.ok()) return Report(c.status());
  }
  json doc = BuildRunSpec(f.command, f.name, f.queue, f.priority, f.gpus, f.cpu, f.memory,
                          f.time_limit, f.envs, f.workdir);
  if (!f.priority_class.empty()) doc["spec"]["priorityClassName"] = f.priority_class;
  return SubmitAndMaybeWait(server, doc.dump(), f.wait, f.detach_on_interrupt);
}

int RunSubmit(const SubmitFlags& f, const std::string& server) {
  std::stringstream ss;
  if (f.file == "-") {
    ss << std::cin.rdbuf();
  } else {
    std::ifstream in(f.file);
    if (!in) return Report(InvalidArgument("-f: cannot read \"" + f.file + "\""));
    ss << in.rdbuf();
  }
  return SubmitAndMaybeWait(server, WithSpecDefaults(ss.str(), DefaultsForFile(f.file)), f.wait,
                            f.detach_on_interrupt);
}

struct PsFlags {
  bool all = false;
  bool user_alone = false;  // --user given without a name: the caller's
  std::string state, user, queue, output = "table";
  int64_t limit = 0;
};

int RunPs(PsFlags f, const std::string& server) {
  std::string q = "/api/v1/jobs?newest=" + std::string(f.limit > 0 ? "true" : "false");
  if (!f.state.empty())
    q += "&state=" + f.state;
  else if (!f.all)
    q += "&state=Pending,Scheduled,Running,Preempted";
  if (f.user_alone && f.user.empty()) f.user = CallerName();
  if (!f.user.empty()) q += "&user=" + f.user;
  if (!f.queue.empty()) q += "&queue=" + f.queue;
  if (f.limit > 0) q += "&limit=" + std::to_string(f.limit);
  ApiClient api(server);
  auto r = api.Get(q);
  if (!r.ok()) return Report(r.status());
  if (f.output == "json") {
    std::cout << (*r)["items"].dump(2) << "\n";
    return 0;
  }
  Table t({"ID", "NAME", "USER", "QUEUE", "STATE", "GPUS", "NODE", "ASSIGNED", "AGE", "RUNTIME",
           "EXIT"});
  for (const auto& j : (*r)["items"]) {
    std::string node = Str(j, "node"), assigned = GpuList(j);
    if (j.contains("workers")) {  // training job: one node:gpus entry per worker
      assigned.clear();
      for (const auto& w : j["workers"])
        assigned += (assigned.empty() ? "" : " ") + Str(w, "node") + ":" + GpuList(w);
      node = std::to_string(j["workers"].size()) + " workers";
    }
    t.Add({j["id"].dump(), Str(j, "name"), Str(j, "user"), Str(j, "queue"), Str(j, "state"),
           GpusColumn(j), node, assigned, Age(ParseTime(Str(j, "submitTime"))), Runtime(j),
           Str(j, "exitCode")});
  }
  t.Print(std::cout);
  return 0;
}

int RunGet(const std::string& id, const std::string& output, const std::string& server) {
  ApiClient api(server);
  auto r = api.Get("/api/v1/jobs/" + id);
  if (!r.ok()) return Report(r.status());
  if (output == "json")
    std::cout << r->dump(2) << "\n";
  else
    PrintJob(*r);
  return 0;
}

struct LogsFlags {
  std::string id;
  bool follow = false;
  int worker = -1;
};

int RunLogs(const LogsFlags& f, const std::string& server) {
  ApiClient api(server);
  std::string wq = f.worker >= 0 ? "worker=" + std::to_string(f.worker) : "";
  if (f.follow && f.worker < 0) {
    auto end = FollowLogs(api, f.id);
    return end.ok() ? 0 : Report(end.status());
  }
  if (f.follow) {
    Status st = api.Stream("/api/v1/jobs/" + f.id + "/logs?follow=true&" + wq,
                           [&](const std::string& event, const std::string& data) {
                             if (event == "end") return false;
                             std::cout << data << "\n" << std::flush;
                             return true;
                           });
    return st.ok() ? 0 : Report(st);
  }
  Status st = api.CopyLog(
      "/api/v1/jobs/" + f.id + "/logs" + (wq.empty() ? "" : "?" + wq),
      [](const std::string& text) { std::cout << text; },
      [](int64_t gone) {
        std::cerr << "berth: " << gone << " bytes of older output were rotated away\n";
      });
  std::cout << std::flush;
  return st.ok() ? 0 : Report(st);
}

int RunCancel(const std::vector<std::string>& ids, const std::string& server) {
  ApiClient api(server);
  int rc = 0;
  for (const auto& one : ids) {
    auto r = api.Post("/api/v1/jobs/" + one + "/cancel", "");
    if (!r.ok()) {
      rc = Report(r.status());  // berthd's message names the job
      continue;
    }
    std::cout << "job " << one << ": "
              << ((*r)["state"] == "Cancelled" ? "cancelled" : "cancelling") << "\n";
  }
  return rc;
}

}  // namespace

std::vector<Command> AddJobCommands(CLI::App& app) {
  std::vector<Command> out;
  auto server = [&app] { return ServerUrlOrExit(app); };

  auto rf = std::make_shared<RunFlags>();
  auto* run = app.add_subcommand("run", "run a command as a job: berth run [flags] -- CMD ARGS");
  run->add_option("--gpus", rf->gpus, "GPUs (whole, or a fraction like 0.5)");
  run->add_option("--cpu", rf->cpu, "CPU cores (e.g. 2 or 500m)");
  run->add_option("--memory", rf->memory, "memory (e.g. 16Gi, 512Mi)");
  run->add_option("--name", rf->name, "job name");
  run->add_option("--queue", rf->queue, "queue (default: default)");
  run->add_option("--priority", rf->priority,
                  "priority within the class and queue: higher starts first (-1000000..1000000)");
  run->add_option("--priority-class", rf->priority_class,
                  "scavenger, batch (default) or interactive: orders before --priority and decides "
                  "who may preempt whom");
  run->add_option("--time-limit", rf->time_limit, "time limit (e.g. 2h, 90s)");
  run->add_option("-e,--env", rf->envs, "KEY=VALUE (or KEY to pass this shell's value)");
  run->add_option("--workdir", rf->workdir,
                  "working directory (absolute; default: the current directory)");
  run->add_flag("-w,--wait", rf->wait,
                "stream the logs and exit with the job's exit code (Ctrl-C cancels the job)");
  run->add_flag("--detach-on-interrupt", rf->detach_on_interrupt,
                "with --wait: Ctrl-C stops waiting and leaves the job running");
  run->add_option("command", rf->command, "the command and its arguments (after --)")->required();
  out.push_back({run, [rf, server] { return RunRun(*rf, server()); }});

  auto sf = std::make_shared<SubmitFlags>();
  auto* submit = app.add_subcommand("submit", "submit a job document (YAML or JSON)");
  submit->add_option("-f,--file", sf->file, "the job file ('-' for standard input)")->required();
  submit->add_flag("-w,--wait", sf->wait,
                   "stream the logs and exit with the job's exit code (Ctrl-C cancels the job)");
  submit->add_flag("--detach-on-interrupt", sf->detach_on_interrupt,
                   "with --wait: Ctrl-C stops waiting and leaves the job running");
  out.push_back({submit, [sf, server] { return RunSubmit(*sf, server()); }});

  auto pf = std::make_shared<PsFlags>();
  auto* ps = app.add_subcommand("ps", "list jobs (active ones unless --all or --state)");
  ps->add_flag("-a,--all", pf->all, "include ended jobs");
  ps->add_option("--state", pf->state, "comma-separated states");
  ps->add_option("--user", pf->user, "only this user's jobs (--user alone: yours)")->expected(0, 1);
  ps->add_option("--queue", pf->queue, "only this queue's jobs");
  ps->add_option("--limit", pf->limit, "at most N jobs (newest)");
  ps->add_option("-o,--output", pf->output, "table or json")
      ->check(CLI::IsMember({"table", "json"}));
  out.push_back({ps, [pf, ps, server] {
                   pf->user_alone = ps->count("--user") > 0;
                   return RunPs(*pf, server());
                 }});

  auto get_id = std::make_shared<std::string>();
  auto get_output = std::make_shared<std::string>("table");
  auto* get = app.add_subcommand("get", "show one job");
  get->add_option("id", *get_id, "job id")->required();
  get->add_option("-o,--output", *get_output, "table or json")
      ->check(CLI::IsMember({"table", "json"}));
  out.push_back(
      {get, [get_id, get_output, server] { return RunGet(*get_id, *get_output, server()); }});

  auto lf = std::make_shared<LogsFlags>();
  auto* logs = app.add_subcommand("logs", "print a job's output");
  logs->add_option("id", lf->id, "job id")->required();
  logs->add_flag("-f,--follow", lf->follow, "keep printing until the job ends");
  logs->add_option("--worker", lf->worker, "training jobs: this worker's (rank's) output");
  out.push_back({logs, [lf, server] { return RunLogs(*lf, server()); }});

  auto ids = std::make_shared<std::vector<std::string>>();
  auto* cancel = app.add_subcommand("cancel", "cancel jobs (SIGTERM, grace period, SIGKILL)");
  cancel->add_option("ids", *ids, "job ids")->required();
  out.push_back({cancel, [ids, server] { return RunCancel(*ids, server()); }});
  return out;
}

}  // namespace berth::cli
