// The bounds on what a user may write, in one place (docs/security.md,
// "Bounds"). Every spec parser checks them and names the field and the bound
// in its error, so a hostile or mistaken document is refused before it costs
// memory or time: an alias bomb, a deeply nested value, a million arguments.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace berth::model {

// Documents (YAML or JSON), counted before anything is built from them.
inline constexpr size_t kMaxDocumentBytes = 1 << 20;  // 1 MiB
inline constexpr int kMaxDepth = 64;                  // nested maps and lists
inline constexpr int64_t kMaxNodes = 200000;          // nodes, every alias expanded
inline constexpr int64_t kMaxAliases = 1000;          // *alias uses

// Names and strings.
inline constexpr size_t kMaxNameBytes = 253;  // metadata.name, user, queue, label keys
inline constexpr size_t kMaxLabels = 64;
inline constexpr size_t kMaxLabelValueBytes = 1024;
inline constexpr size_t kMaxPathBytes = 4096;  // workingDir, artifact and output paths
// A command: Linux's own limit on one argument is 128 KiB (MAX_ARG_STRLEN).
inline constexpr size_t kMaxArgs = 4096;
inline constexpr size_t kMaxArgBytes = 128 << 10;
inline constexpr size_t kMaxCommandBytes = 1 << 20;  // all arguments together
inline constexpr size_t kMaxEnvVars = 4096;
inline constexpr size_t kMaxEnvBytes = 1 << 20;  // all names and values together

// Pipelines.
inline constexpr size_t kMaxSteps = 1000;
inline constexpr size_t kMaxParameters = 1000;
inline constexpr size_t kMaxParameterBytes = 256 << 10;  // one parameter value
// A fan-out step's children (withItems / withParam): berthd's configurable
// cap (pipelines.maxFanOut) defaults to kDefaultMaxFanOut and may not exceed
// kMaxFanOut, which the parser enforces on its own.
inline constexpr int64_t kDefaultMaxFanOut = 10000;
inline constexpr int64_t kMaxFanOut = 100000;
inline constexpr int64_t kMaxRetries = 10000;  // retryStrategy.limit
inline constexpr double kMaxBackoffFactor = 1000;

// Training.
inline constexpr int64_t kMaxWorkers = 4096;
inline constexpr int64_t kMaxProcsPerWorker = 1024;
inline constexpr int64_t kMaxRestarts = 10000;  // backoffLimit, elasticPolicy.maxRestarts

// Durations: one rule for every duration field (timeLimit, timeouts, grace
// periods, deadlines, TTLs, backoffs, intervals): at most ten years, so that
// any time plus any duration, and any duration in nanoseconds, fits in 64 bits.
inline constexpr DurationMs kMaxDuration = 3650LL * 24 * kHour;
inline constexpr const char* kMaxDurationText = "3650d (10 years)";

// Checks of one value; InvalidArgument naming `field` and the bound.
// A name: at most kMaxNameBytes, well-formed UTF-8, no control characters.
Status CheckName(const std::string& value, const std::string& field);
// Any other string: at most `max_bytes`, well-formed UTF-8.
Status CheckText(const std::string& value, const std::string& field, size_t max_bytes);
// argv: at most kMaxArgs arguments of kMaxArgBytes, kMaxCommandBytes in all.
Status CheckCommand(const std::vector<std::string>& argv, const std::string& field);
// Environment: at most kMaxEnvVars variables, kMaxEnvBytes in all, names without '='.
Status CheckEnv(const std::map<std::string, std::string>& env, const std::string& field);
Status CheckLabels(const std::map<std::string, std::string>& labels, const std::string& field);
// A fan-out of `items` children against `cap` (berthd's pipelines.maxFanOut).
Status CheckFanOut(int64_t items, int64_t cap, const std::string& field);
// A duration in milliseconds: 0..kMaxDuration.
Status CheckDuration(DurationMs d, const std::string& field);

}  // namespace berth::model
