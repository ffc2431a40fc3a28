// SpecReader walks a YAML (or JSON: YAML is a superset) document while keeping
// the field path, so every error names the field and the reason:
//   spec.resources.gpus: must be >= 0, got -1
// Unknown fields are errors too: Read* marks the keys it consumed and
// CheckNoUnknown reports the rest, with the closest known name as a hint.
#pragma once

#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/quantity.h"
#include "common/status.h"
#include "model/limits.h"

namespace berth::model {

class SpecReader {
 public:
  SpecReader(YAML::Node node, std::string path) : node_(std::move(node)), path_(std::move(path)) {}

  const std::string& path() const { return path_; }
  const YAML::Node& node() const { return node_; }
  bool IsMap() const { return node_.IsMap(); }
  bool Has(const std::string& key) const;

  // The child reader for `key` (marks it as known). Absent -> a Null node.
  SpecReader Child(const std::string& key);
  std::string ChildPath(const std::string& key) const;

  // Each returns the first error met; absent optional fields keep `out`.
  Status String(const std::string& key, std::string* out, bool required = false);
  Status Int(const std::string& key, int64_t* out, bool required = false);
  Status Bool(const std::string& key, bool* out);
  Status StringList(const std::string& key, std::vector<std::string>* out);
  // A map of strings, or a list of {name, value} as Kubernetes writes env.
  Status StringMap(const std::string& key, std::map<std::string, std::string>* out);
  // "2", 2, 0.5, "500m" -> milli units.
  Status Milli(const std::string& key, int64_t* out);
  // 512, "512Mi", "16Gi", "1Ti", "1G" -> MiB (a plain number means MiB).
  Status Memory(const std::string& key, MiB* out);
  // 90, "90s", "15m", "2h", "1d", "1h30m" -> milliseconds (a plain number means seconds).
  // At most kMaxDuration (model/limits.h), like every duration.
  Status Duration(const std::string& key, DurationMs* out);
  // A whole number of seconds (fields named ...Seconds) -> milliseconds, with
  // the same bound as Duration. allow_negative: a negative value is kept as -1
  // ("never", for ttlSecondsAfterFinished).
  Status Seconds(const std::string& key, DurationMs* out, bool allow_negative = false);

  // Errors for keys that no Read*/Child call consumed, naming the first one.
  Status CheckNoUnknown() const;

  Status Error(const std::string& key, const std::string& reason) const;

 private:
  YAML::Node node_;
  std::string path_;
  std::set<std::string> known_;
};

// Parses `text` as YAML or JSON into a root node; errors carry line and column.
// The bounds of model/limits.h are checked on the parser's events before any
// node is built: the size of the text, the nesting depth, the number of nodes
// with every alias expanded (a "billion laughs" is refused after a few
// thousand events), the number of aliases, and well-formed UTF-8 in every
// scalar (errors name the field path).
Result<YAML::Node> ParseDocument(const std::string& text);
// The same checks; the document may be empty (a Null node) or any kind of node.
// `what` starts the error messages ("document", a file name).
Result<YAML::Node> LoadYamlBounded(const std::string& text, const std::string& what = "document");

// A node of a document that ParseDocument bounded, as JSON (scalars as text).
nlohmann::json YamlToJson(const YAML::Node& node);

// An object name (a pipeline, its steps and parameters, an experiment):
// 1..63 letters, digits, '-' or '_'.
bool ValidName(const std::string& name);

// Stand-alone parsers shared with the CLI's flags.
Result<int64_t> ParseMilli(const std::string& s);
Result<MiB> ParseMemory(const std::string& s);
Result<DurationMs> ParseDuration(const std::string& s);

}  // namespace berth::model
