// Decision speed of the scheduler core: 1,000 nodes x 8 GPUs and 100,000
// pending jobs of mixed sizes (quarter and half GPUs, 1, 2, 4 and 8 GPUs,
// and 16-GPU gangs of two 8-GPU tasks). The first cycle fills the empty
// cluster; then, each cycle, 5% of the running jobs end and as many new jobs
// arrive. Prints placements per second and cycle latency per policy, by wall
// time and by the thread's CPU time (steadier on a shared machine).
// Usage: berth_sched_bench [--policies a,b] [--cycles N] [--pending N] [--quiet-waits]
// [--per-cycle] [--classes]
// (--classes: jobs get priority classes, 30% scavenger, 60% batch, 10% interactive, and
// priorities 0 to 4, from a generator of their own, so the jobs are otherwise the same)
// (--per-cycle: one line per cycle with its latency, binds and preemptions, on stderr, and a
// digest of all decisions, with each wait's plugin and reason, to check that a speedup decides
// and explains exactly as before)
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <random>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "sched/scheduler.h"

using namespace berth;         // NOLINT
using namespace berth::sched;  // NOLINT

namespace {

JobRequest RandomJob(JobId id, TimeMs now, Rng& rng) {
  static const MilliGpu kSizes[] = {250, 500, 1000, 1000, 1000, 1000, 2000, 4000, 8000, 8000};
  JobRequest j;
  j.id = id;
  j.submit_time = now;
  j.queue = "q" + std::to_string(rng() % 8);
  int pick = static_cast<int>(rng() % 11);
  if (pick == 10) {
    j.task.gpus = 8000;
    j.tasks = 2;
  } else {
    j.task.gpus = kSizes[pick];
    if (j.task.gpus < 1000) j.task.gpu_memory = 4096;
  }
  j.expected_duration = static_cast<DurationMs>(60 + rng() % 36000) * kSecond;
  j.attained_service = (rng() % 4 == 0) ? static_cast<DurationMs>(rng() % 100000) * kSecond : 0;
  return j;
}

// CPU time of this thread: on a shared machine, wall time counts other
// processes' turns too.
double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

uint64_t Mix(uint64_t h, uint64_t v) { return (h ^ v) * 1099511628211ull; }

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(q * v.size()));
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> policies = Scheduler::Policies();
  int cycles = 30;
  int pending_target = 100000;
  bool explain = true;
  bool per_cycle = false;
  bool classes = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--policies" && i + 1 < argc) {
      policies.clear();
      std::stringstream ss(argv[++i]);
      std::string p;
      while (std::getline(ss, p, ',')) policies.push_back(p);
    } else if (a == "--cycles" && i + 1 < argc) {
      cycles = std::stoi(argv[++i]);
    } else if (a == "--pending" && i + 1 < argc) {
      pending_target = std::stoi(argv[++i]);
    } else if (a == "--quiet-waits") {
      explain = false;
    } else if (a == "--per-cycle") {
      per_cycle = true;
    } else if (a == "--classes") {
      classes = true;
    } else {
      std::fprintf(stderr, "unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  ClusterSnapshot cluster;
  for (int n = 0; n < 1000; ++n) {
    NodeState ns;
    ns.name = "node-" + std::to_string(n);
    for (int g = 0; g < 8; ++g) ns.gpus.push_back({g, "", 81920, {}, true, -1});
    cluster.nodes.push_back(std::move(ns));
  }
  std::printf("1000 nodes x 8 GPUs, %d pending jobs, %d cycles, wait reasons %s%s\n",
              pending_target, cycles, explain ? "on" : "off", classes ? ", priority classes" : "");
  std::printf(
      "| policy | first cycle (ms) | first-cycle placements | placements/s (all cycles) | p50 "
      "cycle (ms) | p99 cycle (ms) | placements/s by CPU time | p99 cycle CPU (ms) |\n");
  std::printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (const auto& name : policies) {
    auto s = Scheduler::Create({name, {}, 1});
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.status().ToString().c_str());
      return 1;
    }
    Rng rng(42);
    Rng class_rng(7);
    auto make_job = [&](JobId id, TimeMs now) {
      JobRequest j = RandomJob(id, now, rng);
      if (classes) {
        uint64_t c = class_rng() % 10;
        j.priority_class = c < 3   ? model::PriorityClass::kScavenger
                           : c < 9 ? model::PriorityClass::kBatch
                                   : model::PriorityClass::kInteractive;
        j.priority = static_cast<int64_t>(class_rng() % 5);
      }
      return j;
    };
    SchedulerInput in;
    in.cluster = &cluster;
    in.explain_waiting = explain;
    JobId next_id = 1;
    for (int i = 0; i < pending_target; ++i) in.pending.push_back(make_job(next_id++, 0));
    std::vector<double> latencies, cpu_latencies;
    double total_cpu_s = 0;
    int64_t placements = 0;
    double total_s = 0, first_ms = 0;
    int64_t first_placements = 0;
    uint64_t digest = 1469598103934665603ull;
    for (int c = 0; c < cycles; ++c) {
      in.now = c * kMinute;
      int64_t t0 = MonotonicNanos();
      double c0 = ThreadCpuSeconds();
      Decisions d = (*s)->Schedule(in);
      double secs = (MonotonicNanos() - t0) / 1e9;
      double cpu = ThreadCpuSeconds() - c0;
      cpu_latencies.push_back(cpu * 1000);
      total_cpu_s += cpu;
      latencies.push_back(secs * 1000);
      total_s += secs;
      placements += static_cast<int64_t>(d.binds.size());
      for (const Bind& b : d.binds) {
        digest = Mix(digest, static_cast<uint64_t>(b.job));
        for (const TaskPlacement& p : b.placements) {
          for (char ch : p.node) digest = Mix(digest, static_cast<uint64_t>(ch));
          for (int g : p.gpus) digest = Mix(digest, static_cast<uint64_t>(g));
          digest = Mix(digest, static_cast<uint64_t>(p.gpu_share));
        }
      }
      for (const Preempt& p : d.preemptions)
        digest = Mix(digest, static_cast<uint64_t>(p.job) << 1);
      for (const Resize& r : d.resizes)
        digest = Mix(digest, static_cast<uint64_t>(r.job) << 2 | r.placements.size());
      for (const auto& w : d.waiting) {
        digest = Mix(digest, static_cast<uint64_t>(w.job) << 3 | (w.never ? 1 : 0));
        if (!per_cycle) continue;
        // With --per-cycle the digest covers what each wait says, too.
        const std::string& plugin = w.plugin;
        const std::string& reason = w.reason;
        for (char ch : plugin) digest = Mix(digest, static_cast<uint64_t>(ch));
        for (char ch : reason) digest = Mix(digest, static_cast<uint64_t>(ch));
      }
      if (per_cycle) {
        std::fprintf(stderr,
                     "%s cycle %d: %.1f ms, %zu binds, %zu preemptions, %zu resizes, %zu waiting, "
                     "%zu running\n",
                     name.c_str(), c, secs * 1000, d.binds.size(), d.preemptions.size(),
                     d.resizes.size(), d.waiting.size(), in.running.size());
      }
      if (c == 0) {
        first_ms = secs * 1000;
        first_placements = static_cast<int64_t>(d.binds.size());
      }
      // Apply: binds start, preempted jobs go back to pending.
      std::unordered_map<JobId, size_t> where;
      for (size_t i = 0; i < in.pending.size(); ++i) where[in.pending[i].id] = i;
      std::vector<bool> gone(in.pending.size(), false);
      for (const Bind& b : d.binds) {
        size_t i = where[b.job];
        in.running.push_back({in.pending[i], b.placements, in.now});
        gone[i] = true;
      }
      std::vector<JobRequest> still;
      still.reserve(in.pending.size());
      for (size_t i = 0; i < in.pending.size(); ++i) {
        if (!gone[i]) still.push_back(std::move(in.pending[i]));
      }
      in.pending = std::move(still);
      for (const Preempt& p : d.preemptions) {
        for (size_t i = 0; i < in.running.size(); ++i) {
          if (in.running[i].request.id == p.job) {
            in.pending.push_back(in.running[i].request);
            in.running[i] = std::move(in.running.back());
            in.running.pop_back();
            break;
          }
        }
      }
      // 5% of running jobs end; new ones arrive to keep the queue full.
      std::shuffle(in.running.begin(), in.running.end(), rng);
      in.running.resize(in.running.size() * 95 / 100);
      for (auto& r : in.running)
        r.request.attained_service += kMinute * r.request.task.gpus / 1000 * r.request.tasks;
      while (static_cast<int>(in.pending.size()) < pending_target)
        in.pending.push_back(make_job(next_id++, in.now));
    }
    std::printf("| %s | %.1f | %lld | %.0f | %.1f | %.1f | %.0f | %.1f |\n", name.c_str(), first_ms,
                static_cast<long long>(first_placements), total_s > 0 ? placements / total_s : 0,
                Percentile(latencies, 0.5), Percentile(latencies, 0.99),
                total_cpu_s > 0 ? placements / total_cpu_s : 0, Percentile(cpu_latencies, 0.99));
    if (per_cycle)
      std::fprintf(stderr, "%s decisions digest %016llx\n", name.c_str(),
                   static_cast<unsigned long long>(digest));
    std::fflush(stdout);
  }
  return 0;
}
