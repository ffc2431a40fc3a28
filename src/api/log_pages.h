// Paged log reads on the API: GET .../logs?offset=N&limit=M answers one page
// of the log as text/plain, with where it starts and ends in headers, so no
// request ever makes berthd hold a whole log in memory.
//   X-Berth-Log-Start  offset of the page's first byte (later than `offset`
//                      when older output was rotated away)
//   X-Berth-Log-Next   the offset to ask for next
//   X-Berth-Log-End    the log's length when it was read
#pragma once

#include <cstdint>

#include "common/status.h"
#include "exec/executor.h"

#include "http/message.h"

namespace berth::api {

inline constexpr int64_t kDefaultLogPage = 1LL << 20;

struct LogPage {
  int64_t offset = 0;
  int64_t limit = kDefaultLogPage;
};

// Reads ?offset= (>= 0, default 0) and ?limit= (1 to 16 MiB, default 1 MiB).
Result<LogPage> ParseLogPage(const http::Request& req);

// Moves the chunk's data into the reply (pages are up to 16 MiB).
void ReplyLogPage(http::Response& res, exec::LogChunk chunk);

}  // namespace berth::api
