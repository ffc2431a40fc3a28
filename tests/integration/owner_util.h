// For tests whose jobs belong to made-up owners ("alice", "anonymous") that
// are no accounts on the machine: a root berthd runs tasks as their owner
// (executor.runAsOwner: auto) and would refuse them, so these tests run
// every task as berthd's own user instead.
#pragma once

#include <string>
#include <vector>

#include "harness.h"

namespace berth::testing {

// berthd flags: `more`, then --config with executor.runAsOwner: false (the
// file is written into `dir`).
inline std::vector<std::string> OwnersAreNotAccounts(const TempDir& dir,
                                                     std::vector<std::string> more = {}) {
  std::string path = dir / "berthd-owners-not-accounts.yaml";
  WriteFile(path, "executor:\n  runAsOwner: \"false\"\n");
  more.insert(more.end(), {"--config", path});
  return more;
}

}  // namespace berth::testing
