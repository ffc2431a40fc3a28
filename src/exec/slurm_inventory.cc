// The inventory of a Slurm partition, read with sinfo (slurm_executor.h).
#include <spdlog/spdlog.h>

#include <functional>
#include <mutex>

#include "exec/slurm_executor.h"

namespace berth::exec {

namespace {

class SlurmInventory final : public gpu::Inventory {
 public:
  SlurmInventory(SlurmInventoryOptions o, Clock& clock, std::vector<SlurmNode> first)
      : o_(std::move(o)), tools_(o_.tools), clock_(clock) {
    Store(first);
    read_at_ = clock_.Now();
  }

  std::string Describe() const override {
    std::lock_guard<std::mutex> l(mu_);
    int gpus = 0;
    for (const auto& n : nodes_) gpus += static_cast<int>(n.gpus.size());
    return "slurm: " + std::to_string(nodes_.size()) + " usable nodes, " + std::to_string(gpus) +
           " GPUs" + (o_.tools.partition.empty() ? "" : " in partition " + o_.tools.partition) +
           (skipped_.empty() ? "" : " (not offered: " + skipped_ + ")");
  }

  std::vector<model::NodeInfo> Nodes() const override {
    std::unique_lock<std::mutex> l(mu_);
    if (clock_.Now() - read_at_ >= o_.refresh && !reading_) {
      reading_ = true;
      l.unlock();
      auto nodes = tools_.Nodes();
      l.lock();
      reading_ = false;
      read_at_ = clock_.Now();
      if (nodes.ok()) {
        if (failing_) spdlog::info("slurm: sinfo answers again");
        failing_ = false;
        Store(*nodes);
      } else if (!failing_) {
        failing_ = true;
        spdlog::warn("slurm: cannot read the nodes, keeping the last list: {}",
                     nodes.status().message());
      }
    }
    return nodes_;
  }

 private:
  // Caller holds mu_ (or is the constructor).
  void Store(const std::vector<SlurmNode>& nodes) const {
    std::vector<model::NodeInfo> out;
    std::string skipped;
    for (const SlurmNode& s : nodes) {
      if (!s.usable) {
        skipped += (skipped.empty() ? "" : ", ") + s.name + " " + s.state;
        continue;
      }
      model::NodeInfo n;
      n.name = s.name;
      n.address = s.address;
      n.cpu = s.cpu;
      n.memory = s.memory;
      for (int i = 0; i < s.gpus; ++i) {
        model::GpuInfo g;
        g.index = i;
        g.uuid = "SLURM-" + s.name + "-" + std::to_string(i);
        g.model = s.gpu_type.empty() ? o_.gpu_model : s.gpu_type;
        g.memory = o_.gpu_memory;
        g.declared = true;  // no driver readings through Slurm
        n.gpus.push_back(std::move(g));
      }
      out.push_back(std::move(n));
    }
    if (skipped != skipped_ && !skipped.empty())
      spdlog::info("slurm: nodes not offered: {}", skipped);
    skipped_ = skipped;
    nodes_ = std::move(out);
  }

  SlurmInventoryOptions o_;
  SlurmTools tools_;
  Clock& clock_;
  mutable std::mutex mu_;
  mutable std::vector<model::NodeInfo> nodes_;
  mutable std::string skipped_;
  mutable TimeMs read_at_ = 0;
  mutable bool reading_ = false;
  mutable bool failing_ = false;
};

}  // namespace

Result<std::unique_ptr<gpu::Inventory>> MakeSlurmInventory(const SlurmInventoryOptions& options,
                                                           Clock& clock) {
  if (options.refresh < 100) return InvalidArgument("executor.slurm.nodeRefresh: at least 100ms");
  SlurmTools tools(options.tools);
  auto nodes = tools.Nodes();
  if (!nodes.ok()) return Unavailable("slurm: " + nodes.status().message());
  return std::unique_ptr<gpu::Inventory>(
      std::make_unique<SlurmInventory>(options, clock, std::move(*nodes)));
}

}  // namespace berth::exec
