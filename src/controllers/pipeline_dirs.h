// A pipeline run's directories, made by berthd beneath the artifact root
// without following any link: <artifact_root>/run-<id>/ and its work/ and
// artifacts/ (and work/<node>/ for a step's default working directory). When
// steps run as their owner's account, what berthd makes is given to that
// account; berthd never opens anything inside it again by a path: what the
// steps read and write there is done by their supervisor as the owner
// (exec/step_files.h).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "exec/executor.h"

namespace berth::controllers {

// Makes each missing directory of `comps` (single names: no '/', not "." or
// "..") beneath `root`, opening each with O_NOFOLLOW: one that is a link or
// not a directory is an error. A directory made here is given to `owner`
// (mode 0700) when set; ones already there are left as they are.
Status MakeDirsBeneath(const std::string& root, const std::vector<std::string>& comps,
                       const std::optional<exec::TaskAccount>& owner);

}  // namespace berth::controllers
