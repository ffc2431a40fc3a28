// Policy quality and simulator speed: replays a trace under every policy on
// each cluster shape and prints one markdown table (the one in
// docs/scheduling.md). Usage:
//   berth_sim_bench [--trace FILE] [--cluster 64x8,48x8] [--policies a,b] [--json]
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "sched/scheduler.h"
#include "sim/simulator.h"

namespace {

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string trace_path = "/work/shared/traces/philly-dev.csv";
  std::vector<std::string> clusters = {"64x8", "48x8"};
  std::vector<std::string> policies = berth::sched::Scheduler::Policies();
  std::string window;
  bool json = false;
  std::map<std::string, std::string> policy_options;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--trace")
      trace_path = next();
    else if (a == "--cluster")
      clusters = Split(next());
    else if (a == "--policies")
      policies = Split(next());
    else if (a == "--window")
      window = next();
    else if (a == "--json")
      json = true;
    else if (a == "--option") {
      std::string kv = next();
      auto eq = kv.find('=');
      policy_options[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
    } else {
      std::fprintf(stderr, "unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  auto trace = berth::sim::LoadTrace(trace_path);
  if (!trace.ok()) {
    std::fprintf(stderr, "%s\n", trace.status().ToString().c_str());
    return 1;
  }
  if (!json) {
    std::printf(
        "| cluster | policy | avg JCT (h) | p50 JCT (h) | p99 JCT (h) | avg queue (h) | makespan "
        "(d) | GPU util | preemptions | fairness | sim wall (s) | sim CPU (s) |\n");
    std::printf(
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  }
  for (const auto& c : clusters) {
    auto shape = berth::sim::ParseClusterShape(c);
    if (!shape.ok()) {
      std::fprintf(stderr, "%s\n", shape.status().ToString().c_str());
      return 2;
    }
    for (const auto& p : policies) {
      berth::sim::SimOptions o;
      o.trace = *trace;
      o.nodes = shape->first;
      o.gpus_per_node = shape->second;
      o.policy = p;
      o.policy_options = policy_options;
      if (!window.empty()) {
        auto w = berth::sim::ParseWindow(window);
        if (!w.ok()) return 2;
        o.window_from = w->first;
        o.window_to = w->second;
      }
      std::clock_t cpu0 = std::clock();  // process CPU time, to report speed on a shared machine
      auto r = berth::sim::RunSimulation(o);
      double cpu_s = static_cast<double>(std::clock() - cpu0) / CLOCKS_PER_SEC;
      if (!r.ok()) {
        std::fprintf(stderr, "%s %s: %s\n", c.c_str(), p.c_str(), r.status().ToString().c_str());
        continue;
      }
      if (json) {
        std::printf("%s\n", berth::sim::ToJson(*r).dump().c_str());
      } else {
        std::printf(
            "| %s | %s | %.2f | %.2f | %.1f | %.2f | %.1f | %.3f | %lld | %.2f | %.1f | %.1f |\n",
            c.c_str(), p.c_str(), r->avg_jct_s / 3600, r->p50_jct_s / 3600, r->p99_jct_s / 3600,
            r->avg_queue_delay_s / 3600, r->makespan_s / 86400, r->gpu_utilization,
            static_cast<long long>(r->preemptions), r->fairness, r->sim_wall_s, cpu_s);
      }
      std::fflush(stdout);
    }
  }
  return 0;
}
