// Defaults the CLI fills into a job document before it sends it, the way
// srun and sbatch do: a job without `spec.workingDir` runs in the directory
// berth was called from (so `berth run -- python3 train.py` finds train.py).
#pragma once

#include <string>

namespace berth::cli {

// The caller's working directory ("" if it cannot be read).
std::string CurrentDir();

// A Job or TrainingJob document (YAML or JSON) with spec.workingDir set to
// `dir` when it has none; returned as JSON. A document that does not parse,
// or is not a map with a `spec` map, is returned unchanged so that berthd
// reports the error with its usual field path. Pipelines are left alone.
std::string WithDefaultWorkingDir(const std::string& text, const std::string& dir);

}  // namespace berth::cli
