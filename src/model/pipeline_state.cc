#include "model/pipeline_state.h"

namespace berth::model {

const char* ToString(RunState s) {
  switch (s) {
    case RunState::kRunning:
      return "Running";
    case RunState::kSucceeded:
      return "Succeeded";
    case RunState::kFailed:
      return "Failed";
    case RunState::kCancelled:
      return "Cancelled";
  }
  return "Running";
}

const char* ToString(StepState s) {
  switch (s) {
    case StepState::kPending:
      return "Pending";
    case StepState::kRunning:
      return "Running";
    case StepState::kSucceeded:
      return "Succeeded";
    case StepState::kFailed:
      return "Failed";
    case StepState::kSkipped:
      return "Skipped";
    case StepState::kOmitted:
      return "Omitted";
    case StepState::kCancelled:
      return "Cancelled";
  }
  return "Pending";
}

std::optional<RunState> ParseRunState(std::string_view s) {
  for (RunState r :
       {RunState::kRunning, RunState::kSucceeded, RunState::kFailed, RunState::kCancelled})
    if (s == ToString(r)) return r;
  return std::nullopt;
}

std::optional<StepState> ParseStepState(std::string_view s) {
  for (StepState r :
       {StepState::kPending, StepState::kRunning, StepState::kSucceeded, StepState::kFailed,
        StepState::kSkipped, StepState::kOmitted, StepState::kCancelled})
    if (s == ToString(r)) return r;
  return std::nullopt;
}

}  // namespace berth::model
