#include "model/request.h"

#include "model/limits.h"

namespace berth::model {
namespace {

using nlohmann::json;

// Thrown from the parser's callback at the first value nested too deep.
struct TooDeep {};

}  // namespace

Result<json> ParseJsonBody(const std::string& body, const std::string& what) {
  if (body.size() > kMaxDocumentBytes + (64 << 10))
    return InvalidArgument(what + ": is " + std::to_string(body.size()) + " bytes, the most is " +
                           std::to_string((kMaxDocumentBytes >> 10) + 64) + " KiB");
  json::parser_callback_t depth_check = [](int depth, json::parse_event_t event, json&) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth >= kMaxDepth)
      throw TooDeep{};
    return true;
  };
  try {
    return json::parse(body, depth_check);
  } catch (const TooDeep&) {
    return InvalidArgument(what + ": nests deeper than " + std::to_string(kMaxDepth) + " levels");
  } catch (const json::exception& e) {
    return InvalidArgument(what + ": not JSON: " + e.what());
  }
}

Result<PipelineRunRequest> ParsePipelineRunRequest(const std::string& body) {
  ASSIGN_OR_RETURN(json j, ParseJsonBody(body));
  if (!j.is_object()) return InvalidArgument("request body: must be a JSON object");
  PipelineRunRequest req;
  if (!j.contains("spec") || !j["spec"].is_string())
    return InvalidArgument("spec: is required (the Pipeline document as text)");
  req.spec = j["spec"].get<std::string>();
  if (j.contains("parameters") && !j["parameters"].is_null()) {
    const json& p = j["parameters"];
    if (!p.is_object()) return InvalidArgument("parameters: must be a map of names to values");
    if (p.size() > kMaxParameters)
      return InvalidArgument("parameters: " + std::to_string(p.size()) + " given, the most is " +
                             std::to_string(kMaxParameters));
    for (auto it = p.begin(); it != p.end(); ++it) {
      std::string v = it.value().is_string() ? it.value().get<std::string>() : it.value().dump();
      RETURN_IF_ERROR(CheckText(v, "parameters." + it.key(), kMaxParameterBytes));
      req.parameters[it.key()] = std::move(v);
    }
  }
  if (j.contains("user")) {
    if (!j["user"].is_string()) return InvalidArgument("user: must be a string");
    req.user = j["user"].get<std::string>();
    RETURN_IF_ERROR(CheckName(*req.user, "user"));
  }
  return req;
}

}  // namespace berth::model
