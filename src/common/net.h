// Small networking helpers shared by the daemon and the controllers.
#pragma once

#include <string>

#include "common/status.h"

namespace berth {

// A TCP port that is free on `host` (an IPv4 address; "" or "0.0.0.0": any)
// now, picked by the kernel; 0 when none could be had. Another process may
// take it before the caller binds it: callers that hand it out keep their
// own record of what they handed out.
int FreeTcpPort(const std::string& host = "");

// Parses "HOST:PORT", ":PORT" (loopback: 127.0.0.1; every interface must be
// asked for by name, "0.0.0.0:PORT" or "[::]:PORT") or "PORT" (host
// unchanged) into *host and *port; an error names the value.
Status ParseListen(const std::string& listen, std::string* host, int* port);

// Whether `host` names only this machine: 127.0.0.0/8, ::1 or "localhost".
bool IsLoopbackHost(const std::string& host);

// Why a listening socket cannot be bound on host:port now ("Address already
// in use", ...), found by trying; empty when it can be.
std::string BindError(const std::string& host, int port);

}  // namespace berth
