// Where berthd keeps its state and how it tells clients its address: the
// pieces that both the daemon (which writes them) and the CLI (which reads
// them) need.
//
// The record is a small text file, `berthd.addr`, one `key=value` per line:
//
//   url=http://127.0.0.1:7420
//   pid=12345
//   dataDir=/home/ada/.local/share/berth
//
// berthd writes it atomically into its data directory once its API listens
// and removes it when it stops cleanly. A root daemon whose data directory is
// the system one (kSystemDataDir) writes the same file into kSystemRunDir too.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "common/status.h"

namespace berth {

// The system daemon's data directory and the directory of its run-time files.
inline constexpr const char* kSystemDataDir = "/var/lib/berth";
inline constexpr const char* kSystemRunDir = "/run/berth";
// The record's file name (in a data directory or in kSystemRunDir).
inline constexpr const char* kDaemonRecordName = "berthd.addr";
// The data directory's lock file, held (flock) by its running daemon.
inline constexpr const char* kDaemonLockName = "berthd.lock";
// The Unix socket berthd serves the API on, in its data directory.
inline constexpr const char* kDaemonSocketName = "berthd.sock";

// The per-user data directory: $XDG_DATA_HOME/berth, else ~/.local/share/berth.
std::string UserDataDir();

// berthd's data directory when neither --data-dir nor its config names one:
// $BERTH_DATA_DIR, else UserDataDir().
std::string DefaultDataDir();

struct DaemonRecord {
  std::string url;       // http://HOST:PORT the API answers on
  pid_t pid = 0;         // the daemon's process id
  std::string data_dir;  // its data directory (absolute)
};

// Writes `record` to DIR/berthd.addr atomically (a temporary file renamed
// over it), so a reader sees the old record or the new one, never half.
Status WriteDaemonRecord(const std::string& dir, const DaemonRecord& record);

// Reads DIR/berthd.addr: nullopt when there is none, an error naming the file
// when it cannot be read or is malformed.
Result<std::optional<DaemonRecord>> ReadDaemonRecord(const std::string& dir);

// Removes DIR/berthd.addr if it still names `pid` (another daemon may have
// replaced it since). Errors are ignored: this runs on the way out.
void RemoveDaemonRecord(const std::string& dir, pid_t pid);

// Whether the daemon a record names still runs: its process exists and, where
// its data directory's lock file can be opened, someone holds that lock (so a
// pid reused by an unrelated process does not count).
bool DaemonRecordLive(const DaemonRecord& record);

}  // namespace berth
