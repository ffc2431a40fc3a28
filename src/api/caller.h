// Who a request acts for: the one place berthd decides a request's user.
//
// Until authentication exists (tokens over TCP; on the Unix socket the
// kernel's credentials, which http::Request::peer already carries: uid, gid
// and pid from SO_PEERCRED), the clients tell: X-Berth-User carries the OS account of the process
// that asks (the berth CLI and the Python SDK send it on every request), and
// X-Berth-Job the job it runs inside when it is a task (BERTH_JOB_ID). Work
// started from inside a task acts for that job's owner, so a pipeline step
// that submits more work, a training worker or a later tuning trial records
// the same user as its parent. A request with neither header acts as
// "anonymous".
#pragma once

#include <string>

#include "common/status.h"
#include "store/store.h"

#include "http/message.h"

namespace berth::api {

inline constexpr char kAnonymousUser[] = "anonymous";

// The user `req` acts for. InvalidArgument naming the header when one is
// malformed (a user name must be 1 to 64 of [A-Za-z0-9._@$-], not starting
// with '-') or X-Berth-Job names no job.
Result<std::string> RequestUser(const http::Request& req, const store::Store& store);

// A document or body field that names a user (metadata.user, "user") must be
// empty or the caller: nobody submits work as someone else.
Status CheckClaimedUser(const std::string& claimed, const std::string& caller,
                        const std::string& field);

}  // namespace berth::api
