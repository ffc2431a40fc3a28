// The states of a pipeline run and of its nodes (steps, fan-out children and
// the exit handler). In JSON, the API, events and berth.db they are the
// names below ("Running", "Omitted", ...); ToString/Parse* convert at those
// boundaries.
#pragma once

#include <optional>
#include <string_view>

namespace berth::model {

// A run: Running until every node is done, then one of the others.
enum class RunState { kRunning, kSucceeded, kFailed, kCancelled };

// A node: Pending (waiting for dependencies, a free slot or a retry's
// backoff), Running (its job runs, or a fan-out group's children do), then
// Succeeded, Failed, Skipped (its `when` was false, or triggerRule one_failed
// found no failure), Omitted (an upstream step failed, so it never runs) or
// Cancelled (the run was stopped first).
enum class StepState { kPending, kRunning, kSucceeded, kFailed, kSkipped, kOmitted, kCancelled };

const char* ToString(RunState s);
const char* ToString(StepState s);
// Exact names as ToString writes them; nullopt for anything else.
std::optional<RunState> ParseRunState(std::string_view s);
std::optional<StepState> ParseStepState(std::string_view s);

// A state that no longer changes.
inline bool IsTerminal(RunState s) { return s != RunState::kRunning; }
inline bool IsTerminal(StepState s) { return s != StepState::kPending && s != StepState::kRunning; }
// Failed or Cancelled: what trigger rules count as an upstream failure.
inline bool IsFailure(StepState s) { return s == StepState::kFailed || s == StepState::kCancelled; }

}  // namespace berth::model
