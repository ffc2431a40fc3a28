// berth events / berth gpus / berth drain / berth undrain: the cluster's
// event log and its GPUs, grouped as the API's /api/v1/events and
// /api/v1/gpus routes are.
#include <CLI/CLI.hpp>
#include <cctype>
#include <chrono>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/discovery.h"
#include "cli/json_fields.h"
#include "cli/table.h"
#include "common/clock.h"
#include "common/text.h"

namespace berth::cli {
namespace {

using nlohmann::json;

std::string Pct(const json& t, const char* key) {
  if (!t.contains(key) || !t[key].is_number()) return "-";
  std::ostringstream s;
  s << static_cast<int>(t[key].get<double>() + 0.5) << "%";
  return s.str();
}

// Declared GPUs have no driver to read: their readings are "n/a", explained
// under the table ("-" is a reading an NVML GPU did not report).
// The HEALTH column: "ok", "FATAL: <reason>" (lost, a fatal XID, double-bit
// ECC, a failed row remap; docs/gpu.md), or "ok, throttled (...)"; "-" before
// the first health reading.
std::string HealthColumn(const json& tel) {
  if (!tel.contains("health") || !tel["health"].is_object()) return "-";
  const json& h = tel["health"];
  if (h.value("fatal", false)) return "FATAL: " + h.value("reason", std::string("unhealthy"));
  std::string throttled;
  if (h.value("thermalThrottled", false)) throttled = "thermal";
  if (h.value("powerThrottled", false))
    throttled += std::string(throttled.empty() ? "" : ",") + "power";
  return throttled.empty() ? "ok" : "ok, throttled (" + throttled + ")";
}

// The DRAINED column: "-", or "health: XID 79 (...)" / "manual (by alice): reboot".
std::string DrainColumn(const json& g) {
  if (!g.contains("drained") || !g["drained"].is_object()) return "-";
  const json& d = g["drained"];
  std::string source = d.value("source", std::string("?"));
  std::string actor = d.value("actor", std::string());
  return source + (actor.empty() ? "" : " (by " + actor + ")") +
         (d.value("node", false) ? " [node]" : "") + ": " + d.value("reason", std::string());
}

// "NODE/GPU: check (why), ..." for each GPU with health checks its driver
// cannot run (no ECC on consumer GPUs, an older driver without the event API).
std::vector<std::string> UnavailableChecks(const json& reply) {
  std::vector<std::string> out;
  for (const auto& n : reply["nodes"]) {
    for (const auto& g : n["gpus"]) {
      if (g.value("declared", false)) continue;
      json tel = g.value("telemetry", json::object());
      if (!tel.is_object() || !tel.contains("health")) continue;
      std::string line;
      for (const auto& u : tel["health"].value("unavailable", json::array()))
        line += std::string(line.empty() ? "" : ", ") + u.value("check", std::string("?")) + " (" +
                u.value("reason", std::string("?")) + ")";
      if (!line.empty())
        out.push_back(n.value("name", std::string("?")) + "/" + g["index"].dump() + ": " + line);
    }
  }
  return out;
}

void PrintGpus(const json& reply) {
  Table t({"NODE", "GPU", "MODEL", "UTIL", "MEMORY", "TEMP", "POWER", "HEALTH", "DRAINED", "ALLOC",
           "JOB", "USER"});
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
        mem = std::to_string(tel["memoryUsedMiB"].get<int64_t>()) + "/" + std::to_string(total) +
              " MiB";
      else
        mem = na + "/" + std::to_string(total) + " MiB";
      if (num("temperatureC")) temp = std::to_string(tel["temperatureC"].get<int>()) + "C";
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
             declared ? na : Pct(tel, "utilization"), mem, temp, power,
             declared ? na : HealthColumn(tel), DrainColumn(g), g.value("allocated", "0"),
             jobs.empty() ? "-" : jobs, users.empty() ? "-" : users});
    }
  }
  t.Print(std::cout);
  if (any_declared)
    std::cout
        << "\nn/a: declared GPUs (berthd --gpus N, or no NVIDIA driver found) are scheduled but "
           "not measured: no driver reports their utilization, memory, temperature or power, "
           "nor their jobs' GPU usage\n";
  std::vector<std::string> unavailable = UnavailableChecks(reply);
  if (!unavailable.empty()) {
    std::cout << "\nhealth checks this driver cannot run:\n";
    for (const std::string& u : unavailable) std::cout << "  " << EscapeForTerminal(u) << "\n";
  }
}

// NODE or NODE/GPU -> the API body's node and gpu.
Result<json> DrainTarget(const std::string& target) {
  if (target.empty()) return InvalidArgument("NODE[/GPU]: must not be empty");
  json body;
  size_t slash = target.rfind('/');
  std::string node = slash == std::string::npos ? target : target.substr(0, slash);
  if (node.empty()) return InvalidArgument("NODE[/GPU]: \"" + target + "\" names no node");
  body["node"] = node;
  if (slash != std::string::npos) {
    std::string g = target.substr(slash + 1);
    if (g.empty() || g.size() > 4 || g.find_first_not_of("0123456789") != std::string::npos)
      return InvalidArgument("NODE[/GPU]: \"" + g + "\" is not a GPU index");
    body["gpu"] = std::stoi(g);
  }
  return body;
}

int RunDrain(const std::string& target, const std::string& reason, bool drain,
             const std::string& server) {
  auto body = DrainTarget(target);
  if (!body.ok()) return Report(body.status());
  if (drain) (*body)["reason"] = reason;
  ApiClient api(server);
  auto r = api.Post(drain ? "/api/v1/gpus/drain" : "/api/v1/gpus/undrain", body->dump());
  if (!r.ok()) return Report(r.status());
  std::cout << EscapeForTerminal(target) << (drain ? " drained" : " undrained") << "\n";
  return 0;
}

struct EventsFlags {
  std::string job;
  std::string actor;
  int64_t after = 0;
  bool follow = false;
  std::string output = "table";
};

int RunEvents(const EventsFlags& f, const std::string& server) {
  ApiClient api(server);
  std::string q = "/api/v1/events?after=" + std::to_string(f.after);
  if (!f.job.empty()) q += "&job=" + f.job;
  if (!f.actor.empty()) {
    for (char c : f.actor)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-' &&
          c != '@' && c != '$' && c != ':')
        return Report(InvalidArgument("--actor: \"" + EscapeForTerminal(f.actor) +
                                      "\" is not a user name (letters, digits, . _ - @ $)"));
    q += "&actor=" + f.actor;
  }
  auto print = [&](const json& e) {
    if (f.output == "json") {
      std::cout << e.dump() << "\n" << std::flush;
      return;
    }
    // Events about no job (pipeline runs, ...) name their subject in the message.
    std::string job = e.value("job", 0) ? "  job " + Str(e, "job") : "";
    std::cout << Str(e, "time") << "  " << Str(e, "type") << job << "  "
              << EscapeForTerminal(Str(e, "message")) << "\n"
              << std::flush;
  };
  if (f.follow) {
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

int RunGpus(bool watch, const std::string& output, const std::string& server) {
  ApiClient api(server);
  while (true) {
    auto r = api.Get("/api/v1/gpus");
    if (!r.ok()) return Report(r.status());
    if (output == "json") {
      std::cout << r->dump(2) << "\n";
      return 0;
    }
    if (watch)
      std::cout << "\033[H\033[2J"
                << "berth gpus  " << FormatTime(SystemClock::Default().Now()) << "\n\n";
    PrintGpus(*r);
    std::cout << std::flush;
    if (!watch) return 0;
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
}

}  // namespace

std::vector<Command> AddClusterCommands(CLI::App& app) {
  std::vector<Command> out;
  auto server = [&app] { return ServerUrlOrExit(app); };

  auto ef = std::make_shared<EventsFlags>();
  auto* events = app.add_subcommand("events", "print the event log");
  events->add_option("--job", ef->job, "only this job's events");
  events->add_option("--after", ef->after, "events after this sequence number");
  events->add_option("--actor", ef->actor,
                     "only the changes this user made (or job:ID, a task acting for its owner)");
  events->add_flag("-f,--follow", ef->follow, "keep printing new events");
  events->add_option("-o,--output", ef->output, "table or json")
      ->check(CLI::IsMember({"table", "json"}));
  out.push_back({events, [ef, server] { return RunEvents(*ef, server()); }});

  auto watch = std::make_shared<bool>(false);
  auto output = std::make_shared<std::string>("table");
  auto* gpus = app.add_subcommand("gpus", "show every GPU, its telemetry and its jobs");
  gpus->add_flag("-w,--watch", *watch, "refresh every 2 s");
  gpus->add_option("-o,--output", *output, "table or json")
      ->check(CLI::IsMember({"table", "json"}));
  out.push_back({gpus, [watch, output, server] { return RunGpus(*watch, *output, server()); }});

  auto target = std::make_shared<std::string>();
  auto reason = std::make_shared<std::string>();
  auto* drain = app.add_subcommand(
      "drain", "take a GPU (NODE/GPU) or a node out of scheduling; running jobs are requeued");
  drain->add_option("target", *target, "NODE or NODE/GPU")->required();
  drain->add_option("--reason", *reason, "why (shown by berth gpus)")->required();
  out.push_back(
      {drain, [target, reason, server] { return RunDrain(*target, *reason, true, server()); }});
  auto utarget = std::make_shared<std::string>();
  auto* undrain = app.add_subcommand("undrain", "give a drained GPU or node back to scheduling");
  undrain->add_option("target", *utarget, "NODE or NODE/GPU")->required();
  out.push_back({undrain, [utarget, server] { return RunDrain(*utarget, "", false, server()); }});
  return out;
}

}  // namespace berth::cli
