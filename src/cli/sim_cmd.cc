// berth sim: placeholder until the simulator library is wired (see sim/).
#include "cli/commands.h"

namespace berth::cli {

std::vector<Command> AddSimCommands(CLI::App& app) { return {}; }

}  // namespace berth::cli
