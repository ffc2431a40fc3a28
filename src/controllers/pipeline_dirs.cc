#include "controllers/pipeline_dirs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace berth::controllers {

Status MakeDirsBeneath(const std::string& root, const std::vector<std::string>& comps,
                       const std::optional<exec::TaskAccount>& owner) {
  int cur = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cur < 0) return IoError(root + ": " + std::strerror(errno));
  std::string path = root;
  Status result = Status::Ok();
  for (const auto& c : comps) {
    path += "/" + c;
    if (c.empty() || c == "." || c == ".." || c.find('/') != std::string::npos) {
      result = InvalidArgument(path + ": not a single directory name");
      break;
    }
    bool made = ::mkdirat(cur, c.c_str(), owner ? 0700 : 0755) == 0;
    if (!made && errno != EEXIST) {
      result = IoError(path + ": " + std::strerror(errno));
      break;
    }
    int next = ::openat(cur, c.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) {
      int e = errno;
      result = e == ELOOP || e == ENOTDIR
                   ? FailedPrecondition(path + ": not a directory (links are not followed)")
                   : IoError(path + ": " + std::strerror(e));
      break;
    }
    ::close(cur);
    cur = next;
    // Through the descriptor: the directory just made, whatever its name
    // points at by now.
    if (made && owner &&
        ::fchown(cur, static_cast<uid_t>(owner->uid), static_cast<gid_t>(owner->gid)) != 0) {
      result = IoError(path + ": chown to " + owner->name + ": " + std::strerror(errno));
      break;
    }
  }
  ::close(cur);
  return result;
}

}  // namespace berth::controllers
