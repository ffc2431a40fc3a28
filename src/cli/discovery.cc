#include "cli/discovery.h"

#include <sys/stat.h>

#include <cstdlib>
#include <iostream>

#include "cli/commands.h"
#include "cli/unix_http.h"

namespace berth::cli {
namespace {

constexpr const char* kDefaultUrl = "http://127.0.0.1:7420";

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

Status StaleRecord(const std::string& path, const DaemonRecord& r) {
  return Unavailable("the berthd recorded in " + path + " (pid " + std::to_string(r.pid) + ", " +
                     r.url +
                     ") is not running (it did not stop cleanly); `berth up` starts a new one, "
                     "`berth down` clears the stale record");
}

// The record in `dir`, if any: nullopt when there is none, an error when it
// is unreadable or names a daemon that is gone.
Result<std::optional<DaemonTarget>> FromRecord(const std::string& dir, std::string* stale_dir) {
  std::string path = dir + "/" + kDaemonRecordName;
  auto rec = ReadDaemonRecord(dir);
  if (!rec.ok()) return Unavailable(rec.status().message());
  if (!*rec) return std::optional<DaemonTarget>();
  if (!DaemonRecordLive(**rec)) {
    if (stale_dir) *stale_dir = dir;
    return StaleRecord(path, **rec);
  }
  return std::optional<DaemonTarget>(DaemonTarget{(*rec)->url, path, **rec});
}

}  // namespace

DiscoveryInputs DiscoveryInputs::FromEnvironment(const std::string& server_flag) {
  DiscoveryInputs in;
  in.server_flag = server_flag;
  in.env_server = Env("BERTH_SERVER");
  in.env_data_dir = Env("BERTH_DATA_DIR");
  in.user_data_dir = UserDataDir();
  return in;
}

Result<DaemonTarget> FindDaemonInDataDir(const std::string& dir, const std::string& why,
                                         std::string* stale_dir) {
  ASSIGN_OR_RETURN(auto found, FromRecord(dir, stale_dir));
  if (!found)
    return Unavailable("no berthd is running for " + dir + " (" + why + "): " + dir + "/" +
                       kDaemonRecordName + " does not exist; start one with `berth up`");
  return *found;
}

Result<DaemonTarget> FindDaemon(const DiscoveryInputs& in, std::string* stale_dir) {
  if (!in.server_flag.empty()) return DaemonTarget{in.server_flag, "--server", std::nullopt};
  if (!in.env_server.empty()) return DaemonTarget{in.env_server, "BERTH_SERVER", std::nullopt};
  if (!in.env_data_dir.empty())
    return FindDaemonInDataDir(in.env_data_dir, "BERTH_DATA_DIR", stale_dir);
  for (const std::string& dir : {in.system_run_dir, in.user_data_dir}) {
    if (dir.empty()) continue;
    ASSIGN_OR_RETURN(auto found, FromRecord(dir, stale_dir));
    if (found) return *found;
  }
  return DaemonTarget{kDefaultUrl, "the default address", std::nullopt};
}

std::string ServerFlag(const CLI::App& root) {
  const CLI::Option* opt = root.get_option_no_throw("--server");
  return opt && opt->count() ? opt->as<std::string>() : "";
}

std::string ClientAddress(const DaemonTarget& target) {
  if (!target.record || target.record->data_dir.empty()) return target.url;
  std::string sock = target.record->data_dir + "/" + kDaemonSocketName;
  struct stat st {};
  if (::stat(sock.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) return kUnixScheme + sock;
  return target.url;
}

std::string ServerUrlOrExit(const CLI::App& root) {
  auto target = FindDaemon(DiscoveryInputs::FromEnvironment(ServerFlag(root)));
  if (!target.ok()) {
    std::cerr << "berth: error: " << target.status().message() << "\n";
    std::exit(kExitNoServer);
  }
  return ClientAddress(*target);
}

}  // namespace berth::cli
