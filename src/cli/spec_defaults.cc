#include "cli/spec_defaults.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <climits>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "model/spec_reader.h"

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

// Whether every key of every map under `n` is a scalar (JSON can say nothing else).
bool ScalarKeys(const YAML::Node& n) {
  if (n.IsMap()) {
    for (const auto& kv : n)
      if (!kv.first.IsScalar() || !ScalarKeys(kv.second)) return false;
  } else if (n.IsSequence()) {
    for (const auto& x : n)
      if (!ScalarKeys(x)) return false;
  }
  return true;
}

}  // namespace

std::string CurrentDir() {
  char buf[PATH_MAX];
  return ::getcwd(buf, sizeof(buf)) ? std::string(buf) : std::string();
}

SpecDefaults DefaultsForFile(const std::string& path) {
  SpecDefaults d;
  d.cwd = CurrentDir();
  if (path == "-" || path.empty()) return d;
  std::filesystem::path p(path);
  if (p.is_relative() && !d.cwd.empty()) p = std::filesystem::path(d.cwd) / p;
  d.file_dir = p.lexically_normal().parent_path().string();
  d.name = p.stem().string();
  return d;
}

std::string WithSpecDefaults(const std::string& text, const SpecDefaults& d) {
  // Bounded like berthd's own parser: an alias bomb is refused here before
  // anything expands it, and berthd says what is wrong with the text.
  auto loaded = model::LoadYamlBounded(text);
  if (!loaded.ok()) return text;
  const YAML::Node doc = *loaded;
  if (!doc.IsMap()) return text;
  const YAML::Node kind = doc["kind"];
  if (kind && kind.IsScalar() && kind.Scalar() != "Job" && kind.Scalar() != "TrainingJob")
    return text;
  const YAML::Node spec = doc["spec"];
  if (!spec || !spec.IsMap() || !ScalarKeys(doc)) return text;  // let berthd say what is wrong
  nlohmann::json out = ToJson(doc);
  bool changed = false;

  const YAML::Node wd = spec["workingDir"];
  if (!wd && !d.cwd.empty()) {
    out["spec"]["workingDir"] = d.cwd;
    changed = true;
  } else if (wd && wd.IsScalar() && !wd.Scalar().empty() && wd.Scalar()[0] != '/') {
    const std::string& base = d.file_dir.empty() ? d.cwd : d.file_dir;
    if (!base.empty()) {
      std::string abs = (std::filesystem::path(base) / wd.Scalar()).lexically_normal().string();
      if (abs.size() > 1 && abs.back() == '/') abs.pop_back();
      out["spec"]["workingDir"] = abs;
      changed = true;
    }
  }

  const YAML::Node meta = doc["metadata"];
  bool has_name = meta && meta.IsMap() && meta["name"] && !meta["name"].IsNull() &&
                  !(meta["name"].IsScalar() && meta["name"].Scalar().empty());
  if (!d.name.empty() && !has_name && (!meta || meta.IsNull() || meta.IsMap())) {
    if (!out["metadata"].is_object()) out["metadata"] = nlohmann::json::object();
    out["metadata"]["name"] = d.name;
    changed = true;
  }
  return changed ? out.dump() : text;
}

}  // namespace berth::cli
