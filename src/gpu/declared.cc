#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <string>

#include "gpu/inventory.h"

namespace berth::gpu {
namespace {

class DeclaredInventory final : public Inventory {
 public:
  explicit DeclaredInventory(const DeclaredOptions& o) {
    node_.name = o.node_name.empty() ? HostName() : o.node_name;
    node_.address = "127.0.0.1";
    node_.cpu = o.cpu > 0 ? o.cpu : HostCpu();
    node_.memory = o.memory > 0 ? o.memory : HostMemory();
    for (int i = 0; i < o.gpus; ++i) {
      model::GpuInfo g;
      g.index = i;
      g.model = o.model;
      g.memory = o.memory_per_gpu;
      g.declared = true;
      // A stable, UUID-shaped name derived from the node and index.
      size_t h = std::hash<std::string>{}(node_.name + "/" + std::to_string(i));
      char buf[64];
      std::snprintf(buf, sizeof(buf), "GPU-5eed%04x-%04x-%04x-%04x-%012zx", i & 0xffff,
                    static_cast<unsigned>(h & 0xffff), static_cast<unsigned>((h >> 16) & 0xffff),
                    static_cast<unsigned>((h >> 32) & 0xffff),
                    static_cast<size_t>((h >> 8) & 0xffffffffffffULL));
      g.uuid = buf;
      node_.gpus.push_back(g);
    }
    describe_ = "declared: " + std::to_string(o.gpus) + " simulated GPU(s) on " + node_.name;
  }
  std::string Describe() const override { return describe_; }
  std::vector<model::NodeInfo> Nodes() const override { return {node_}; }

 private:
  model::NodeInfo node_;
  std::string describe_;
};

}  // namespace

Result<std::vector<GpuSample>> Inventory::Sample() {
  std::vector<GpuSample> out;
  for (const auto& n : Nodes()) {
    for (const auto& g : n.gpus) {
      GpuSample s;
      s.node = n.name;
      s.index = g.index;
      s.uuid = g.uuid;
      s.model = g.model;
      s.memory_total = g.memory;
      out.push_back(std::move(s));
    }
  }
  return out;
}

std::unique_ptr<Inventory> MakeDeclaredInventory(const DeclaredOptions& options) {
  return std::make_unique<DeclaredInventory>(options);
}

MilliCpu HostCpu() {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return (n > 0 ? n : 1) * kWholeCpu;
}

MiB HostMemory() {
  long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || size <= 0) return 0;
  return static_cast<MiB>(static_cast<long long>(pages) * size / (1024 * 1024));
}

std::string HostName() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "localhost";
  return buf;
}

}  // namespace berth::gpu
