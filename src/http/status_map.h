// The one mapping from a Status to an HTTP status code, used by every
// route (api/, auth/) so that the same error always answers the same way.
#pragma once

#include "common/status.h"

namespace berth::http {

// 200 Ok, 400 InvalidArgument, 401 Unauthenticated, 403 PermissionDenied,
// 404 NotFound, 409 AlreadyExists/FailedPrecondition, 422 Unschedulable,
// 503 Unavailable, else 500.
int HttpStatusFor(const Status& st);

}  // namespace berth::http
