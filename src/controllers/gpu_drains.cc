#include "controllers/gpu_drains.h"

namespace berth::controllers {

Status GpuDrains::Load() {
  ASSIGN_OR_RETURN(std::vector<store::DrainRecord> all, store::ListDrains(store_));
  std::lock_guard<std::mutex> l(mu_);
  drains_.clear();
  for (store::DrainRecord& d : all) drains_[{d.node, d.gpu}] = std::move(d);
  return Status::Ok();
}

Result<bool> GpuDrains::Drain(const std::string& node, int gpu, const std::string& reason,
                              const std::string& source, const std::string& actor, bool replace) {
  std::lock_guard<std::mutex> w(write_mu_);
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!replace && drains_.count({node, gpu})) return false;
  }
  store::DrainRecord d;
  d.node = node;
  d.gpu = gpu;
  d.reason = reason;
  d.source = source;
  d.actor = actor;
  d.time = clock_.Now();
  RETURN_IF_ERROR(store::PutDrain(store_, d, d.time));
  std::function<void(const std::string&, int, bool)> cb;
  {
    std::lock_guard<std::mutex> l(mu_);
    drains_[{node, gpu}] = d;
    cb = on_change_;
  }
  if (cb) cb(node, gpu, true);
  return true;
}

Status GpuDrains::Undrain(const std::string& node, int gpu, const std::string& actor) {
  std::lock_guard<std::mutex> w(write_mu_);
  std::vector<int> gpus;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [key, d] : drains_)
      if (key.first == node && (key.second == gpu || gpu < 0)) gpus.push_back(key.second);
  }
  if (gpus.empty())
    return NotFound((gpu < 0 ? "node " + node : "GPU " + std::to_string(gpu) + " on " + node) +
                    " is not drained");
  std::function<void(const std::string&, int, bool)> cb;
  for (int g : gpus) {
    RETURN_IF_ERROR(store::DeleteDrain(store_, node, g, actor, clock_.Now()));
    std::lock_guard<std::mutex> l(mu_);
    drains_.erase({node, g});
    cb = on_change_;
  }
  if (cb)
    for (int g : gpus) cb(node, g, false);
  return Status::Ok();
}

std::optional<store::DrainRecord> GpuDrains::Find(const std::string& node, int gpu) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = drains_.find({node, gpu});
  if (it == drains_.end()) it = drains_.find({node, -1});
  if (it == drains_.end()) return std::nullopt;
  return it->second;
}

std::vector<store::DrainRecord> GpuDrains::List() const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<store::DrainRecord> out;
  for (const auto& [key, d] : drains_) out.push_back(d);
  return out;
}

}  // namespace berth::controllers
