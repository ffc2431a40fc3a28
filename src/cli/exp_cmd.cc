// berth exp ...: hyperparameter-tuning experiments (kind: Experiment;
// docs/experiments.md): create, list, get, trials, logs, stop, resume, set,
// delete. -o json prints the API's JSON.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/discovery.h"
#include "cli/table.h"
#include "common/text.h"

namespace berth::cli {
namespace {

using nlohmann::json;

Result<std::string> ReadFileOrStdin(const std::string& path) {
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
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return "";
  if (j[key].is_string()) return j[key].get<std::string>();
  return j[key].dump();
}

std::string Num(const json& v) {
  if (!v.is_number()) return "";
  std::ostringstream o;
  o.precision(6);
  o << v.get<double>();
  return o.str();
}

std::string Params(const json& p) {
  std::string out;
  if (!p.is_object()) return out;
  for (auto it = p.begin(); it != p.end(); ++it)
    out += (out.empty() ? "" : " ") + it.key() + "=" +
           (it.value().is_string() ? it.value().get<std::string>() : it.value().dump());
  return out;
}

// Trials best first by the objective (those without one last, by id); the
// best trial is marked with '*'.
void PrintTrials(const json& exp) {
  json trials = exp.value("trials", json::array());
  bool maximize = exp.contains("objective") && S(exp["objective"], "type") == "maximize";
  std::vector<json> rows(trials.begin(), trials.end());
  std::stable_sort(rows.begin(), rows.end(), [&](const json& a, const json& b) {
    bool ha = a["objective"].is_number(), hb = b["objective"].is_number();
    if (ha != hb) return ha;
    if (!ha) return a["id"].get<int64_t>() < b["id"].get<int64_t>();
    double x = a["objective"].get<double>(), y = b["objective"].get<double>();
    return maximize ? x > y : x < y;
  });
  std::string metric = exp.contains("objective") ? S(exp["objective"], "objectiveMetricName")
                                                 : std::string("OBJECTIVE");
  std::vector<std::string> headers = {"", "TRIAL", "STATE", "JOB"};
  for (auto& c : metric) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  headers.push_back(metric.empty() ? "OBJECTIVE" : metric);
  headers.push_back("PARAMETERS");
  headers.push_back("MESSAGE");
  Table t(headers);
  for (const auto& tr : rows)
    t.Add({tr.value("best", false) ? "*" : "", S(tr, "id"), S(tr, "state"),
           tr.value("jobId", 0) ? S(tr, "jobId") : "", Num(tr["objective"]),
           Params(tr["parameters"]), S(tr, "message")});
  t.Print(std::cout);
}

void PrintExperiment(const json& x) {
  std::cout << "Experiment " << S(x, "name") << ": " << S(x, "state");
  if (!S(x, "message").empty()) std::cout << " (" << EscapeForTerminal(S(x, "message")) << ")";
  std::cout << "\n";
  std::cout << "Owner: " << S(x, "owner") << "  Algorithm: " << S(x, "algorithm");
  if (!S(x, "earlyStopping").empty()) std::cout << "  Early stopping: " << S(x, "earlyStopping");
  std::cout << "\n";
  if (x.contains("objective"))
    std::cout << "Objective: " << S(x["objective"], "type") << " "
              << S(x["objective"], "objectiveMetricName")
              << (x["objective"]["goal"].is_number() ? " (goal " + Num(x["objective"]["goal"]) + ")"
                                                     : "")
              << "\n";
  const json& c = x["trialCounts"];
  std::cout << "Trials: " << S(c, "total") << " of "
            << (x.value("maxTrialCount", 0) ? S(x, "maxTrialCount") : std::string("unlimited"))
            << " (running " << S(c, "Running") << ", succeeded " << S(c, "Succeeded") << ", failed "
            << S(c, "Failed") << ", early stopped " << S(c, "EarlyStopped")
            << ", metrics unavailable " << S(c, "MetricsUnavailable") << ", killed "
            << S(c, "Killed") << "); parallel " << S(x, "parallelTrialCount") << ", max failed "
            << (x.value("maxFailedTrialCount", -1) >= 0 ? S(x, "maxFailedTrialCount")
                                                        : std::string("unlimited"))
            << "\n";
  const json& best = x["currentOptimalTrial"];
  if (best.is_object())
    std::cout << "Best: trial " << S(best, "id") << " " << Num(best["objective"]) << " ("
              << Params(best["parameters"]) << ")\n";
  if (x.contains("trials")) {
    std::cout << "\n";
    PrintTrials(x);
  }
}

}  // namespace

std::vector<Command> AddExperimentCommands(CLI::App& app) {
  std::vector<Command> out;
  CLI::App* root = &app;
  auto* x = app.add_subcommand("exp", "hyperparameter-tuning experiments (kind: Experiment)");
  x->alias("experiment");
  x->require_subcommand(1);
  auto output = std::make_shared<std::string>();
  auto add_output = [output](CLI::App* c) {
    c->add_option("-o,--output", *output, "json: print the API's JSON")
        ->check(CLI::IsMember({"json", "table"}));
  };
  auto print = [output](const json& j, const std::function<void()>& human) {
    if (*output == "json")
      std::cout << j.dump(2) << "\n";
    else
      human();
  };

  auto file = std::make_shared<std::string>();
  auto* create = x->add_subcommand("create", "create an experiment from its document");
  create->add_option("-f,--file", *file, "the Experiment document (- for stdin)")->required();
  add_output(create);
  out.push_back({create, [root, file, print]() -> int {
                   auto text = ReadFileOrStdin(*file);
                   if (!text.ok()) return Report(text.status());
                   ApiClient api(ServerUrlOrExit(*root));
                   auto r = api.Post("/api/v1/experiments", json{{"spec", *text}}.dump());
                   if (!r.ok()) return Report(r.status());
                   print(*r, [&] { std::cout << "experiment " << S(*r, "name") << " created\n"; });
                   return 0;
                 }});

  auto* list = x->add_subcommand("list", "list experiments");
  add_output(list);
  out.push_back(
      {list, [root, print]() -> int {
         ApiClient api(ServerUrlOrExit(*root));
         auto r = api.Get("/api/v1/experiments");
         if (!r.ok()) return Report(r.status());
         print(*r, [&] {
           Table t({"NAME", "STATE", "OWNER", "ALGORITHM", "TRIALS", "RUNNING", "BEST", "CREATED"});
           for (const auto& e : (*r)["items"])
             t.Add({S(e, "name"), S(e, "state"), S(e, "owner"), S(e, "algorithm"),
                    S(e["trialCounts"], "total"), S(e["trialCounts"], "Running"),
                    e["currentOptimalTrial"].is_object()
                        ? Num(e["currentOptimalTrial"]["objective"])
                        : "",
                    S(e, "created")});
           t.Print(std::cout);
         });
         return 0;
       }});

  for (const char* what : {"get", "trials"}) {
    auto name = std::make_shared<std::string>();
    bool is_get = std::string(what) == "get";
    auto* c = x->add_subcommand(
        what, is_get ? "show an experiment and its trials, best first (the best marked *)"
                     : "list an experiment's trials, best first (the best marked *)");
    c->add_option("NAME", *name, "experiment")->required();
    add_output(c);
    out.push_back({c, [root, name, print, is_get]() -> int {
                     ApiClient api(ServerUrlOrExit(*root));
                     auto r = api.Get("/api/v1/experiments/" + *name);
                     if (!r.ok()) return Report(r.status());
                     if (!is_get) {
                       json items = (*r)["trials"];
                       print(json{{"items", items}}, [&] { PrintTrials(*r); });
                     } else {
                       print(*r, [&] { PrintExperiment(*r); });
                     }
                     return 0;
                   }});
  }

  struct LogArgs {
    std::string name;
    int64_t trial = -1;
  };
  auto la = std::make_shared<LogArgs>();
  auto* logs = x->add_subcommand("logs", "print a trial's output");
  logs->add_option("NAME", la->name, "experiment")->required();
  logs->add_option("TRIAL", la->trial, "trial id")->required()->check(CLI::NonNegativeNumber);
  out.push_back({logs, [root, la]() -> int {
                   ApiClient api(ServerUrlOrExit(*root));
                   auto r = api.Get("/api/v1/experiments/" + la->name);
                   if (!r.ok()) return Report(r.status());
                   for (const auto& t : (*r)["trials"]) {
                     if (t["id"].get<int64_t>() != la->trial) continue;
                     if (!t.value("jobId", 0))
                       return Report(FailedPrecondition("trial " + std::to_string(la->trial) +
                                                        " has no job yet"));
                     Status st = api.CopyLog("/api/v1/jobs/" + S(t, "jobId") + "/logs",
                                             [](const std::string& s) { std::cout << s; });
                     return st.ok() ? 0 : Report(st);
                   }
                   return Report(NotFound("experiment " + la->name + " has no trial " +
                                          std::to_string(la->trial)));
                 }});

  struct CountArgs {
    std::string name;
    int64_t parallel = -2, max_trials = -2, max_failed = -2;
  };
  for (const char* action : {"stop", "resume", "set", "delete"}) {
    std::string a = action;
    auto ca = std::make_shared<CountArgs>();
    std::string help = a == "stop"     ? "stop an experiment and its running trials"
                       : a == "resume" ? "resume a stopped or ended experiment, keeping its trials"
                       : a == "set"    ? "change the trial counts of an experiment"
                                       : "delete an experiment, its trials and metrics";
    auto* c = x->add_subcommand(action, help);
    c->add_option("NAME", ca->name, "experiment")->required();
    if (a == "resume" || a == "set") {
      c->add_option("--parallel", ca->parallel, "parallelTrialCount");
      c->add_option("--max-trials", ca->max_trials, "maxTrialCount (0: no limit)");
      c->add_option("--max-failed", ca->max_failed, "maxFailedTrialCount (-1: no limit)");
    }
    add_output(c);
    out.push_back({c, [root, ca, a, print]() -> int {
                     ApiClient api(ServerUrlOrExit(*root));
                     json body = json::object();
                     if (ca->parallel != -2) body["parallelTrialCount"] = ca->parallel;
                     if (ca->max_trials != -2) body["maxTrialCount"] = ca->max_trials;
                     if (ca->max_failed != -2) body["maxFailedTrialCount"] = ca->max_failed;
                     std::string path = "/api/v1/experiments/" + ca->name + "/" +
                                        (a == "set" ? std::string("counts") : a);
                     auto r = api.Post(path, body.dump());
                     if (!r.ok()) return Report(r.status());
                     print(*r, [&] {
                       if (a == "delete")
                         std::cout << "experiment " << ca->name << " deleted\n";
                       else
                         std::cout << S(*r, "name") << " " << S(*r, "state") << "\n";
                     });
                     return 0;
                   }});
  }
  return out;
}

}  // namespace berth::cli
