#include "api/log_pages.h"

#include <charconv>
#include <string>

#include "exec/task_log.h"

namespace berth::api {

namespace {

Result<int64_t> ParamInt(const http::Request& req, const char* name, int64_t dflt, int64_t lo,
                         int64_t hi) {
  if (!req.HasParam(name)) return dflt;
  const std::string v = req.Param(name);
  int64_t out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || p != v.data() + v.size() || out < lo || out > hi) {
    return InvalidArgument(std::string(name) + ": must be an integer from " + std::to_string(lo) +
                           " to " + std::to_string(hi) + ", got \"" + v.substr(0, 32) + "\"");
  }
  return out;
}

}  // namespace

Result<LogPage> ParseLogPage(const http::Request& req) {
  LogPage p;
  ASSIGN_OR_RETURN(p.offset, ParamInt(req, "offset", 0, 0, INT64_MAX / 2));
  ASSIGN_OR_RETURN(p.limit, ParamInt(req, "limit", kDefaultLogPage, 1, exec::kMaxLogPage));
  return p;
}

void ReplyLogPage(http::Response& res, exec::LogChunk chunk) {
  res.status = 200;
  res.headers.Set("X-Berth-Log-Start", std::to_string(chunk.start));
  res.headers.Set("X-Berth-Log-Next", std::to_string(chunk.next));
  res.headers.Set("X-Berth-Log-End", std::to_string(chunk.end));
  res.SetContent(std::move(chunk.data), "text/plain; charset=utf-8");
}

}  // namespace berth::api
