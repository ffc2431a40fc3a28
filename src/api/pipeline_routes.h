// REST routes for pipelines (pipeline_routes.cc):
//   POST /api/v1/pipelines/runs                {"spec": TEXT, "parameters": {k: v}}
//        -> the run, with "eventsAfter": every event of the run has a larger seq
//   GET  /api/v1/pipelines/runs?limit=N        newest first (without nodes)
//   GET  /api/v1/pipelines/runs/{id}           the run with its nodes (the DAG)
//   GET  /api/v1/pipelines/runs/{id}/logs?step=NODE   text
//   POST /api/v1/pipelines/runs/{id}/{cancel|suspend|resume|retry|resubmit}
//   POST /api/v1/pipelines/validate            {"spec": TEXT} -> {"valid": true} or the error
// and for cron schedules (cron_routes.cc):
//   POST /api/v1/cronpipelines                 {"spec": TEXT}
//   GET  /api/v1/cronpipelines[/{name}]
//   POST /api/v1/cronpipelines/{name}/{suspend|resume}
//   POST /api/v1/cronpipelines/{name}/backfill {"from": RFC3339|ms, "to": ...}
//   DELETE /api/v1/cronpipelines/{name}        (also POST .../{name}/delete)
#pragma once

#include "common/clock.h"
#include "controllers/pipeline_controller.h"
#include "http/router.h"

namespace berth::api {

// Requests that start work (runs, resubmits, schedules) act for the caller
// (api/caller.h), who owns what they make. Only the owner or an admin
// changes a run or schedule or reads a run's logs, parameters and outputs;
// everyone authenticated sees the runs' states. Changes are recorded in
// `store`'s event log with their actor (Audit events).
void RegisterPipelineRoutes(http::Router& router, controllers::PipelineController& pipelines,
                            store::Store& store, const Clock& clock);
void RegisterCronRoutes(http::Router& router, controllers::PipelineController& pipelines,
                        store::Store& store, const Clock& clock);

// The request body parsed as JSON, or InvalidArgument naming the body.
Result<nlohmann::json> JsonBody(const http::Request& req);

}  // namespace berth::api
