// JSON renderings of pipeline runs and cron schedules for the API.
#include "controllers/pipeline_controller.h"

#include "common/log.h"
#include "controllers/pipeline_internal.h"

namespace berth::controllers {

using nlohmann::json;
using store::NodeRecord;
using store::RunRecord;
using namespace pipeline_internal;

json RunToJson(const RunRecord& run) {
  json j = {{"id", run.id},
            {"name", run.name},
            {"user", run.user},
            {"state", model::ToString(run.state)},
            {"created", FormatTime(run.created)},
            {"started", FormatTime(run.started)},
            {"ended", FormatTime(run.ended)},
            {"message", run.message},
            {"suspended", run.suspended},
            {"stopping", run.stopping},
            {"cron", run.cron},
            {"artifactDir", run.artifact_dir}};
  json params = json::object();
  for (const auto& [k, v] : run.parameters) {
    if (k == "@scheduledTime")
      j["scheduledTime"] = v;
    else
      params[k] = v;
  }
  j["parameters"] = params;
  auto spec = model::ParsePipelineSpec(run.spec);
  std::vector<std::string> order;
  std::map<std::string, std::vector<std::string>> deps;
  if (spec.ok()) {
    for (const auto& s : spec->steps) {
      order.push_back(s.name);
      deps[s.name] = s.dependencies;
      std::vector<const NodeRecord*> kids;
      for (const auto& [name, n] : run.nodes)
        if (n.step == s.name && n.index >= 0) kids.push_back(&n);
      std::sort(kids.begin(), kids.end(), [](auto* a, auto* b) { return a->index < b->index; });
      for (auto* k : kids) order.push_back(k->name);
    }
    if (run.nodes.count(kExitNode)) order.push_back(kExitNode);
  }
  for (const auto& [name, n] : run.nodes)
    if (std::find(order.begin(), order.end(), name) == order.end()) order.push_back(name);
  json nodes = json::array();
  for (const auto& name : order) {
    auto it = run.nodes.find(name);
    if (it == run.nodes.end()) continue;
    const NodeRecord& n = it->second;
    json o = n.outputs;
    o.erase("memoKey");
    o.erase("children");
    json nj = {{"name", n.name},
               {"step", n.step},
               {"state", model::ToString(n.state)},
               {"jobId", n.job_id},
               {"attempts", n.attempts},
               {"exitCode", n.exit_code ? json(*n.exit_code) : json(nullptr)},
               {"startTime", FormatTime(n.start_time)},
               {"endTime", FormatTime(n.end_time)},
               {"durationMs", n.end_time && n.start_time ? n.end_time - n.start_time : 0},
               {"gpus", n.gpus},
               {"message", n.message},
               {"cached", n.cached},
               {"outputs", o},
               {"dependencies", n.index >= 0 ? json::array() : json(deps[n.step])}};
    if (n.index >= 0) {
      nj["index"] = n.index;
      nj["item"] = n.item;
    }
    nodes.push_back(nj);
  }
  j["nodes"] = nodes;
  return j;
}

json CronToJson(const store::CronRecord& c, TimeMs next_fire) {
  json j = {{"name", c.name},
            {"suspended", c.suspended},
            {"lastScheduleTime", c.last_fired ? json(FormatTime(c.last_fired)) : json(nullptr)},
            {"nextScheduleTime", FormatTime(next_fire)},
            {"created", FormatTime(c.created)}};
  auto spec = model::ParseCronPipelineSpec(c.spec);
  if (spec.ok()) {
    j["schedule"] = spec->schedule;
    j["timezone"] = spec->timezone;
    j["concurrencyPolicy"] = model::ConcurrencyPolicyName(spec->concurrency);
    j["pipeline"] = spec->pipeline_spec.name;
  }
  return j;
}

}  // namespace berth::controllers
