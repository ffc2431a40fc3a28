// The pipeline controller's step outputs: parameters, artifacts and the
// step's result collected when a step's job ends (later steps reference them
// through pipeline_engine::Lookup).
#include <filesystem>

#include "common/log.h"
#include "controllers/pipeline_controller.h"
#include "controllers/pipeline_internal.h"

namespace berth::controllers {

using nlohmann::json;
using store::NodeRecord;
using store::RunRecord;
using namespace pipeline_internal;
namespace fs = std::filesystem;

std::string PipelineController::ArtifactName(const RunState& rs, const NodeRecord& n,
                                             const std::string& artifact) {
  return "run-" + std::to_string(rs.rec.id) + "/artifacts/" + n.name + "/" + artifact;
}

Status PipelineController::CollectOutputs(RunState& rs, NodeRecord& n, const model::StepSpec& step,
                                          const model::Job& job) {
  bool ok = false;
  std::string stdout_text;
  if (jobs_.read_log && job.attempts > 0) {
    // The first kMaxOutput bytes the step printed (what is kept of them).
    auto page = jobs_.read_log(job, 0, kMaxOutput);
    if (page.ok()) stdout_text = std::move(page->data);
  }
  json& out = n.outputs;
  out["result"] = TrimRight(stdout_text);
  // Files are read by the step's supervisor as the step's owner; berthd
  // takes what it reported (exec/step_files.h).
  json files;
  bool any_files = !step.output_artifacts.empty();
  for (const auto& p : step.output_parameters) any_files = any_files || !p.stdout;
  if (any_files) {
    if (!jobs_.read_outputs) return Unavailable("outputs: this executor cannot collect step files");
    auto text = jobs_.read_outputs(job);
    if (!text.ok()) return NotFound("outputs: " + text.status().message());
    files = json::parse(*text, nullptr, false);
    if (!files.is_object()) return Internal("outputs: the step's supervisor sent no JSON object");
    if (files.contains("error") && files["error"].is_string())
      return NotFound(files["error"].get<std::string>());
  }
  for (const auto& p : step.output_parameters) {
    if (p.stdout) {
      out["parameters"][p.name] = TrimRight(stdout_text);
      continue;
    }
    const json* v = files.contains("parameters") && files["parameters"].is_object() &&
                            files["parameters"].contains(p.name)
                        ? &files["parameters"][p.name]
                        : nullptr;
    if (!v || !v->is_string())
      return NotFound("outputs.parameters." + p.name + ": the step wrote no file " + p.path);
    out["parameters"][p.name] = TrimRight(v->get<std::string>());
  }
  for (const auto& a : step.output_artifacts) {
    bool reported = files.contains("artifacts") && files["artifacts"].is_object() &&
                    files["artifacts"].contains(a.name);
    if (!reported)
      return NotFound("outputs.artifacts." + a.name + ": the step produced no " + a.path);
    out["artifacts"][a.name] = options_.artifact_root + "/" + ArtifactName(rs, n, a.name);
  }
  return Status::Ok();
}

}  // namespace berth::controllers
