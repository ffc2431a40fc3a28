// The JSON bodies of API requests, parsed with the bounds of model/limits.h,
// so that the API layer needs no server to be tested (or fuzzed) on them:
// the size, the nesting depth (a deeply nested value would otherwise reach
// nlohmann::json's recursive dump() and overflow the stack) and well-formed
// UTF-8 (nlohmann's parser refuses anything else). Errors are InvalidArgument
// naming the field, for a 400.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>

#include "common/status.h"

namespace berth::model {

// Parses a request body; `what` starts the error messages ("request body").
Result<nlohmann::json> ParseJsonBody(const std::string& body,
                                     const std::string& what = "request body");

// POST /api/v1/pipelines/runs: {"spec": "<Pipeline document>", "parameters":
// {name: value}, "user": "..."}. A parameter given as a number, list or map
// is passed on as its JSON text.
struct PipelineRunRequest {
  std::string spec;
  std::map<std::string, std::string> parameters;
  std::optional<std::string> user;
};
Result<PipelineRunRequest> ParsePipelineRunRequest(const std::string& body);

}  // namespace berth::model
