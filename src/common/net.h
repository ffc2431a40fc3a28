// Small networking helpers shared by the daemon and the controllers.
#pragma once

#include <string>

namespace berth {

// A TCP port that is free on `host` (an IPv4 address; "" or "0.0.0.0": any)
// now, picked by the kernel; 0 when none could be had. Another process may
// take it before the caller binds it: callers that hand it out keep their
// own record of what they handed out.
int FreeTcpPort(const std::string& host = "");

}  // namespace berth
