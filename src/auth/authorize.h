// Who may do what, once a request has a Principal (authenticator.h).
//
// Everyone authenticated sees every job's state (as squeue does); only an
// admin or the owner changes a job, run, experiment or notebook or reads
// its logs, artifacts and parameters; a viewer submits and changes nothing.
// Per-user and per-queue limits are a pure check on numbers the caller
// gathers. Refusals are PermissionDenied (limits: FailedPrecondition) with a
// message that says who may do it or which limit was hit.
#pragma once

#include <string>

#include "auth/auth_config.h"
#include "auth/principal.h"
#include "common/quantity.h"
#include "common/status.h"

namespace berth::auth {

enum class Action {
  kRead,      // state: jobs, runs, events, GPUs, queues
  kSubmit,    // make new work: a job, a run, an experiment, a notebook, a token
  kChange,    // cancel, suspend, resume, retry, delete, resize what `owner` owns
  kReadData,  // logs, artifacts, parameters, metrics of what `owner` owns
  kAdmin,     // users' roles, everyone's tokens, configuration
};

const char* ActionName(Action a);

// OK or PermissionDenied. `owner` is the user who owns the object (ignored
// for kRead, kSubmit and kAdmin); `what` names it for the message ("job 12").
Status Authorize(const Principal& p, Action action, const std::string& owner = "",
                 const std::string& what = "");

// What is in use now.
struct Usage {
  MilliGpu gpus = 0;         // held by running (and scheduled) jobs
  int64_t pending_jobs = 0;  // waiting
};

struct LimitRequest {
  MilliGpu gpus = 0;  // what the job asks for
  // kSubmit: the job is about to be queued (pending count + 1; its size
  // alone within the GPU limit). kStart: it is about to be given GPUs (held +
  // its request within the GPU limit).
  enum Phase { kSubmit, kStart } phase = kSubmit;
};

// OK or FailedPrecondition naming the limit, its configuration key, the
// usage and the request. A kStart refusal means "wait", not "never".
Status CheckLimits(const std::string& user, const std::string& queue, const Usage& user_usage,
                   const Usage& queue_usage, const LimitRequest& request,
                   const LimitsConfig& limits);

}  // namespace berth::auth
