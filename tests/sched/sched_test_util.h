// Builders shared by the scheduler tests: clusters, jobs and running jobs
// written in one line each, and helpers to read Decisions.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "sched/scheduler.h"

namespace berth::sched::testing {

// `nodes` nodes named n0, n1, ... with `gpus` healthy GPUs of 16 GiB each.
inline ClusterSnapshot MakeCluster(int nodes, int gpus, MiB gpu_memory = 16384) {
  ClusterSnapshot c;
  for (int n = 0; n < nodes; ++n) {
    NodeState ns;
    ns.name = "n" + std::to_string(n);
    for (int g = 0; g < gpus; ++g)
      ns.gpus.push_back({g, "GPU-" + std::to_string(n) + "-" + std::to_string(g), gpu_memory});
    c.nodes.push_back(std::move(ns));
  }
  return c;
}

// A job of `tasks` tasks, each with `milli_gpus` milli-GPU.
inline JobRequest MakeJob(JobId id, MilliGpu milli_gpus, int tasks = 1, TimeMs submit = 0,
                          std::string queue = "default") {
  JobRequest j;
  j.id = id;
  j.task.gpus = milli_gpus;
  j.tasks = tasks;
  j.submit_time = submit == 0 ? id : submit;
  j.queue = std::move(queue);
  return j;
}

inline RunningJob MakeRunning(JobRequest req, std::vector<TaskPlacement> placements,
                              TimeMs start = 0) {
  return RunningJob{std::move(req), std::move(placements), start};
}

inline const Bind* FindBind(const Decisions& d, JobId id) {
  for (const Bind& b : d.binds) {
    if (b.job == id) return &b;
  }
  return nullptr;
}

inline const Wait* FindWait(const Decisions& d, JobId id) {
  for (const Wait& w : d.waiting) {
    if (w.job == id) return &w;
  }
  return nullptr;
}

inline bool Preempted(const Decisions& d, JobId id) {
  return std::any_of(d.preemptions.begin(), d.preemptions.end(),
                     [&](const Preempt& p) { return p.job == id; });
}

inline const Resize* FindResize(const Decisions& d, JobId id) {
  for (const Resize& r : d.resizes) {
    if (r.job == id) return &r;
  }
  return nullptr;
}

// Distinct nodes used by placements.
inline int NodesUsed(const std::vector<TaskPlacement>& ps) {
  std::vector<std::string> names;
  for (const auto& p : ps) names.push_back(p.node);
  std::sort(names.begin(), names.end());
  return static_cast<int>(std::unique(names.begin(), names.end()) - names.begin());
}

inline int GpusUsed(const std::vector<TaskPlacement>& ps) {
  int n = 0;
  for (const auto& p : ps) n += static_cast<int>(p.gpus.size());
  return n;
}

}  // namespace berth::sched::testing
