// A pipeline step's files, handled by the task's supervisor as the task's
// owner, never by berthd: the step's input artifacts are copied into its
// working directory before the command runs, and after it succeeds its output
// parameters are read (size-capped) and its output artifacts copied into the
// run's artifact directory. berthd names only relative paths here (checked at
// submit time, model/pipeline.h); every one is opened beneath its directory
// (openat2 RESOLVE_BENEATH), no symbolic link is followed out of it, and the
// last component of a name is never a link that is followed.
//
// The plan travels from the pipeline controller to the executor in the step
// job's environment (kStepFilesEnv, JSON); the local executor moves it into
// spec.json and the shim reports what it collected in status.json
// (RunStatus::step_outputs), which berthd reads beneath its own run
// directory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace berth::exec {

inline constexpr char kStepFilesEnv[] = "BERTH_STEP_FILES";
// The most of one output parameter file kept.
inline constexpr int64_t kMaxStepParameterBytes = 256 * 1024;
// Artifact trees deeper than this are refused.
inline constexpr int kMaxArtifactDepth = 64;

struct StepFiles {
  // Artifact sources (inputs) and destinations (outputs) are beneath it.
  std::string artifact_root;
  // The step's working directory: input and output paths are beneath it.
  std::string work_dir;
  struct Input {
    std::string name;
    std::string from;  // relative to artifact_root
    std::string path;  // relative to work_dir
  };
  struct Parameter {
    std::string name;
    std::string path;  // relative to work_dir
  };
  struct Artifact {
    std::string name;
    std::string path;  // relative to work_dir
    std::string to;    // relative to artifact_root
  };
  std::vector<Input> inputs;
  std::vector<Parameter> parameters;
  std::vector<Artifact> artifacts;

  bool HasOutputs() const { return !parameters.empty() || !artifacts.empty(); }
};

std::string StepFilesToJson(const StepFiles& f);
// InvalidArgument if malformed or if a relative name is not one (see
// CheckRelativeName).
Result<StepFiles> ParseStepFiles(const std::string& text);

// OK if `name` is a relative path that stays beneath its directory: not
// empty, not absolute, no "." or ".." component, no empty component, no NUL.
// `field` names it in the error.
Status CheckRelativeName(const std::string& name, const std::string& field);

// Run as the task's owner, before the command: copies every input into the
// working directory (replacing what is there). The error names the field.
Status CopyStepInputs(const StepFiles& f);

// Run as the task's owner, after the command succeeded: the collected
// outputs as JSON text: {"parameters": {NAME: VALUE}, "artifacts": {NAME:
// ABSOLUTE PATH}} or {"error": "outputs.parameters.NAME: ..."}.
std::string CollectStepOutputs(const StepFiles& f);

}  // namespace berth::exec
