// The pipeline controller's events: PipelineRun* for a run's life and
// PipelineStep* for each step transition, with messages that name the run.
#include <cctype>

#include "common/log.h"
#include "controllers/pipeline_controller.h"

namespace berth::controllers {

using nlohmann::json;
using store::NodeRecord;
using store::RunRecord;

store::NewEvent PipelineRunEvent(const std::string& type, const RunRecord& rec,
                                 const std::string& detail) {
  std::string verb = type.rfind("PipelineRun", 0) == 0 ? type.substr(11) : type;
  for (char& c : verb) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  store::NewEvent e;
  e.type = type;
  e.message = "pipeline run " + std::to_string(rec.id) + " (" + rec.name + ") " + verb;
  if (type == "PipelineRunCreated") e.message += " for " + (rec.user.empty() ? "?" : rec.user);
  if (!detail.empty()) e.message += ": " + detail;
  e.data = json{{"pipelineRun", rec.id},
                {"pipeline", rec.name},
                {"user", rec.user},
                {"state", model::ToString(rec.state)}};
  return e;
}

void PipelineController::Event(RunState& rs, const std::string& type, const std::string& detail) {
  rs.events.push_back(PipelineRunEvent(type, rs.rec, detail));
}

void PipelineController::AnnounceSteps(RunState& rs, const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    auto it = rs.rec.nodes.find(name);
    if (it == rs.rec.nodes.end()) continue;
    const NodeRecord& n = it->second;
    // New nodes wait silently; a node waiting again is a retry.
    if (n.state == model::StepState::kPending && n.attempts == 0) continue;
    const std::string state = model::ToString(n.state);
    std::string key = state + "/" + std::to_string(n.attempts) + "/" + std::to_string(n.job_id);
    std::string& last = rs.announced[name];
    if (last == key) continue;
    last = key;
    store::NewEvent e;
    e.type =
        "PipelineStep" + (n.state == model::StepState::kPending ? std::string("Retrying") : state);
    e.message = "pipeline run " + std::to_string(rs.rec.id) + " (" + rs.rec.name + "): step " +
                name + " " + state;
    if (n.job_id) e.message += " (job " + std::to_string(n.job_id) + ")";
    if (!n.message.empty()) e.message += ": " + n.message;
    e.data = {{"pipelineRun", rs.rec.id}, {"pipeline", rs.rec.name}, {"node", name},
              {"step", n.step},           {"state", state},          {"attempt", n.attempts}};
    if (n.job_id) e.data["jobId"] = n.job_id;
    if (n.exit_code) e.data["exitCode"] = *n.exit_code;
    if (!n.message.empty()) e.data["reason"] = n.message;
    rs.events.push_back(std::move(e));
  }
}

}  // namespace berth::controllers
