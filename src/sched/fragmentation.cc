#include "sched/fragmentation.h"

namespace berth::sched {

namespace {

bool ModelOk(const FragNode& node, const FragTask& task) {
  if (task.models == 0) return true;
  return node.model >= 0 && node.model < 64 && (task.models >> node.model & 1) != 0;
}

}  // namespace

bool FragFits(const FragNode& node, const FragTask& task) {
  if (task.cpu > node.cpu_free || task.memory > node.mem_free) return false;
  if (task.gpus == 0) return true;
  if (!ModelOk(node, task)) return false;
  int room = 0;
  for (MilliGpu f : node.free) room += f >= task.milli ? 1 : 0;
  return room >= task.gpus;
}

int64_t Fragmentation(const FragNode& node, std::span<const WeightedTask> population) {
  MilliGpu total = 0;
  for (MilliGpu f : node.free) total += f;
  if (total == 0) return 0;
  int64_t frag = 0;
  for (const WeightedTask& w : population) {
    const FragTask& t = w.task;
    if (t.gpus == 0 || !FragFits(node, t)) {
      frag += w.weight * total;  // nothing free here is of use to this shape
      continue;
    }
    MilliGpu unusable = 0;
    for (MilliGpu f : node.free) unusable += f < t.milli ? f : 0;
    frag += w.weight * unusable;
  }
  return frag;
}

std::vector<int> WholeGpus(const FragNode& node, int count) {
  std::vector<int> out;
  for (int g = 0; g < static_cast<int>(node.free.size()) && static_cast<int>(out.size()) < count;
       ++g) {
    if (node.free[g] >= kWholeGpu) out.push_back(g);
  }
  return out;
}

void TaskPopulation::Add(const FragTask& task) {
  recent_.push_back(task);
  ++counts_[task];
  if (recent_.size() > window_) {
    auto it = counts_.find(recent_.front());
    if (--it->second == 0) counts_.erase(it);
    recent_.pop_front();
  }
  dirty_ = true;
  ++version_;
}

std::span<const WeightedTask> TaskPopulation::Get() {
  if (dirty_) {
    flat_.clear();
    for (const auto& [t, n] : counts_) flat_.push_back({t, n});
    dirty_ = false;
  }
  return flat_;
}

}  // namespace berth::sched
