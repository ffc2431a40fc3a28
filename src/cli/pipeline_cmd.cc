// berth pipeline ...: run, get, list, logs, cancel, suspend, resume, retry,
// resubmit, validate, and `berth pipeline cron ...` for schedules.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "cli/commands.h"
#include "cli/table.h"
#include "model/pipeline.h"

namespace berth::cli {
namespace {

using nlohmann::json;

std::string ServerUrl(CLI::App& root) {
  CLI::Option* opt = root.get_option_no_throw("--server");
  if (opt && opt->count()) return opt->as<std::string>();
  if (const char* s = std::getenv("BERTH_SERVER"); s && *s) return s;
  return "http://127.0.0.1:7420";
}

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
  if (!S(run, "message").empty()) std::cout << "Message: " << S(run, "message") << "\n";
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

bool RunTerminal(const std::string& s) {
  return s == "Succeeded" || s == "Failed" || s == "Cancelled";
}

int WaitRun(ApiClient& api, const std::string& id) {
  for (;;) {
    auto r = api.Get("/api/v1/pipelines/runs/" + id);
    if (!r.ok()) return Report(r.status());
    std::string state = S(*r, "state");
    if (RunTerminal(state)) {
      PrintRun(*r);
      return state == "Succeeded" ? 0 : kExitError;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace

std::vector<Command> AddPipelineCommands(CLI::App& app) {
  CLI::App* root = &app;
  auto* p =
      app.add_subcommand("pipeline", "run DAGs of steps (kind: Pipeline) and their schedules");
  p->require_subcommand(1);
  std::vector<Command> out;

  struct RunArgs {
    std::string file, user;
    std::vector<std::string> params;
    bool wait = false;
  };
  auto ra = std::make_shared<RunArgs>();
  auto* run = p->add_subcommand(
      "run", "start a run of a Pipeline document (a CronPipeline creates a schedule)");
  run->add_option("-f,--file", ra->file, "the document (YAML or JSON; - for stdin)")->required();
  run->add_option("-p,--param", ra->params, "a parameter: key=value (repeatable)");
  run->add_flag("-w,--wait", ra->wait, "wait for the run to end; exit 0 only if it succeeded");
  run->add_option("--user", ra->user, "who runs it (default $USER)");
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
                   std::string user = ra->user;
                   if (user.empty())
                     if (const char* u = std::getenv("USER")) user = u;
                   auto r = api.Post(
                       "/api/v1/pipelines/runs",
                       json{{"spec", *text}, {"parameters", params}, {"user", user}}.dump());
                   if (!r.ok()) return Report(r.status());
                   std::string id = S(*r, "id");
                   std::cout << id << "\n" << std::flush;
                   if (!ra->wait) return 0;
                   return WaitRun(api, id);
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
  auto* clist = cron->add_subcommand("list", "list schedules");
  out.push_back({clist, [root]() -> int {
                   ApiClient api(ServerUrl(*root));
                   auto r = api.Get("/api/v1/cronpipelines");
                   if (!r.ok()) return Report(r.status());
                   Table t({"NAME", "SCHEDULE", "TIMEZONE", "POLICY", "SUSPENDED", "LAST", "NEXT"});
                   for (const auto& c : *r)
                     t.Add({S(c, "name"), S(c, "schedule"), S(c, "timezone"),
                            S(c, "concurrencyPolicy"), S(c, "suspended"), S(c, "lastScheduleTime"),
                            S(c, "nextScheduleTime")});
                   t.Print(std::cout);
                   return 0;
                 }});
  for (const char* action : {"get", "suspend", "resume", "delete"}) {
    auto name = std::make_shared<std::string>();
    auto* c = cron->add_subcommand(action, std::string(action) + " a schedule");
    c->add_option("NAME", *name, "schedule name")->required();
    std::string a = action;
    out.push_back({c, [root, name, a]() -> int {
                     ApiClient api(ServerUrl(*root));
                     Result<json> r =
                         a == "get" ? api.Get("/api/v1/cronpipelines/" + *name)
                         : a == "delete"
                             ? api.Post("/api/v1/cronpipelines/" + *name + "/delete", "{}")
                             : api.Post("/api/v1/cronpipelines/" + *name + "/" + a, "{}");
                     if (!r.ok()) return Report(r.status());
                     std::cout << r->dump(2) << "\n";
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
