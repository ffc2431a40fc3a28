#include "model/node.h"

namespace berth::model {

bool IsCanonicalGpuModel(const std::string& name) {
  if (name.empty() || name.size() > 32) return false;
  for (char c : name) {
    bool ok =
        (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string CanonicalGpuModel(const std::string& device_name) {
  if (IsCanonicalGpuModel(device_name)) return device_name;
  // Words (split at spaces and '-'), vendor and line names dropped.
  std::vector<std::string> words;
  std::string cur;
  for (char c : device_name + " ") {
    if (c == ' ' || c == '-' || c == '_') {
      if (!cur.empty()) words.push_back(cur);
      cur.clear();
    } else if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      cur += c;
    }
  }
  std::vector<std::string> kept;
  for (const std::string& w : words) {
    if (w == "NVIDIA" || w == "Tesla" || w == "GeForce" || w == "Quadro") continue;
    kept.push_back(w);
  }
  if (kept.empty()) return "";
  std::string family = kept[0];
  // "RTX 4090" -> RTX4090: a line name followed by its number.
  if ((family == "RTX" || family == "GTX" || family == "TITAN") && kept.size() > 1)
    family += kept[1];
  if (family == "V100") {
    for (const std::string& w : kept) {
      if (w == "32GB") return "V100M32";
    }
    return "V100M16";
  }
  return family.size() > 32 ? family.substr(0, 32) : family;
}

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
