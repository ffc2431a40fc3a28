// Who a request acts for: the one place routes learn their caller.
//
// ApiServer authenticates every request before routing it (except the
// public ones, auth::IsPublic) through auth::Authenticator: the Unix
// socket's SO_PEERCRED uid, a bearer token (a user's, a service's or a
// job's), or a browser session with its CSRF header. The result, an
// auth::Principal, rides on the request (http::Request::context). No header
// a client writes names the user; a document's or body's `user` field may
// only repeat the caller's name.
#pragma once

#include <string>

#include "auth/authorize.h"
#include "auth/principal.h"
#include "common/clock.h"
#include "common/status.h"
#include "model/job.h"
#include "store/store.h"

#include "http/message.h"

namespace berth::api {

// The authenticated caller of `req`; a principal with no name and the
// viewer role when the request was not authenticated (a public route),
// which every owner check refuses.
const auth::Principal& Caller(const http::Request& req);

// The user `req` acts for: the caller's user name. Unauthenticated when the
// request carries no principal.
Result<std::string> RequestUser(const http::Request& req);

// auth::Authorize for the caller of `req`.
Status AuthorizeRequest(const http::Request& req, auth::Action action,
                        const std::string& owner = "", const std::string& what = "");

// A document or body field that names a user (metadata.user, "user") must be
// empty or the caller: nobody submits work as someone else (a service
// account acts for a user with the X-Berth-Act-As header instead).
Status CheckClaimedUser(const std::string& claimed, const std::string& caller,
                        const std::string& field);

// Records a change in the event log (type "Audit") with who made it:
// data {action, actor, user (whose authority), owner (of the object), via}.
// `berth events --actor NAME` finds them. Failures are logged, not returned:
// the change itself is already made.
void RecordAudit(store::Store& store, const Clock& clock, const http::Request& req,
                 const std::string& action, model::JobId job, const std::string& owner,
                 const std::string& what);

}  // namespace berth::api
