// The pipeline controller's events: PipelineRun* for a run's life and
// PipelineStep* for each step transition, with messages that name the run.
#include <cctype>

#include "common/log.h"
#include "controllers/pipeline_controller.h"

namespace berth::controllers {

using nlohmann::json;
using store::NodeRecord;
using store::RunRecord;

void PipelineController::AnnounceSteps(RunState& rs, const std::vector<std::string>& names) {
  std::vector<store::Event> events;
  for (const std::string& name : names) {
    auto it = rs.rec.nodes.find(name);
    if (it == rs.rec.nodes.end()) continue;
    const NodeRecord& n = it->second;
    // New nodes wait silently; a node waiting again is a retry.
    if (n.state == "Pending" && n.attempts == 0) continue;
    std::string key = n.state + "/" + std::to_string(n.attempts) + "/" + std::to_string(n.job_id);
    std::string& last = rs.announced[name];
    if (last == key) continue;
    last = key;
    store::Event e;
    e.time = clock_.Now();
    e.type = "PipelineStep" + (n.state == "Pending" ? std::string("Retrying") : n.state);
    e.message = "pipeline run " + std::to_string(rs.rec.id) + " (" + rs.rec.name + "): step " +
                name + " " + n.state;
    if (n.job_id) e.message += " (job " + std::to_string(n.job_id) + ")";
    if (!n.message.empty()) e.message += ": " + n.message;
    e.data = {{"pipelineRun", rs.rec.id}, {"pipeline", rs.rec.name}, {"node", name},
              {"step", n.step},           {"state", n.state},       {"attempt", n.attempts}};
    if (n.job_id) e.data["jobId"] = n.job_id;
    if (n.exit_code) e.data["exitCode"] = *n.exit_code;
    if (!n.message.empty()) e.data["reason"] = n.message;
    events.push_back(std::move(e));
  }
  Status st = store_.AppendEvents(events);
  if (!st.ok()) spdlog::warn("pipelines: run {}: step events: {}", rs.rec.id, st.message());
}

void PipelineController::Event(const std::string& type, const RunRecord& rec,
                               const std::string& detail) {
  std::string verb = type.rfind("PipelineRun", 0) == 0 ? type.substr(11) : type;
  for (char& c : verb) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string message = "pipeline run " + std::to_string(rec.id) + " (" + rec.name + ") " + verb;
  if (type == "PipelineRunCreated") message += " for " + (rec.user.empty() ? "?" : rec.user);
  if (!detail.empty()) message += ": " + detail;
  Status st = store_.AppendEvent(type, 0, message, clock_.Now(),
                                 json{{"pipelineRun", rec.id},
                                      {"pipeline", rec.name},
                                      {"user", rec.user},
                                      {"state", rec.state}});
  if (!st.ok()) spdlog::warn("pipelines: event: {}", st.message());
}

}  // namespace berth::controllers
