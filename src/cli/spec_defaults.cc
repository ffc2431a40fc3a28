#include "cli/spec_defaults.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <climits>
#include <nlohmann/json.hpp>

namespace berth::cli {
namespace {

// YAML to JSON for berthd's parser, which reads JSON as YAML: scalars become
// strings (the parser converts them per field), null stays null.
nlohmann::json ToJson(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json o = nlohmann::json::object();
      for (const auto& kv : n) o[kv.first.Scalar()] = ToJson(kv.second);
      return o;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& x : n) a.push_back(ToJson(x));
      return a;
    }
    case YAML::NodeType::Scalar:
      return n.Scalar();
    default:
      return nullptr;
  }
}

}  // namespace

std::string CurrentDir() {
  char buf[PATH_MAX];
  return ::getcwd(buf, sizeof(buf)) ? std::string(buf) : std::string();
}

std::string WithDefaultWorkingDir(const std::string& text, const std::string& dir) {
  if (dir.empty()) return text;
  YAML::Node doc;
  try {
    doc = YAML::Load(text);
  } catch (const YAML::Exception&) {
    return text;
  }
  if (!doc.IsMap()) return text;
  const YAML::Node kind = doc["kind"];
  if (kind && kind.IsScalar() && kind.Scalar() != "Job" && kind.Scalar() != "TrainingJob") return text;
  const YAML::Node spec = doc["spec"];
  if (!spec || !spec.IsMap() || spec["workingDir"]) return text;
  for (const auto& kv : doc)
    if (!kv.first.IsScalar()) return text;  // let berthd say what is wrong
  nlohmann::json out = ToJson(doc);
  out["spec"]["workingDir"] = dir;
  return out.dump();
}

}  // namespace berth::cli
