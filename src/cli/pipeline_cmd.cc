// berth pipeline ...: run, get, list, logs, cancel, suspend, resume, retry,
// resubmit, validate, and `berth pipeline cron ...` for schedules.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "cli/commands.h"
#include "cli/discovery.h"
#include "cli/table.h"
#include "common/text.h"
#include "model/pipeline.h"

namespace berth::cli {
namespace {

using nlohmann::json;

// The daemon the shared rule finds (cli/discovery.h); exits when none is found.
std::string ServerUrl(CLI::App& root) { return ServerUrlOrExit(root); }

Result<std::string> ReadSpecFile(const std::string& path) {
  std::stringstream ss;
  if (path == "-") {
    ss << std::cin.rdbuf();
  } else {
    std::ifstream in(path);
    if (!in) return InvalidArgument("-f: cannot read " + path);
    ss << in.rdbuf();
  }
  return ss.str();
}

std::string S(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return "";
  if (j[key].is_string()) return j[key].get<std::string>();
  return j[key].dump();
}

std::string Dur(int64_t ms) { return ms > 0 ? FormatDuration(ms) : ""; }

// An ASCII tree of the DAG: each step under its first dependency (the others
// are listed after "after:"), fan-out children under their step.
void PrintRun(const json& run) {
  std::cout << "Run " << S(run, "id") << " (" << S(run, "name") << "): " << S(run, "state");
  if (run.value("suspended", false)) std::cout << " (suspended)";
  if (!S(run, "stopping").empty() && S(run, "state") == "Running")
    std::cout << " (stopping: " << S(run, "stopping") << ")";
  std::cout << "\n";
  if (!S(run, "message").empty())
    std::cout << "Message: " << EscapeForTerminal(S(run, "message")) << "\n";
  if (!S(run, "cron").empty())
    std::cout << "Schedule: " << S(run, "cron") << " " << S(run, "scheduledTime") << "\n";
  std::cout << "Artifacts: " << S(run, "artifactDir") << "\n";
  const json& nodes = run.value("nodes", json::array());
  std::map<std::string, std::vector<std::string>> kids;  // parent -> children in the tree
  std::map<std::string, const json*> by_name;
  std::vector<std::string> roots;
  for (const auto& n : nodes) {
    std::string name = S(n, "name");
    by_name[name] = &n;
    if (n.contains("index")) {
      kids[S(n, "step")].push_back(name);
    } else if (!n["dependencies"].empty()) {
      kids[n["dependencies"][0].get<std::string>()].push_back(name);
    } else {
      roots.push_back(name);
    }
  }
  Table t({"STEP", "STATE", "JOB", "EXIT", "GPUS", "ATTEMPTS", "DURATION", "MESSAGE"});
  std::function<void(const std::string&, const std::string&, bool, bool)> walk =
      [&](const std::string& name, const std::string& prefix, bool last, bool root) {
        const json& n = *by_name[name];
        std::string label = root ? name : prefix + (last ? "`-- " : "|-- ") + name;
        if (n.contains("item")) {  // a fan-out child: show its item
          std::string item = S(n, "item");
          if (item.size() >= 2 && item.front() == '"') item = item.substr(1, item.size() - 2);
          if (item.size() > 24) item = item.substr(0, 21) + "...";
          label += " [" + item + "]";
        }
        std::string after;
        if (n.contains("dependencies") && n["dependencies"].size() > 1) {
          for (size_t i = 1; i < n["dependencies"].size(); ++i)
            after += (after.empty() ? " (after: " : ", ") + n["dependencies"][i].get<std::string>();
          after += ")";
        }
        std::string msg = S(n, "message");
        if (n.value("cached", false) && msg.empty()) msg = "cached";
        t.Add({label + after, S(n, "state"), n.value("jobId", 0) ? S(n, "jobId") : "",
               S(n, "exitCode"), S(n, "gpus"), S(n, "attempts"),
               Dur(n.value("durationMs", int64_t{0})), msg});
        std::string child_prefix = root ? "" : prefix + (last ? "    " : "|   ");
        const auto& ch = kids[name];
        for (size_t i = 0; i < ch.size(); ++i) walk(ch[i], child_prefix, i + 1 == ch.size(), false);
      };
  for (const auto& r : roots) walk(r, "", true, true);
  t.Print(std::cout);
}

std::string httplib_encode(const std::string& s) {
  std::string out;
  const char* hex = "0123456789ABCDEF";
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.')
      out += static_cast<char>(c);
    else
      out += std::string("%") + hex[c >> 4] + hex[c & 15];
  }
  return out;
}

// Schedules as a table: LAST is "-" until the schedule has started a run,
// NEXT "-" while it is suspended. -o json prints the API's JSON instead.
void PrintCrons(const json& reply, bool one, const std::string& output) {
  if (output == "json") {
    std::cout << reply.dump(2) << "\n";
    return;
  }
  const json crons = one ? json::array({reply}) : reply;
  auto or_dash = [](const std::string& s) { return s.empty() ? std::string("-") : s; };
  Table t({"NAME", "SCHEDULE", "TIMEZONE", "POLICY", "SUSPENDED", "LAST", "NEXT"});
  for (const auto& c : crons)
    t.Add({S(c, "name"), S(c, "schedule"), S(c, "timezone"), S(c, "concurrencyPolicy"),
           S(c, "suspended"), or_dash(S(c, "lastScheduleTime")),
           or_dash(S(c, "nextScheduleTime"))});
  t.Print(std::cout);
}

bool RunTerminal(const std::string& s) {
  return s == "Succeeded" || s == "Failed" || s == "Cancelled";
}

// One line per step transition, as `argo submit --watch` shows them:
// time, step, state, job, and why (a failure's message, a retry's reason).
void PrintStepEvent(const json& e) {
  const json& d = e["data"];
  auto pad = [](std::string v, size_t w) {
    return v.size() < w ? v + std::string(w - v.size(), ' ') : v;
  };
  std::string type = S(e, "type");  // PipelineStep<State>; a retry's state is Pending
  std::string state = type.size() > 12 ? type.substr(12) : S(d, "state");
  std::string line = S(e, "time") + "  " + pad(S(d, "node"), 20) + "  " + pad(state, 10);
  if (d.contains("jobId")) line += "  job " + S(d, "jobId");
  if (!S(d, "reason").empty()) line += "  " + S(d, "reason");
  std::cout << EscapeForTerminal(line) << "\n" << std::flush;
}

// Follows the event log from `after`, printing run `id`'s step transitions,
// until the run ends (true) or the stream breaks (false).
bool FollowRun(ApiClient& api, const std::string& id, int64_t after) {
  bool ended = false;
  Status st =
      api.Stream("/api/v1/events?follow=true&after=" + std::to_string(after),
                 [&](const std::string& type, const std::string& data) {
                   json e = json::parse(data, nullptr, false);
                   if (e.is_discarded() || !e.contains("data") || !e["data"].is_object())
                     return true;
                   const json& d = e["data"];
                   if (S(d, "pipelineRun") != id) return true;
                   if (type.rfind("PipelineStep", 0) == 0) PrintStepEvent(e);
                   if (type == "PipelineRun" + S(d, "state") && RunTerminal(S(d, "state"))) {
                     ended = true;
                     return false;
                   }
                   return true;
                 });
  return st.ok() && ended;
}

// Ctrl-C while waiting: the handler counts and wakes the waiting thread.
std::atomic<int> g_interrupts{0};
int g_wake_fd = -1;

void OnInterrupt(int) {
  g_interrupts.fetch_add(1);
  char c = 'i';
  if (g_wake_fd >= 0) (void)!::write(g_wake_fd, &c, 1);
}

// Shows the run's steps as they start and end, then the run; exits 0 only if
// it succeeded. The first Ctrl-C cancels the run and goes on waiting for it
// to end (exit 130); a second one stops waiting at once. `after`: the event
// seq the run's events come after (-1: unknown, poll the run instead).
int WaitRun(const std::string& url, const std::string& id, int64_t after) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return Report(Internal("pipe: " + std::string(std::strerror(errno))));
  g_wake_fd = fds[1];
  g_interrupts = 0;
  struct sigaction sa {
  }, old_sa{};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &sa, &old_sa);
  int rc = 0;
  std::thread watcher([&] {
    ApiClient api(url);
    if (after >= 0) (void)FollowRun(api, id, after);
    for (;;) {  // the run ended, or the stream broke: read its final state
      auto r = api.Get("/api/v1/pipelines/runs/" + id);
      if (!r.ok()) {
        rc = Report(r.status());
        break;
      }
      std::string state = S(*r, "state");
      if (RunTerminal(state)) {
        PrintRun(*r);
        std::cout << std::flush;
        rc = state == "Succeeded" ? 0 : kExitError;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    char c = 'd';
    (void)!::write(fds[1], &c, 1);
  });
  bool cancelled = false;
  for (;;) {
    char c = 0;
    ssize_t n = ::read(fds[0], &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || c == 'd') break;
    if (g_interrupts >= 2) {
      std::cerr << "berth: interrupted again: stopped waiting; pipeline run " << id
                << (cancelled ? " is being cancelled" : " goes on") << "\n";
      std::cout << std::flush;
      std::cerr << std::flush;
      ::_exit(130);
    }
    if (cancelled) continue;
    std::cerr << "berth: interrupted: cancelling pipeline run " << id
              << " (Ctrl-C again to stop waiting)\n";
    cancelled = true;
    ApiClient api(url);
    auto r = api.Post("/api/v1/pipelines/runs/" + id + "/cancel", "{}");
    if (!r.ok()) (void)Report(r.status().WithContext("cancel pipeline run " + id));
  }
  watcher.join();
  ::sigaction(SIGINT, &old_sa, nullptr);
  g_wake_fd = -1;
  ::close(fds[0]);
  ::close(fds[1]);
  return cancelled ? 130 : rc;
}

}  // namespace

std::vector<Command> AddPipelineCommands(CLI::App& app) {
  CLI::App* root = &app;
  auto* p =
      app.add_subcommand("pipeline", "run DAGs of steps (kind: Pipeline) and their schedules");
  p->require_subcommand(1);
  std::vector<Command> out;

  struct RunArgs {
    std::string file;
    std::vector<std::string> params;
    bool wait = false;
  };
  auto ra = std::make_shared<RunArgs>();
  auto* run = p->add_subcommand(
      "run", "start a run of a Pipeline document (a CronPipeline creates a schedule)");
  run->add_option("-f,--file", ra->file, "the document (YAML or JSON; - for stdin)")->required();
  run->add_option("-p,--param", ra->params, "a parameter: key=value (repeatable)");
  run->add_flag("-w,--wait", ra->wait, "wait for the run to end; exit 0 only if it succeeded");
  out.push_back({run, [root, ra]() -> int {
                   auto text = ReadSpecFile(ra->file);
                   if (!text.ok()) return Report(text.status());
                   json params = json::object();
                   for (const auto& kv : ra->params) {
                     size_t eq = kv.find('=');
                     if (eq == std::string::npos || eq == 0)
                       return Report(InvalidArgument("-p: expected key=value, got \"" + kv + "\""));
                     params[kv.substr(0, eq)] = kv.substr(eq + 1);
                   }
                   ApiClient api(ServerUrl(*root));
                   auto kind = model::DocumentKind(*text);
                   if (kind.ok() && *kind == "CronPipeline") {
                     auto r = api.Post("/api/v1/cronpipelines", json{{"spec", *text}}.dump());
                     if (!r.ok()) return Report(r.status());
                     std::cout << S(*r, "name") << "\n";
                     return 0;
                   }
                   auto r = api.Post("/api/v1/pipelines/runs",
                                     json{{"spec", *text}, {"parameters", params}}.dump());
                   if (!r.ok()) return Report(r.status());
                   std::string id = S(*r, "id");
                   std::cout << id << "\n" << std::flush;
                   if (!ra->wait) return 0;
                   return WaitRun(api.url(), id, r->value("eventsAfter", int64_t{-1}));
                 }});

  auto vfile = std::make_shared<std::string>();
  auto* validate =
      p->add_subcommand("validate", "check a Pipeline or CronPipeline document offline");
  validate->add_option("-f,--file", *vfile, "the document")->required();
  out.push_back({validate, [vfile]() -> int {
                   auto text = ReadSpecFile(*vfile);
                   if (!text.ok()) return Report(text.status());
                   auto kind = model::DocumentKind(*text);
                   if (!kind.ok()) return Report(kind.status());
                   Status st = *kind == "CronPipeline"
                                   ? model::ParseCronPipelineSpec(*text).status()
                                   : model::ParsePipelineSpec(*text).status();
                   if (!st.ok()) return Report(st);
                   std::cout << "valid\n";
                   return 0;
                 }});

  struct GetArgs {
    std::string id;
    bool json_out = false;
  };
  auto ga = std::make_shared<GetArgs>();
  auto* get = p->add_subcommand("get", "show a run as a tree of its steps with states");
  get->add_option("RUN", ga->id, "run id")->required();
  get->add_flag("--json", ga->json_out, "print the API's JSON");
  out.push_back({get, [root, ga]() -> int {
                   ApiClient api(ServerUrl(*root));
                   auto r = api.Get("/api/v1/pipelines/runs/" + ga->id);
                   if (!r.ok()) return Report(r.status());
                   if (ga->json_out)
                     std::cout << r->dump(2) << "\n";
                   else
                     PrintRun(*r);
                   return 0;
                 }});

  auto* list = p->add_subcommand("list", "list runs, newest first");
  out.push_back(
      {list, [root]() -> int {
         ApiClient api(ServerUrl(*root));
         auto r = api.Get("/api/v1/pipelines/runs?limit=100");
         if (!r.ok()) return Report(r.status());
         Table t({"ID", "NAME", "STATE", "USER", "CREATED", "ENDED", "SCHEDULE", "MESSAGE"});
         for (const auto& run : *r)
           t.Add({S(run, "id"), S(run, "name"), S(run, "state"), S(run, "user"), S(run, "created"),
                  S(run, "ended"), S(run, "cron"), S(run, "message")});
         t.Print(std::cout);
         return 0;
       }});

  struct LogArgs {
    std::string id, step;
  };
  auto la = std::make_shared<LogArgs>();
  auto* logs =
      p->add_subcommand("logs", "print a step's output (every step's when STEP is left out)");
  logs->add_option("RUN", la->id, "run id")->required();
  logs->add_option("STEP", la->step, "step, or fan-out child like fan(3)");
  out.push_back({logs, [root, la]() -> int {
                   ApiClient api(ServerUrl(*root));
                   std::vector<std::string> steps;
                   if (!la->step.empty()) {
                     steps.push_back(la->step);
                   } else {
                     auto r = api.Get("/api/v1/pipelines/runs/" + la->id);
                     if (!r.ok()) return Report(r.status());
                     for (const auto& n : (*r)["nodes"])
                       if (n.value("jobId", 0)) steps.push_back(S(n, "name"));
                   }
                   for (const auto& s : steps) {
                     if (la->step.empty()) std::cout << "==> " << s << " <==\n";
                     Status st = api.CopyLog(
                         "/api/v1/pipelines/runs/" + la->id + "/logs?step=" + httplib_encode(s),
                         [](const std::string& text) { std::cout << text; });
                     if (!st.ok()) return Report(st);
                   }
                   return 0;
                 }});

  for (const char* action : {"cancel", "suspend", "resume", "retry", "resubmit"}) {
    auto id = std::make_shared<std::string>();
    std::string help =
        std::string(action) == "cancel"    ? "cancel a run (the exit handler still runs)"
        : std::string(action) == "suspend" ? "start no new steps until resumed"
        : std::string(action) == "resume"  ? "resume a suspended run"
        : std::string(action) == "retry"   ? "retry a failed run from its failed steps"
                                         : "start a new run with the same document and parameters";
    auto* c = p->add_subcommand(action, help);
    c->add_option("RUN", *id, "run id")->required();
    std::string a = action;
    out.push_back({c, [root, id, a]() -> int {
                     ApiClient api(ServerUrl(*root));
                     auto r = api.Post("/api/v1/pipelines/runs/" + *id + "/" + a, "{}");
                     if (!r.ok()) return Report(r.status());
                     if (a == "resubmit")
                       std::cout << S(*r, "id") << "\n";
                     else
                       std::cout << S(*r, "id") << " " << S(*r, "state")
                                 << (r->value("suspended", false) ? " (suspended)" : "") << "\n";
                     return 0;
                   }});
  }

  // Schedules.
  auto* cron = p->add_subcommand("cron", "cron schedules of pipelines (kind: CronPipeline)");
  cron->require_subcommand(1);
  auto cfile = std::make_shared<std::string>();
  auto* ccreate = cron->add_subcommand("create", "create or replace a schedule");
  ccreate->add_option("-f,--file", *cfile, "the CronPipeline document")->required();
  out.push_back({ccreate, [root, cfile]() -> int {
                   auto text = ReadSpecFile(*cfile);
                   if (!text.ok()) return Report(text.status());
                   ApiClient api(ServerUrl(*root));
                   auto r = api.Post("/api/v1/cronpipelines", json{{"spec", *text}}.dump());
                   if (!r.ok()) return Report(r.status());
                   std::cout << S(*r, "name") << " next " << S(*r, "nextScheduleTime") << "\n";
                   return 0;
                 }});
  // list and get print a table of schedules, or the API's JSON with -o json.
  auto list_out = std::make_shared<std::string>("table");
  auto* clist = cron->add_subcommand("list", "list schedules");
  clist->add_option("-o,--output", *list_out, "table or json")
      ->check(CLI::IsMember({"table", "json"}));
  out.push_back({clist, [root, list_out]() -> int {
                   ApiClient api(ServerUrl(*root));
                   auto r = api.Get("/api/v1/cronpipelines");
                   if (!r.ok()) return Report(r.status());
                   PrintCrons(*r, false, *list_out);
                   return 0;
                 }});
  for (const char* action : {"get", "suspend", "resume", "delete"}) {
    auto name = std::make_shared<std::string>();
    auto output = std::make_shared<std::string>("table");
    auto* c = cron->add_subcommand(action, std::string(action) + " a schedule");
    c->add_option("NAME", *name, "schedule name")->required();
    std::string a = action;
    if (a != "delete")
      c->add_option("-o,--output", *output, "table or json")
          ->check(CLI::IsMember({"table", "json"}));
    out.push_back({c, [root, name, output, a]() -> int {
                     ApiClient api(ServerUrl(*root));
                     Result<json> r =
                         a == "get" ? api.Get("/api/v1/cronpipelines/" + *name)
                         : a == "delete"
                             ? api.Post("/api/v1/cronpipelines/" + *name + "/delete", "{}")
                             : api.Post("/api/v1/cronpipelines/" + *name + "/" + a, "{}");
                     if (!r.ok()) return Report(r.status());
                     if (a == "delete")
                       std::cout << "cron pipeline " << *name << " deleted\n";
                     else
                       PrintCrons(*r, true, *output);
                     return 0;
                   }});
  }
  struct BackfillArgs {
    std::string name, from, to;
  };
  auto ba = std::make_shared<BackfillArgs>();
  auto* backfill =
      cron->add_subcommand("backfill", "start the runs a schedule would have started in a range");
  backfill->add_option("NAME", ba->name, "schedule name")->required();
  backfill->add_option("--from", ba->from, "start (RFC 3339, e.g. 2026-11-01T00:00:00Z)")
      ->required();
  backfill->add_option("--to", ba->to, "end, inclusive")->required();
  out.push_back({backfill, [root, ba]() -> int {
                   ApiClient api(ServerUrl(*root));
                   auto r = api.Post("/api/v1/cronpipelines/" + ba->name + "/backfill",
                                     json{{"from", ba->from}, {"to", ba->to}}.dump());
                   if (!r.ok()) return Report(r.status());
                   for (const auto& id : (*r)["runs"]) std::cout << id.dump() << "\n";
                   return 0;
                 }});
  return out;
}

}  // namespace berth::cli
