// How every berth command finds berthd. One rule, first match wins:
//   1. --server URL (http://HOST:PORT, or unix:PATH for a socket)
//   2. $BERTH_SERVER
//   3. $BERTH_DATA_DIR: the record (berthd.addr) of the daemon using it
//   4. the system daemon's record in /run/berth
//   5. the per-user data directory's record ($XDG_DATA_HOME/berth or ~/.local/share/berth)
//   6. http://127.0.0.1:7420
// A record whose daemon no longer runs is an error (never a reason to try the
// next place), and so is $BERTH_DATA_DIR without a record: the user named
// that daemon. The Python SDK (python/berth/client.py) follows the same rule.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "common/daemon_record.h"
#include "common/status.h"

namespace berth::cli {

// What the rule looks at; FromEnvironment fills it from the process.
struct DiscoveryInputs {
  std::string server_flag;   // --server, "" if not given
  std::string env_server;    // $BERTH_SERVER
  std::string env_data_dir;  // $BERTH_DATA_DIR
  std::string system_run_dir = kSystemRunDir;
  std::string user_data_dir;  // UserDataDir()

  static DiscoveryInputs FromEnvironment(const std::string& server_flag);
};

struct DaemonTarget {
  std::string url;
  // Where the address came from, for messages: "--server", "BERTH_SERVER",
  // the record's path, or "the default address".
  std::string source;
  // Set when the address came from a record: the daemon's pid and data dir.
  std::optional<DaemonRecord> record;
};

// Applies the rule. Errors (kUnavailable) say which daemon was looked for and why it
// was not found: a stale record, $BERTH_DATA_DIR without a running daemon, an
// unreadable record.
// When the failure is a stale record, `stale_dir` (if given) is set to the
// directory holding it.
Result<DaemonTarget> FindDaemon(const DiscoveryInputs& in, std::string* stale_dir = nullptr);

// The record of the daemon using `dir`: an error when none runs there
// (no record, or a stale one).
Result<DaemonTarget> FindDaemonInDataDir(const std::string& dir, const std::string& why,
                                         std::string* stale_dir = nullptr);

// The root app's --server value ("" when not given).
std::string ServerFlag(const CLI::App& root);

// What a client connects to for `target`: the Unix socket in the daemon's
// data directory when its record names one that exists ("unix:PATH"; berthd
// then knows the caller from the kernel), else the record's or the given URL
// (TCP: a token in BERTH_TOKEN identifies the caller).
std::string ClientAddress(const DaemonTarget& target);

// The root app's --server and the environment through FindDaemon, then
// ClientAddress. On failure
// prints the error and exits with kExitNoServer: for commands that need a daemon.
std::string ServerUrlOrExit(const CLI::App& root);

}  // namespace berth::cli
