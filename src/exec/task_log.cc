#include "exec/task_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "exec/run_files.h"

namespace berth::exec {

namespace {

struct StartMark {
  int64_t offset = 0;
  bool rotating = false;
};

// Reads output.start; a missing or malformed file means "no rotation yet".
StartMark ReadStart(const std::string& dir) {
  StartMark m;
  auto text = ReadWholeFile(JoinPath(dir, kOutputStartFile));
  if (!text.ok()) return m;
  const std::string& s = *text;
  size_t sp = s.find(' ');
  try {
    m.offset = std::stoll(s.substr(0, sp));
  } catch (const std::exception&) {
    m.offset = 0;
  }
  if (m.offset < 0) m.offset = 0;
  m.rotating = sp != std::string::npos && s.compare(sp + 1, 8, "rotating") == 0;
  return m;
}

// Reads [offset, offset+n) of an open file, appending to `out`; short at EOF.
Status ReadRange(int fd, const std::string& path, int64_t offset, int64_t n, std::string& out) {
  size_t base = out.size();
  out.resize(base + static_cast<size_t>(n));
  int64_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd, out.data() + base + got, static_cast<size_t>(n - got), offset + got);
    if (r < 0) {
      if (errno == EINTR) continue;
      out.resize(base);
      return IoError(path + ": " + std::strerror(errno));
    }
    if (r == 0) break;
    got += r;
  }
  out.resize(base + static_cast<size_t>(got));
  return Status::Ok();
}

struct OpenFile {
  int fd = -1;
  int64_t size = 0;
  ~OpenFile() {
    if (fd >= 0) ::close(fd);
  }
};

Status OpenForRead(const std::string& path, OpenFile& f) {
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (f.fd < 0) {
    if (errno == ENOENT) return Status::Ok();
    return IoError(path + ": " + std::strerror(errno));
  }
  struct stat st;
  if (::fstat(f.fd, &st) != 0) return IoError(path + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return FailedPrecondition(path + ": not a regular file");
  f.size = st.st_size;
  return Status::Ok();
}

Result<LogChunk> ReadOnce(const std::string& dir, int64_t offset, int64_t limit,
                          const StartMark& mark) {
  OpenFile cur, old;
  const std::string cur_path = JoinPath(dir, kOutputFile);
  const std::string old_path = JoinPath(dir, kOutputOldFile);
  RETURN_IF_ERROR(OpenForRead(cur_path, cur));
  if (mark.offset > 0) RETURN_IF_ERROR(OpenForRead(old_path, old));
  const int64_t s = mark.offset;
  const int64_t oldest = std::max<int64_t>(0, s - old.size);
  LogChunk c;
  c.end = s + cur.size;
  c.start = std::clamp(offset, oldest, c.end);
  int64_t pos = c.start;
  int64_t want = std::min(limit, c.end - pos);
  if (pos < s && want > 0) {  // the older part first
    int64_t n = std::min(want, s - pos);
    RETURN_IF_ERROR(ReadRange(old.fd, old_path, pos - (s - old.size), n, c.data));
    pos += n;
    want -= n;
  }
  if (want > 0 && cur.fd >= 0) {
    RETURN_IF_ERROR(ReadRange(cur.fd, cur_path, pos - s, want, c.data));
  }
  c.next = c.start + static_cast<int64_t>(c.data.size());
  return c;
}

}  // namespace

Result<LogChunk> ReadTaskLog(const std::string& dir, int64_t offset, int64_t limit) {
  if (offset < 0) return InvalidArgument("offset: must be >= 0, got " + std::to_string(offset));
  if (limit <= 0) return InvalidArgument("limit: must be > 0, got " + std::to_string(limit));
  limit = std::min(limit, kMaxLogPage);
  // A rotation takes microseconds and happens once per cap's worth of
  // output; a reader that meets one reads again. It never returns bytes from
  // a mix of before and after.
  for (int attempt = 0; attempt < 2000; ++attempt) {
    StartMark before = ReadStart(dir);
    if (!before.rotating) {
      auto chunk = ReadOnce(dir, offset, limit, before);
      if (!chunk.ok()) return chunk;
      StartMark after = ReadStart(dir);
      if (!after.rotating && after.offset == before.offset) return chunk;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(attempt < 10 ? 50 : 500));
  }
  return Unavailable(dir + ": the log kept rotating while it was read; try again");
}

TaskLogWriter::TaskLogWriter(std::string dir, int64_t cap)
    : dir_(std::move(dir)),
      path_(JoinPath(dir_, kOutputFile)),
      old_path_(JoinPath(dir_, kOutputOldFile)),
      cap_(std::max<int64_t>(cap, 1)) {}

TaskLogWriter::~TaskLogWriter() {
  if (fd_ >= 0) ::close(fd_);
}

bool TaskLogWriter::Open() {
  start_ = ReadStart(dir_).offset;
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd_ < 0) return false;
  struct stat st;
  size_ = (::fstat(fd_, &st) == 0) ? st.st_size : 0;
  return true;
}

void TaskLogWriter::Write(const char* p, size_t n) {
  while (n > 0 && fd_ >= 0) {
    if (size_ >= cap_) Rotate();
    if (fd_ < 0) return;
    size_t k = std::min<size_t>(n, static_cast<size_t>(cap_ - size_));
    size_t done = 0;
    while (done < k) {
      ssize_t w = ::write(fd_, p + done, k - done);
      if (w < 0) {
        if (errno == EINTR) continue;
        break;  // a full disk loses output, never the task
      }
      done += static_cast<size_t>(w);
    }
    size_ += static_cast<int64_t>(k);
    p += k;
    n -= k;
  }
}

void TaskLogWriter::WriteStart(const char* state) {
  (void)WriteFileAtomic(JoinPath(dir_, kOutputStartFile),
                        std::to_string(start_) + " " + state + "\n", /*sync=*/false);
}

void TaskLogWriter::Rotate() {
  WriteStart("rotating");
  ::close(fd_);
  fd_ = -1;
  ::rename(path_.c_str(), old_path_.c_str());
  start_ += size_;
  size_ = 0;
  fd_ =
      ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
  WriteStart("ok");
}

}  // namespace berth::exec
