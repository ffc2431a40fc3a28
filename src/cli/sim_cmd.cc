// berth sim: replays a job trace offline (no daemon needed) through the
// daemon's own job controller and scheduler, over an in-memory store, on a
// virtual clock (src/sim/).
#include <iomanip>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "model/spec_reader.h"
#include "sim/simulator.h"

namespace berth::cli {
namespace {

struct SimFlags {
  std::string trace, cluster = "64x8", policy = "dynamic", window, output = "table";
  std::string restart_penalty, tick, stop_time;
  double spread_slowdown = -1;
  uint64_t seed = 1;
  std::vector<std::string> options;
};

int RunSim(const SimFlags& f) {
  if (f.trace.empty()) return Report(InvalidArgument("--trace: required (a trace CSV)"));
  sim::SimOptions o;
  o.trace_path = f.trace;
  o.policy = f.policy;
  o.seed = f.seed;
  auto shape = sim::ParseClusterShape(f.cluster);
  if (!shape.ok()) return Report(shape.status());
  o.nodes = shape->first;
  o.gpus_per_node = shape->second;
  if (!f.window.empty()) {
    auto w = sim::ParseWindow(f.window);
    if (!w.ok()) return Report(w.status());
    o.window_from = w->first;
    o.window_to = w->second;
  }
  if (!f.restart_penalty.empty()) {
    auto d = model::ParseDuration(f.restart_penalty);
    if (!d.ok()) return Report(InvalidArgument("--restart-penalty: " + d.status().message()));
    o.restart_penalty = *d;
  }
  if (!f.stop_time.empty()) {
    auto d = model::ParseDuration(f.stop_time);
    if (!d.ok() || *d < 0)
      return Report(InvalidArgument("--stop-time: must be a duration like 30s or 0s"));
    o.stop_time = *d;
  }
  if (!f.tick.empty()) {
    auto d = model::ParseDuration(f.tick);
    if (!d.ok() || *d <= 0)
      return Report(InvalidArgument("--tick: must be a positive duration like 60s"));
    o.tick = *d;
  }
  if (f.spread_slowdown >= 0) {
    if (f.spread_slowdown < 1) return Report(InvalidArgument("--spread-slowdown: must be >= 1"));
    o.spread_slowdown = f.spread_slowdown;
  }
  for (const auto& kv : f.options) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      return Report(InvalidArgument("--option: expected KEY=VALUE, got \"" + kv + "\""));
    o.policy_options[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  auto r = sim::RunSimulation(o);
  if (!r.ok()) return Report(r.status());
  if (f.output == "json") {
    std::cout << sim::ToJson(*r).dump(2) << "\n";
    return 0;
  }
  const sim::SimReport& s = *r;
  std::ostringstream out;
  out << std::fixed << std::setprecision(1);
  out << "policy " << s.policy << " on " << s.cluster << " GPUs, " << s.jobs << " jobs ("
      << s.completed << " completed, " << s.unfinished << " unfinished, " << s.rejected
      << " never runnable)\n";
  out << "  avg JCT        " << s.avg_jct_s / 3600 << " h\n";
  out << "  median JCT     " << s.p50_jct_s / 3600 << " h\n";
  out << "  p99 JCT        " << s.p99_jct_s / 3600 << " h\n";
  out << "  avg queueing   " << s.avg_queue_delay_s / 3600 << " h\n";
  out << "  makespan       " << s.makespan_s / 3600 << " h\n";
  out << std::setprecision(3);
  out << "  GPU util       " << s.gpu_utilization << "\n";
  out << "  preemptions    " << s.preemptions << "\n";
  out << "  resizes        " << s.resizes << "\n";
  out << "  fairness       " << s.fairness << " (Jain's index over queues' average slowdown)\n";
  out << std::setprecision(2) << "  wall time      " << s.sim_wall_s << " s\n";
  for (const auto& i : s.ignored) out << "  ignored: " << i << "\n";
  std::cout << out.str();
  return 0;
}

}  // namespace

std::vector<Command> AddSimCommands(CLI::App& app) {
  auto f = std::make_shared<SimFlags>();
  auto* sim = app.add_subcommand(
      "sim",
      "replay a job trace through the daemon's job controller and scheduler on a virtual clock");
  sim->add_option("--trace", f->trace,
                  "trace CSV (job_id,submit_time,duration,num_gpus,queue); required");
  sim->add_option("--cluster", f->cluster, "NODESxGPUS_PER_NODE (default 64x8)");
  sim->add_option("--policy", f->policy, "scheduling policy (default dynamic)");
  sim->add_option("--window", f->window,
                  "replay jobs submitted in FROM:TO (seconds, or 2d, 12h...)");
  sim->add_option("--seed", f->seed, "random seed (default 1)");
  sim->add_option("--restart-penalty", f->restart_penalty,
                  "cost of a preemption or resize (default 30s)");
  sim->add_option("--spread-slowdown", f->spread_slowdown,
                  "slowdown of a gang spread over nodes (default 1.25)");
  sim->add_option(
      "--stop-time", f->stop_time,
      "how long a task takes to exit after SIGTERM, within its 30s grace (default 30s)");
  sim->add_option("--tick", f->tick,
                  "least time between time-driven scheduling cycles (default 60s)");
  sim->add_option("--option", f->options, "policy option KEY=VALUE (repeatable)");
  sim->add_option("-o,--output", f->output, "table or json")
      ->check(CLI::IsMember({"table", "json"}));
  // (the subcommand first: sim counts as parsed too when it runs)
  return {AddSimInflationCommand(sim), {sim, [f] { return RunSim(*f); }}};
}

}  // namespace berth::cli
