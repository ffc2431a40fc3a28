// berth sim inflation: the workload-inflation experiment (sim/inflation.h)
// on a node list and a pod list in the format of Alibaba's GPU-sharing trace.
#include <cmath>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.h"
#include "sim/inflation.h"

namespace berth::cli {
namespace {

struct InflationFlags {
  std::string nodes, pods, packing = "bestfit,fgd,berth", output = "table";
  uint64_t seed = 42;
  int seeds = 1;
  double until = 1.3;
  int learn_window = 300;
};

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string p;
  while (std::getline(ss, p, ',')) out.push_back(p);
  return out;
}

int RunInflationCmd(const InflationFlags& f) {
  if (f.seeds < 1 || f.seeds > 1000) return Report(InvalidArgument("--seeds: must be 1..1000"));
  if (f.learn_window < 1) return Report(InvalidArgument("--learn-window: must be >= 1"));
  auto nodes = sim::LoadPackNodes(f.nodes);
  if (!nodes.ok()) return Report(nodes.status());
  auto pods = sim::LoadPackTasks(f.pods);
  if (!pods.ok()) return Report(pods.status());
  std::vector<sim::Packing> packings;
  for (const auto& name : SplitComma(f.packing)) {
    auto p = sim::ParsePacking(name);
    if (!p.ok()) return Report(InvalidArgument("--packing: " + p.status().message()));
    packings.push_back(*p);
  }
  if (packings.empty()) return Report(InvalidArgument("--packing: empty"));
  nlohmann::json out = nlohmann::json::object();
  std::ostringstream table;
  table << std::fixed;
  table
      << "| packing | seeds | allocated at 100% (%) | unallocated GPUs at 100% (mean, min..max) "
         "| failed tasks | CPU per placement (us) |\n| --- | ---: | ---: | ---: | ---: | ---: |\n";
  std::ostringstream curves;
  curves << std::fixed << std::setprecision(2);
  for (sim::Packing p : packings) {
    std::vector<std::vector<double>> alloc;  // per seed, per arrived percent
    double at100 = 0, un_min = 1e18, un_max = 0, un_sum = 0, us = 0, failed = 0;
    for (int s = 0; s < f.seeds; ++s) {
      sim::InflationOptions o;
      o.packing = p;
      o.seed = f.seed + s;
      o.until = f.until;
      o.learn_window = static_cast<size_t>(f.learn_window);
      auto r = sim::RunInflation(*nodes, *pods, o);
      if (!r.ok()) return Report(r.status());
      std::vector<double> a;
      for (const auto& pt : r->curve) a.push_back(pt.allocated_pct);
      alloc.push_back(a);
      for (const auto& pt : r->curve) {
        if (pt.arrived_pct != 100) continue;
        at100 += pt.allocated_pct;
        un_sum += pt.unallocated_gpus;
        un_min = std::min(un_min, pt.unallocated_gpus);
        un_max = std::max(un_max, pt.unallocated_gpus);
      }
      us += r->cpu_us_per_task;
      failed += static_cast<double>(r->failed);
    }
    const double n = f.seeds;
    table << "| " << sim::PackingName(p) << " | " << f.seeds << " | " << std::setprecision(2)
          << at100 / n << " | " << std::setprecision(1) << un_sum / n << " (" << un_min << ".."
          << un_max << ") | " << std::setprecision(0) << failed / n << " | " << std::setprecision(1)
          << us / n << " |\n";
    size_t points = alloc[0].size();
    for (const auto& a : alloc) points = std::min(points, a.size());
    nlohmann::json curve = nlohmann::json::array();
    for (size_t i = 0; i < points; ++i) {
      double m = 0;
      for (const auto& a : alloc) m += a[i];
      curve.push_back({{"arrived_pct", static_cast<int>(i + 1)}, {"allocated_pct", m / n}});
    }
    out[sim::PackingName(p)] = {{"seeds", f.seeds},
                                {"allocated_pct_at_100", at100 / n},
                                {"unallocated_gpus_at_100", un_sum / n},
                                {"unallocated_gpus_at_100_min", un_min},
                                {"unallocated_gpus_at_100_max", un_max},
                                {"cpu_us_per_placement", us / n},
                                {"curve", curve}};
  }
  if (f.output == "json") {
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << table.str();
  }
  return 0;
}

}  // namespace

Command AddSimInflationCommand(CLI::App* sim) {
  auto f = std::make_shared<InflationFlags>();
  auto* c = sim->add_subcommand(
      "inflation",
      "workload inflation on a node list and a pod list (Alibaba GPU-sharing trace format): tasks "
      "arrive and never end; GPU allocated vs arrived workload per packing");
  c->add_option("--nodes", f->nodes, "node list CSV (sn,cpu_milli,memory_mib,gpu,model)")
      ->required();
  c->add_option("--pods", f->pods,
                "pod list CSV (name,cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec])")
      ->required();
  c->add_option("--packing", f->packing, "comma-separated: bestfit, fgd, berth (default all)");
  c->add_option("--seed", f->seed, "first seed (default 42)");
  c->add_option("--seeds", f->seeds, "number of seeds, averaged (default 1)");
  c->add_option("--until", f->until, "stop at this multiple of GPU capacity requested (1.3)");
  c->add_option("--learn-window", f->learn_window,
                "berth: recent requests it learns the task population from (default 300)");
  c->add_option("-o,--output", f->output, "table or json")->check(CLI::IsMember({"table", "json"}));
  return {c, [f] { return RunInflationCmd(*f); }};
}

}  // namespace berth::cli
