// Defaults the CLI fills into a job document before it sends it, the way
// srun and sbatch do: a job without `spec.workingDir` runs in the directory
// berth was called from (so `berth run -- python3 train.py` finds train.py),
// and a job without a name is named after its file.
#pragma once

#include <string>

namespace berth::cli {

// The caller's working directory ("" if it cannot be read).
std::string CurrentDir();

struct SpecDefaults {
  std::string cwd;       // spec.workingDir when the document has none
  std::string file_dir;  // a relative spec.workingDir is taken relative to this ("" : cwd)
  std::string name;      // metadata.name when the document has none ("": leave it to berthd)
};

// Defaults for a document read from `path` ("-": standard input): the current
// directory, the file's directory, and the file's stem as the name.
SpecDefaults DefaultsForFile(const std::string& path);

// A Job or TrainingJob document (YAML or JSON) with `d` applied: spec.workingDir
// set to d.cwd when it has none, a relative one made absolute against
// d.file_dir (or d.cwd), metadata.name set to d.name when it has none; the
// result is JSON. A document that does not parse, or is not a map with a
// `spec` map, or one past the bounds of model/limits.h (an alias bomb), is
// returned unchanged so that berthd reports the error with its usual field path. Pipelines are left
// alone.
std::string WithSpecDefaults(const std::string& text, const SpecDefaults& d);

}  // namespace berth::cli
