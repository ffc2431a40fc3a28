// The route groups ApiServer wires (one file per resource) and the small
// helpers they share. Internal to api/.
#pragma once

#include <string>

#include "api/server.h"
#include "http/router.h"

namespace berth::api {

void RegisterHealthRoutes(http::Router& r, const RouteContext& ctx);  // health_routes.cc
void RegisterJobRoutes(http::Router& r, const RouteContext& ctx);     // jobs_routes.cc
void RegisterJobLogRoutes(http::Router& r, const RouteContext& ctx);  // job_logs_routes.cc
void RegisterEventRoutes(http::Router& r, const RouteContext& ctx);   // events_routes.cc
void RegisterGpuRoutes(http::Router& r, const RouteContext& ctx);     // gpus_routes.cc
void RegisterAuthRoutes(http::Router& r, const RouteContext& ctx);    // auth_routes.cc

// A job id path segment: a positive integer, else InvalidArgument naming it.
Result<model::JobId> ParseJobId(const std::string& s);
// "1", "true" or "yes".
bool Truthy(const std::string& v);
// One server-sent event: optional id and event type, the data split into
// "data:" lines, and the blank line that ends it.
std::string SseEvent(const std::string& event, const std::string& data, int64_t id = 0);
// The headers of a server-sent event stream.
void StartEventStream(http::Response& res);

}  // namespace berth::api
