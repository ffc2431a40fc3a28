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
  std::string workdir = job.spec.working_dir;
  for (const auto& p : step.output_parameters) {
    if (p.stdout) {
      out["parameters"][p.name] = TrimRight(stdout_text);
      continue;
    }
    std::string path = Resolve(workdir, p.path);
    std::string v = ReadSmall(path, &ok);
    if (!ok) return NotFound("outputs.parameters." + p.name + ": the step wrote no file " + path);
    out["parameters"][p.name] = TrimRight(v);
  }
  for (const auto& a : step.output_artifacts) {
    std::string src = Resolve(workdir, a.path);
    std::error_code ec;
    if (!fs::exists(src, ec))
      return NotFound("outputs.artifacts." + a.name + ": the step produced no " + src);
    std::string dst = rs.rec.artifact_dir + "/artifacts/" + n.name + "/" + a.name;
    fs::remove_all(dst, ec);
    fs::create_directories(fs::path(dst).parent_path(), ec);
    fs::copy(src, dst, fs::copy_options::recursive | fs::copy_options::overwrite_existing, ec);
    if (ec)
      return IoError("outputs.artifacts." + a.name + ": copy " + src + " to " + dst + ": " +
                     ec.message());
    out["artifacts"][a.name] = dst;
  }
  return Status::Ok();
}

}  // namespace berth::controllers
