// Logging through spdlog. Binaries call InitLogging once; libraries log
// through the default logger with spdlog::info(...) etc.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace berth {

// level: "trace", "debug", "info", "warn", "error". file: empty for stderr.
void InitLogging(const std::string& level, const std::string& file = "");

}  // namespace berth
