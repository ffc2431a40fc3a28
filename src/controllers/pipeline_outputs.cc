// The pipeline controller's step outputs: parameters and the step's result
// collected when a step's job ends, and the lookup that resolves references
// to them in later steps.
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

std::function<std::optional<std::string>(const std::string&)> PipelineController::Lookup(
    const RunState& rs, const NodeRecord& self) {
  return [&rs, &self](const std::string& ref) -> std::optional<std::string> {
    std::vector<std::string> p;
    std::stringstream ss(ref);
    for (std::string x; std::getline(ss, x, '.');) p.push_back(x);
    if (p.empty()) return std::nullopt;
    if (p[0] == "item") {
      json item;
      try {
        item = json::parse(self.item);
      } catch (...) {
        return std::nullopt;
      }
      if (p.size() == 1) return item.is_string() ? item.get<std::string>() : item.dump();
      if (p.size() == 2 && item.is_object() && item.contains(p[1]))
        return item[p[1]].is_string() ? item[p[1]].get<std::string>() : item[p[1]].dump();
      return std::nullopt;
    }
    if (p[0] == "inputs" && p.size() == 3) {
      auto it = rs.rec.parameters.find(p[2]);
      if (it == rs.rec.parameters.end()) return std::nullopt;
      return it->second;
    }
    if (p[0] == "pipeline" && p.size() == 2) {
      if (p[1] == "name") return rs.rec.name;
      if (p[1] == "runId") return std::to_string(rs.rec.id);
      if (p[1] == "status") {
        if (rs.rec.stopping == "cancel") return std::string("Cancelled");
        for (const auto& [name, n] : rs.rec.nodes)
          if (name != kExitNode && (n.state == "Failed" || n.state == "Omitted"))
            return std::string("Failed");
        return std::string(rs.rec.stopping == "timeout" ? "Failed" : "Succeeded");
      }
      return std::nullopt;
    }
    if (p[0] == "steps" && p.size() >= 3) {
      auto it = rs.rec.nodes.find(p[1]);
      if (it == rs.rec.nodes.end()) return std::nullopt;
      const NodeRecord& n = it->second;
      if (p.size() == 3 && p[2] == "status") return n.state;
      if (p.size() == 3 && p[2] == "exitCode")
        return n.exit_code ? std::to_string(*n.exit_code) : "";
      if (p.size() == 4 && p[3] == "result" && n.outputs.contains("result")) {
        const json& v = n.outputs["result"];
        return v.is_string() ? v.get<std::string>() : v.dump();
      }
      if (p.size() == 5 && n.outputs.contains(p[3]) && n.outputs[p[3]].contains(p[4])) {
        const json& v = n.outputs[p[3]][p[4]];
        return v.is_string() ? v.get<std::string>() : v.dump();
      }
    }
    return std::nullopt;
  };
}

}  // namespace berth::controllers
