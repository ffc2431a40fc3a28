// A task's output log on a file system: the one place that knows how the
// shim rotates it and how a reader turns the files back into one stream.
//
// The shim appends the task's stdout and stderr to output.log. When the file
// would pass its cap it is renamed to output.log.1 (dropping the older part)
// and a new output.log is started. Offsets are positions in the task's whole
// output since it began, so a reader following the log keeps its place
// across rotations; bytes rotated away are reported as a gap, never re-read.
//
// output.start holds the offset at which the current output.log begins, as
// "<offset> <state>" where state is "rotating" while a rotation is under way
// and "ok" otherwise (written atomically by rename). A reader that sees
// "rotating", or a different value after reading than before, reads again.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "exec/executor.h"

namespace berth::exec {

inline constexpr char kOutputStartFile[] = "output.start";

// The largest page one ReadTaskLog returns; callers page through more.
inline constexpr int64_t kMaxLogPage = 16LL << 20;

// Reads up to `limit` bytes of the output kept in run directory `dir`,
// starting at `offset` (see LogChunk). A directory without a log reads as
// an empty log. Errors only for unreadable files.
Result<LogChunk> ReadTaskLog(const std::string& dir, int64_t offset, int64_t limit);

// The writer's side of the protocol (berth-shim).
class TaskLogWriter {
 public:
  TaskLogWriter(std::string dir, int64_t cap);
  ~TaskLogWriter();
  TaskLogWriter(const TaskLogWriter&) = delete;
  TaskLogWriter& operator=(const TaskLogWriter&) = delete;

  // Opens output.log for appending (a restarted writer continues the stream
  // where output.start says the current file begins). False with errno set
  // when the file cannot be opened.
  bool Open();
  // Appends, rotating as needed. Write errors are dropped: the task's output
  // must never block or fail the task.
  void Write(const char* p, size_t n);

 private:
  void Rotate();
  void WriteStart(const char* state);

  std::string dir_;
  std::string path_;
  std::string old_path_;
  int64_t cap_;
  int fd_ = -1;
  int64_t size_ = 0;   // bytes in the current output.log
  int64_t start_ = 0;  // stream offset of the current output.log's first byte
};

}  // namespace berth::exec
