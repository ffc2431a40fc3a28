// REST routes for experiments (experiment_routes.cc; docs/experiments.md):
//   POST   /api/v1/experiments                   {"spec": TEXT} -> the experiment (201)
//   POST   /api/v1/experiments/validate          {"spec": TEXT} -> {"valid": true} or the error
//   GET    /api/v1/experiments                   {"items": [...]} without trials
//   GET    /api/v1/experiments/{name}            with its trials (and each one's values per step)
//   GET    /api/v1/experiments/{name}/trials     {"items": [...]} by id
//   POST   /api/v1/experiments/{name}/stop       stops it and its running trials
//   POST   /api/v1/experiments/{name}/resume     {"maxTrialCount", "parallelTrialCount",
//                                                 "maxFailedTrialCount"} (each optional)
//   POST   /api/v1/experiments/{name}/counts     the same counts, on any experiment
//   DELETE /api/v1/experiments/{name}            (also POST .../{name}/delete)
//   POST   /api/v1/experiments/{name}/trials/{id}/metrics
//          {"step": N, "metrics": {"accuracy": 0.9}}: pushed values (the SDK's berth.report)
#pragma once

#include "common/clock.h"
#include "controllers/experiment_controller.h"
#include "http/router.h"
#include "store/store.h"

namespace berth::api {

// Creating and pushing metrics act for the caller (api/caller.h); stop,
// resume, counts and delete are for the experiment's owner or an admin, and
// each change is recorded as an Audit event.
void RegisterExperimentRoutes(http::Router& router, controllers::ExperimentController& exps,
                              store::Store& store, const Clock& clock);

}  // namespace berth::api
