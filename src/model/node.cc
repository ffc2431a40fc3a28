#include "model/node.h"

namespace berth::model {

nlohmann::json ToJson(const GpuInfo& g) {
  return {{"index", g.index},
          {"uuid", g.uuid},
          {"model", g.model},
          {"memoryMiB", g.memory},
          {"nvlinkPeers", g.nvlink_peers},
          {"declared", g.declared}};
}

nlohmann::json ToJson(const NodeInfo& n) {
  nlohmann::json gpus = nlohmann::json::array();
  for (const auto& g : n.gpus) gpus.push_back(ToJson(g));
  return {{"name", n.name},
          {"address", n.address},
          {"gpus", gpus},
          {"cpu", FormatMilli(n.cpu)},
          {"memoryMiB", n.memory}};
}

}  // namespace berth::model
