#include "exec/step_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "exec/run_files.h"
#include "model/pipeline.h"

namespace berth::exec {

using nlohmann::json;

namespace {

// Closes a descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
  }
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

std::string Errno(int e) {
  if (e == ELOOP) return "is a symbolic link; not followed";
  return std::strerror(e);
}

std::vector<std::string> Components(const std::string& rel) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= rel.size()) {
    size_t slash = rel.find('/', start);
    if (slash == std::string::npos) slash = rel.size();
    if (slash > start) out.push_back(rel.substr(start, slash - start));
    start = slash + 1;
  }
  return out;
}

// Opens the directory `comps` (all of them) beneath `base`, one component at
// a time, never following a link; missing ones are made when `create`.
Result<Fd> OpenDirBeneath(int base, const std::vector<std::string>& comps, size_t n, bool create,
                          const std::string& what) {
  Fd cur(::fcntl(base, F_DUPFD_CLOEXEC, 0));
  if (!cur.ok()) return IoError(what + ": " + std::strerror(errno));
  for (size_t i = 0; i < n; ++i) {
    const char* c = comps[i].c_str();
    int fd = ::openat(cur.get(), c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
      if (::mkdirat(cur.get(), c, 0755) != 0 && errno != EEXIST)
        return IoError(what + ": mkdir " + comps[i] + ": " + std::strerror(errno));
      fd = ::openat(cur.get(), c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) {
      int e = errno;
      if (e == ENOTDIR || e == ELOOP)
        return FailedPrecondition(what + ": " + comps[i] +
                                  " is not a directory (links are "
                                  "not followed)");
      return IoError(what + ": " + comps[i] + ": " + Errno(e));
    }
    cur = Fd(fd);
  }
  return cur;
}

Result<Fd> OpenRoot(const std::string& path, const std::string& what) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError(what + ": " + path + ": " + std::strerror(errno));
  return Fd(fd);
}

Status CopyFileAt(int src_dir, const std::string& src_name, int dst_dir,
                  const std::string& dst_name, mode_t mode) {
  Fd in(::openat(src_dir, src_name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!in.ok()) return IoError(src_name + ": " + Errno(errno));
  struct stat st;
  if (::fstat(in.get(), &st) != 0 || !S_ISREG(st.st_mode))
    return FailedPrecondition(src_name + ": not a regular file");
  Fd out(::openat(dst_dir, dst_name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  mode & 0777));
  if (!out.ok()) return IoError(dst_name + ": " + Errno(errno));
  char buf[64 * 1024];
  while (true) {
    ssize_t n = ::read(in.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoError(src_name + ": " + std::strerror(errno));
    if (n == 0) break;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = ::write(out.get(), buf + off, static_cast<size_t>(n - off));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return IoError(dst_name + ": " + std::strerror(errno));
      off += w;
    }
  }
  return Status::Ok();
}

// Copies src_dir/src_name to dst_dir/dst_name (which must not exist). A link
// at the top is refused; links inside a directory are copied as links, never
// followed; anything but files, directories and links inside is skipped.
Status CopyTreeAt(int src_dir, const std::string& src_name, int dst_dir,
                  const std::string& dst_name, int depth) {
  if (depth > kMaxArtifactDepth)
    return FailedPrecondition(src_name + ": nested deeper than " +
                              std::to_string(kMaxArtifactDepth) + " directories");
  struct stat st;
  if (::fstatat(src_dir, src_name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return NotFound(src_name + ": no such file or directory");
    return IoError(src_name + ": " + std::strerror(errno));
  }
  if (S_ISLNK(st.st_mode)) {
    if (depth == 0) return FailedPrecondition(src_name + ": is a symbolic link; not followed");
    std::string target(4096, '\0');
    ssize_t n = ::readlinkat(src_dir, src_name.c_str(), target.data(), target.size());
    if (n < 0) return IoError(src_name + ": " + std::strerror(errno));
    target.resize(static_cast<size_t>(n));
    if (::symlinkat(target.c_str(), dst_dir, dst_name.c_str()) != 0)
      return IoError(dst_name + ": " + std::strerror(errno));
    return Status::Ok();
  }
  if (S_ISREG(st.st_mode)) return CopyFileAt(src_dir, src_name, dst_dir, dst_name, st.st_mode);
  if (!S_ISDIR(st.st_mode)) {
    if (depth == 0) return FailedPrecondition(src_name + ": not a file or directory");
    return Status::Ok();
  }
  Fd from(::openat(src_dir, src_name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!from.ok()) return IoError(src_name + ": " + Errno(errno));
  if (::mkdirat(dst_dir, dst_name.c_str(), (st.st_mode & 0777) | 0700) != 0)
    return IoError(dst_name + ": " + std::strerror(errno));
  Fd to(::openat(dst_dir, dst_name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!to.ok()) return IoError(dst_name + ": " + Errno(errno));
  DIR* d = ::fdopendir(::fcntl(from.get(), F_DUPFD_CLOEXEC, 0));
  if (d == nullptr) return IoError(src_name + ": " + std::strerror(errno));
  Status first = Status::Ok();
  while (struct dirent* e = ::readdir(d)) {
    std::string child = e->d_name;
    if (child == "." || child == "..") continue;
    Status st2 = CopyTreeAt(from.get(), child, to.get(), child, depth + 1);
    if (!st2.ok()) {
      first = Status(st2.code(), src_name + "/" + st2.message());
      break;
    }
  }
  ::closedir(d);
  return first;
}

// Copies `src_rel` beneath src_root to `dst_rel` beneath dst_root, replacing
// what is there; the destination's parents are made.
Status CopyBeneath(int src_root, const std::string& src_rel, int dst_root,
                   const std::string& dst_rel, const std::string& field) {
  auto sc = Components(src_rel);
  auto dc = Components(dst_rel);
  if (sc.empty() || dc.empty()) return InvalidArgument(field + ": empty path");
  auto sdir = OpenDirBeneath(src_root, sc, sc.size() - 1, false, field);
  if (!sdir.ok()) return sdir.status();
  auto ddir = OpenDirBeneath(dst_root, dc, dc.size() - 1, true, field);
  if (!ddir.ok()) return ddir.status();
  Status rm = RemoveTreeAt(ddir->get(), dc.back());
  if (!rm.ok()) return Status(rm.code(), field + ": " + rm.message());
  Status st = CopyTreeAt(sdir->get(), sc.back(), ddir->get(), dc.back(), 0);
  if (!st.ok()) return Status(st.code(), field + ": " + st.message());
  return Status::Ok();
}

Result<std::string> ReadParameter(int root, const std::string& rel, const std::string& field) {
  auto comps = Components(rel);
  if (comps.empty()) return InvalidArgument(field + ": empty path");
  auto dir = OpenDirBeneath(root, comps, comps.size() - 1, false, field);
  if (!dir.ok()) return dir.status();
  Fd fd(::openat(dir->get(), comps.back().c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd.ok()) {
    if (errno == ENOENT) return NotFound(field + ": the step wrote no file " + rel);
    return IoError(field + ": " + rel + ": " + Errno(errno));
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
    return FailedPrecondition(field + ": " + rel + ": not a regular file");
  std::string out;
  char buf[16 * 1024];
  while (static_cast<int64_t>(out.size()) < kMaxStepParameterBytes) {
    size_t want =
        std::min(sizeof(buf), static_cast<size_t>(kMaxStepParameterBytes - (int64_t)out.size()));
    ssize_t n = ::read(fd.get(), buf, want);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoError(field + ": " + rel + ": " + std::strerror(errno));
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace

Status CheckRelativeName(const std::string& name, const std::string& field) {
  return model::CheckStepPath(name, field);
}

std::string StepFilesToJson(const StepFiles& f) {
  json j{{"artifactRoot", f.artifact_root}, {"workDir", f.work_dir}};
  j["inputs"] = json::array();
  for (const auto& i : f.inputs)
    j["inputs"].push_back({{"name", i.name}, {"from", i.from}, {"path", i.path}});
  j["parameters"] = json::array();
  for (const auto& p : f.parameters)
    j["parameters"].push_back({{"name", p.name}, {"path", p.path}});
  j["artifacts"] = json::array();
  for (const auto& a : f.artifacts)
    j["artifacts"].push_back({{"name", a.name}, {"path", a.path}, {"to", a.to}});
  return j.dump();
}

Result<StepFiles> ParseStepFiles(const std::string& text) {
  StepFiles f;
  try {
    json j = json::parse(text);
    f.artifact_root = j.at("artifactRoot").get<std::string>();
    f.work_dir = j.at("workDir").get<std::string>();
    for (const auto& i : j.value("inputs", json::array()))
      f.inputs.push_back({i.at("name").get<std::string>(), i.at("from").get<std::string>(),
                          i.at("path").get<std::string>()});
    for (const auto& p : j.value("parameters", json::array()))
      f.parameters.push_back({p.at("name").get<std::string>(), p.at("path").get<std::string>()});
    for (const auto& a : j.value("artifacts", json::array()))
      f.artifacts.push_back({a.at("name").get<std::string>(), a.at("path").get<std::string>(),
                             a.at("to").get<std::string>()});
  } catch (const std::exception& e) {
    return InvalidArgument(std::string(kStepFilesEnv) + ": " + e.what());
  }
  if (f.artifact_root.empty() || f.artifact_root[0] != '/' || f.work_dir.empty() ||
      f.work_dir[0] != '/')
    return InvalidArgument(std::string(kStepFilesEnv) +
                           ": artifactRoot and workDir must be absolute paths");
  for (const auto& i : f.inputs) {
    RETURN_IF_ERROR(CheckRelativeName(i.from, "inputs.artifacts." + i.name + ".from"));
    RETURN_IF_ERROR(CheckRelativeName(i.path, "inputs.artifacts." + i.name + ".path"));
  }
  for (const auto& p : f.parameters)
    RETURN_IF_ERROR(CheckRelativeName(p.path, "outputs.parameters." + p.name + ".valueFrom.path"));
  for (const auto& a : f.artifacts) {
    RETURN_IF_ERROR(CheckRelativeName(a.path, "outputs.artifacts." + a.name + ".path"));
    RETURN_IF_ERROR(CheckRelativeName(a.to, "outputs.artifacts." + a.name + ".to"));
  }
  return f;
}

Status CopyStepInputs(const StepFiles& f) {
  if (f.inputs.empty()) return Status::Ok();
  ASSIGN_OR_RETURN(Fd root, OpenRoot(f.artifact_root, "artifact root"));
  ASSIGN_OR_RETURN(Fd work, OpenRoot(f.work_dir, "workingDir"));
  for (const auto& i : f.inputs)
    RETURN_IF_ERROR(
        CopyBeneath(root.get(), i.from, work.get(), i.path, "inputs.artifacts." + i.name));
  return Status::Ok();
}

std::string CollectStepOutputs(const StepFiles& f) {
  json out{{"parameters", json::object()}, {"artifacts", json::object()}};
  auto fail = [](const Status& st) { return json{{"error", st.message()}}.dump(); };
  auto work = OpenRoot(f.work_dir, "workingDir");
  if (!work.ok()) return fail(work.status());
  for (const auto& p : f.parameters) {
    auto v = ReadParameter(work->get(), p.path, "outputs.parameters." + p.name);
    if (!v.ok()) return fail(v.status());
    out["parameters"][p.name] = *v;
  }
  if (!f.artifacts.empty()) {
    auto root = OpenRoot(f.artifact_root, "artifact root");
    if (!root.ok()) return fail(root.status());
    for (const auto& a : f.artifacts) {
      Status st =
          CopyBeneath(work->get(), a.path, root->get(), a.to, "outputs.artifacts." + a.name);
      if (!st.ok()) return fail(st);
      out["artifacts"][a.name] = JoinPath(f.artifact_root, a.to);
    }
  }
  // Parameter values are bytes a task wrote: replace bad UTF-8 rather than throw.
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace berth::exec
