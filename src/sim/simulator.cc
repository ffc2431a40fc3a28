#include "sim/simulator.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <queue>
#include <set>

#include "common/log.h"
#include "controllers/job_controller.h"
#include "gpu/inventory.h"
#include "sched/scheduler.h"
#include "sim/sim_executor.h"
#include "store/store.h"

namespace berth::sim {

namespace {

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(q * v.size()));
  rank = std::clamp<size_t>(rank, 1, v.size());
  return v[rank - 1];
}

}  // namespace

Result<std::pair<int, int>> ParseClusterShape(const std::string& text) {
  auto x = text.find('x');
  if (x == std::string::npos)
    return InvalidArgument("--cluster: expected NODESxGPUS like 64x8, got \"" + text + "\"");
  try {
    size_t u1 = 0, u2 = 0;
    int nodes = std::stoi(text.substr(0, x), &u1);
    int gpus = std::stoi(text.substr(x + 1), &u2);
    if (u1 != x || u2 != text.size() - x - 1 || nodes < 1 || gpus < 1 || gpus > 64)
      throw std::out_of_range("");
    return std::make_pair(nodes, gpus);
  } catch (const std::exception&) {
    return InvalidArgument("--cluster: expected NODESxGPUS with both >= 1 (GPUs <= 64), got \"" +
                           text + "\"");
  }
}

Result<std::pair<TimeMs, TimeMs>> ParseWindow(const std::string& text) {
  auto colon = text.find(':');
  if (colon == std::string::npos)
    return InvalidArgument("--window: expected FROM:TO, got \"" + text + "\"");
  auto side = [&](const std::string& s, TimeMs* out) -> bool {
    if (s.empty()) {
      *out = -1;
      return true;
    }
    int64_t unit = kSecond;
    std::string num = s;
    switch (s.back()) {
      case 's':
        unit = kSecond;
        num.pop_back();
        break;
      case 'm':
        unit = kMinute;
        num.pop_back();
        break;
      case 'h':
        unit = kHour;
        num.pop_back();
        break;
      case 'd':
        unit = 24 * kHour;
        num.pop_back();
        break;
      default:
        break;
    }
    try {
      size_t used = 0;
      double v = std::stod(num, &used);
      if (used != num.size() || v < 0) return false;
      *out = static_cast<TimeMs>(std::llround(v * unit));
      return true;
    } catch (const std::exception&) {
      return false;
    }
  };
  TimeMs from = -1, to = -1;
  if (!side(text.substr(0, colon), &from) || !side(text.substr(colon + 1), &to)) {
    return InvalidArgument(
        "--window: FROM and TO must be seconds with an optional unit s|m|h|d, got \"" + text +
        "\"");
  }
  if (from >= 0 && to >= 0 && to <= from)
    return InvalidArgument("--window: TO must be after FROM in \"" + text + "\"");
  return std::make_pair(from, to);
}

namespace {

// The simulated cluster as the daemon's inventory: NODES nodes "n0", "n1", ...
// of GPUS declared GPUs each (80 GiB, no NVLink, CPU and memory not scheduled).
class SimInventory final : public gpu::Inventory {
 public:
  SimInventory(int nodes, int gpus) {
    for (int n = 0; n < nodes; ++n) {
      model::NodeInfo node;
      node.name = "n" + std::to_string(n);
      for (int g = 0; g < gpus; ++g) {
        model::GpuInfo gi;
        gi.index = g;
        gi.memory = 81920;
        gi.declared = true;
        node.gpus.push_back(gi);
      }
      nodes_.push_back(std::move(node));
    }
  }
  std::string Describe() const override { return "simulated cluster"; }
  std::vector<model::NodeInfo> Nodes() const override { return nodes_; }

 private:
  std::vector<model::NodeInfo> nodes_;
};

// The trace's clock starts here (the controller reads time 0 as "none").
constexpr TimeMs kEpoch = 1'000'000'000'000;

// A trace job as the daemon would be given it: a plain job of one GPU, or a
// TrainingJob whose G one-GPU workers are one gang.
model::JobSpec SpecFor(const TraceJob& t) {
  model::JobSpec spec;
  spec.name = t.name;
  spec.user = "sim";
  spec.queue = t.queue;
  spec.command = {"sim-task"};
  spec.resources.gpus = kWholeGpu;
  if (t.gpus > 1) {
    model::TrainingSpec tr;
    tr.workers = t.gpus;
    spec.training = tr;
  }
  return spec;
}

}  // namespace

Result<SimReport> RunSimulation(const SimOptions& options) {
  int64_t wall_start = MonotonicNanos();
  Trace loaded;
  const Trace* trace = nullptr;
  if (options.trace) {
    trace = &*options.trace;
  } else {
    if (options.trace_path.empty()) return InvalidArgument("--trace: no trace given");
    ASSIGN_OR_RETURN(loaded, LoadTrace(options.trace_path));
    trace = &loaded;
  }
  if (options.nodes < 1 || options.gpus_per_node < 1)
    return InvalidArgument("--cluster: needs at least 1x1");
  if (options.restart_penalty < 0) return InvalidArgument("restart_penalty: must be >= 0");
  if (options.stop_time < 0) return InvalidArgument("stop_time: must be >= 0");
  if (options.spread_slowdown < 1.0) return InvalidArgument("spread_slowdown: must be >= 1");
  if (options.tick <= 0) return InvalidArgument("tick: must be > 0");

  std::vector<const TraceJob*> jobs;
  for (const TraceJob& j : trace->jobs) {
    if (options.window_from >= 0 && j.submit < options.window_from) continue;
    if (options.window_to >= 0 && j.submit >= options.window_to) continue;
    jobs.push_back(&j);
  }

  sched::SchedulerConfig config;
  config.policy = options.policy;
  config.options = options.policy_options;
  config.seed = options.seed;
  // static partitions the cluster by each queue's share of the trace's
  // GPU-time unless shares are given (Philly's virtual clusters had quotas we
  // do not know).
  if (options.policy == "static") {
    bool has_share = false;
    for (const auto& [k, v] : config.options) has_share = has_share || k.rfind("queue.", 0) == 0;
    if (!has_share) {
      std::map<std::string, double> demand;
      double total = 0;
      for (const TraceJob* j : jobs) {
        double w = static_cast<double>(j->duration) * j->gpus;
        demand[j->queue] += w;
        total += w;
      }
      for (const auto& [q, w] : demand) {
        config.options["queue." + q + ".share"] = std::to_string(total > 0 ? w / total : 0);
      }
    }
  }
  auto scheduler = sched::Scheduler::Create(config);
  if (!scheduler.ok()) return scheduler.status();

  // The daemon's store, in memory: nothing needs to survive the run.
  store::StoreOptions so;
  so.synchronous = "OFF";
  so.state_synchronous = "OFF";
  so.read_connections = false;
  ASSIGN_OR_RETURN(std::unique_ptr<store::Store> store, store::Store::Open(":memory:", so));
  SimInventory inventory(options.nodes, options.gpus_per_node);
  const TimeMs first_submit = jobs.empty() ? 0 : jobs.front()->submit;
  ManualClock clock(kEpoch + first_submit);

  controllers::JobController* ctl_ptr = nullptr;
  int64_t finished = 0;
  SimExecutorOptions exec_options;
  exec_options.gpus_per_node = options.gpus_per_node;
  exec_options.restart_penalty = options.restart_penalty;
  exec_options.spread_slowdown = options.spread_slowdown;
  exec_options.stop_time = options.stop_time;
  SimExecutor executor(exec_options, clock, [&](const exec::TaskEvent& ev) {
    if (ev.type == exec::TaskEventType::kExited && ev.exit_code == 0 && ev.key.task == 0)
      ++finished;
    ctl_ptr->OnTaskEvent(ev);
  });

  controllers::JobControllerOptions co;
  co.run_thread = false;
  co.check_commands_locally = false;
  co.adapt_to_cycle_cost = false;  // deterministic: no wall time enters
  co.explain_waiting = false;
  co.publish_holders = false;
  co.static_inventory = true;
  co.min_recheck_interval = options.tick;
  co.resync_interval = std::numeric_limits<TimeMs>::max() / 4;  // no event is ever missed here
  co.request_hook = [&executor](const model::Job& job, sched::JobRequest& r) {
    const SimExecutor::JobRecord* rec = executor.Record(job.id);
    if (!rec || rec->tasks == 0) return;
    r.expected_duration = rec->duration;
    r.progress = executor.Progress(job.id);
  };
  controllers::JobController ctl(*store, **scheduler, executor, inventory, clock, co);
  ctl_ptr = &ctl;
  // The controller's own log lines (recovery, warnings) would interleave
  // with the report; they say nothing a simulation needs.
  auto log_level = spdlog::get_level();
  spdlog::set_level(spdlog::level::err);
  struct RestoreLog {
    spdlog::level::level_enum level;
    ~RestoreLog() { spdlog::set_level(level); }
  } restore{log_level};
  RETURN_IF_ERROR(ctl.Start());

  const MilliGpu capacity =
      static_cast<MilliGpu>(options.nodes) * options.gpus_per_node * kWholeGpu;
  SimReport report;
  report.policy = options.policy;
  report.cluster = std::to_string(options.nodes) + "x" + std::to_string(options.gpus_per_node);
  report.jobs = static_cast<int>(jobs.size());
  report.ignored = trace->ignored;
  report.ignored.push_back(
      "job placement, GPU models, failures and exit status are not in the canonical format; "
      "every job is assumed to succeed after its duration and to be rigid (not elastic)");

  const TimeMs kNever = std::numeric_limits<TimeMs>::max();
  const TimeMs stop_at = options.horizon > 0 && !jobs.empty()
                             ? kEpoch + jobs.back()->submit + options.horizon
                             : kNever;
  std::vector<int> trace_index(1, -1);  // by job id
  size_t next_arrival = 0;
  int64_t submitted = 0;
  double busy_ms = 0, allocated_milli_ms = 0;
  TimeMs now = clock.Now();

  while (true) {
    TimeMs t = kNever;
    if (next_arrival < jobs.size()) t = kEpoch + jobs[next_arrival]->submit;
    TimeMs due = executor.NextDue();
    if (due > 0) t = std::min(t, due);
    if (submitted > finished) {
      TimeMs wake = ctl.NextWakeup();
      if (wake > 0) t = std::min(t, wake);
    }
    if (t == kNever || t > stop_at) break;
    t = std::max(t, now);
    if (submitted > finished) {
      busy_ms += static_cast<double>(t - now);
      allocated_milli_ms +=
          static_cast<double>(executor.allocated()) * static_cast<double>(t - now);
    }
    now = t;
    clock.Set(now);
    while (next_arrival < jobs.size() && kEpoch + jobs[next_arrival]->submit <= now) {
      const TraceJob& tj = *jobs[next_arrival];
      int idx = static_cast<int>(next_arrival++);
      auto job = ctl.Submit(SpecFor(tj));
      if (!job.ok()) {
        if (job.status().code() != StatusCode::kUnschedulable) return job.status();
        ++report.rejected;
        continue;
      }
      executor.AddJob(job->id, std::max<DurationMs>(tj.duration, kSecond), tj.gpus);
      if (static_cast<size_t>(job->id) >= trace_index.size()) trace_index.resize(job->id + 1, -1);
      trace_index[job->id] = idx;
      ++submitted;
    }
    // Everything due now: executor reports, the controller's passes, and the
    // starts those passes make (reported at once).
    for (int pass = 0; pass < 1000; ++pass) {
      executor.Poll();
      ctl.RunOnce();
      TimeMs next = executor.NextDue();
      if (next == 0 || next > now) break;
    }
  }

  // Metrics, from what the executor saw of every job.
  std::vector<double> jct;
  double queue_delay_sum = 0;
  TimeMs last_end = kEpoch + first_submit;
  std::map<std::string, std::vector<double>> q_jct, q_delay, q_slow;
  std::map<std::string, double> q_demand, q_usage;
  double total_demand = 0, total_usage = 0;
  for (size_t id = 1; id < trace_index.size(); ++id) {
    if (trace_index[id] < 0) continue;
    const TraceJob& tj = *jobs[trace_index[id]];
    const SimExecutor::JobRecord& s = *executor.Record(static_cast<model::JobId>(id));
    const TimeMs submit = kEpoch + tj.submit;
    double demand = static_cast<double>(tj.duration) * tj.gpus;
    q_demand[tj.queue] += demand;
    total_demand += demand;
    q_usage[tj.queue] += s.gpu_ms;
    total_usage += s.gpu_ms;
    if (s.end < 0) {
      ++report.unfinished;
      continue;
    }
    ++report.completed;
    double j = (s.end - submit) / 1000.0;
    double delay = (s.first_start - submit) / 1000.0;
    jct.push_back(j);
    queue_delay_sum += delay;
    last_end = std::max(last_end, s.end);
    q_jct[tj.queue].push_back(j);
    q_delay[tj.queue].push_back(delay);
    q_slow[tj.queue].push_back(j / std::max(60.0, tj.duration / 1000.0));
  }
  auto mean = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0.0 : s / v.size();
  };
  report.avg_jct_s = mean(jct);
  report.p50_jct_s = Percentile(jct, 0.50);
  report.p99_jct_s = Percentile(jct, 0.99);
  report.avg_queue_delay_s = jct.empty() ? 0 : queue_delay_sum / jct.size();
  report.makespan_s = (last_end - kEpoch - first_submit) / 1000.0;
  report.gpu_utilization =
      busy_ms > 0 ? allocated_milli_ms / (static_cast<double>(capacity) * busy_ms) : 0;
  controllers::JobController::Stats stats = ctl.GetStats();
  report.preemptions = stats.preemptions;
  report.resizes = 0;
  report.cycles = stats.cycles;
  double sum = 0, sum_sq = 0;
  int n = 0;
  for (const auto& [q, demand] : q_demand) {
    QueueReport& qr = report.queues[q];
    qr.jobs = static_cast<int>(q_jct[q].size());
    qr.avg_jct_s = mean(q_jct[q]);
    qr.avg_queue_delay_s = mean(q_delay[q]);
    qr.avg_slowdown = mean(q_slow[q]);
    qr.gpu_hours = q_usage[q] / 1000.0 / 3600.0;
    qr.demand_share = total_demand > 0 ? demand / total_demand : 0;
    qr.usage_share = total_usage > 0 ? q_usage[q] / total_usage : 0;
    if (qr.jobs > 0) {
      sum += qr.avg_slowdown;
      sum_sq += qr.avg_slowdown * qr.avg_slowdown;
      ++n;
    }
  }
  report.fairness = sum_sq > 0 ? sum * sum / (n * sum_sq) : 1.0;
  ctl.Stop();
  report.sim_wall_s = (MonotonicNanos() - wall_start) / 1e9;
  return report;
}

nlohmann::json ToJson(const SimReport& r) {
  nlohmann::json queues = nlohmann::json::object();
  for (const auto& [name, q] : r.queues) {
    queues[name] = {{"jobs", q.jobs},
                    {"avg_jct_s", q.avg_jct_s},
                    {"avg_queue_delay_s", q.avg_queue_delay_s},
                    {"avg_slowdown", q.avg_slowdown},
                    {"gpu_hours", q.gpu_hours},
                    {"demand_share", q.demand_share},
                    {"usage_share", q.usage_share}};
  }
  return {{"policy", r.policy},
          {"cluster", r.cluster},
          {"jobs", r.jobs},
          {"completed", r.completed},
          {"unfinished", r.unfinished},
          {"rejected", r.rejected},
          {"avg_jct_s", r.avg_jct_s},
          {"p50_jct_s", r.p50_jct_s},
          {"p99_jct_s", r.p99_jct_s},
          {"avg_queue_delay_s", r.avg_queue_delay_s},
          {"makespan_s", r.makespan_s},
          {"gpu_utilization", r.gpu_utilization},
          {"preemptions", r.preemptions},
          {"resizes", r.resizes},
          {"cycles", r.cycles},
          {"fairness", r.fairness},
          {"queues", queues},
          {"ignored", r.ignored},
          {"sim_wall_s", r.sim_wall_s}};
}

std::string ToText(const SimReport& r) {
  char buf[512];
  std::string out;
  std::snprintf(buf, sizeof buf,
                "policy %s on %s: %d jobs (%d completed, %d unfinished, %d rejected)\n"
                "JCT avg %.2f h, p50 %.2f h, p99 %.2f h; queueing avg %.2f h; makespan %.2f d\n"
                "GPU utilization %.3f; preemptions %lld; resizes %lld; fairness %.2f; %lld cycles "
                "in %.1f s\n",
                r.policy.c_str(), r.cluster.c_str(), r.jobs, r.completed, r.unfinished, r.rejected,
                r.avg_jct_s / 3600, r.p50_jct_s / 3600, r.p99_jct_s / 3600,
                r.avg_queue_delay_s / 3600, r.makespan_s / 86400, r.gpu_utilization,
                static_cast<long long>(r.preemptions), static_cast<long long>(r.resizes),
                r.fairness, static_cast<long long>(r.cycles), r.sim_wall_s);
  out += buf;
  for (const auto& [name, q] : r.queues) {
    std::snprintf(buf, sizeof buf,
                  "  queue %-12s %6d jobs  JCT %8.2f h  queueing %8.2f h  slowdown %7.2f  usage "
                  "%5.1f%% (demand %5.1f%%)\n",
                  name.c_str(), q.jobs, q.avg_jct_s / 3600, q.avg_queue_delay_s / 3600,
                  q.avg_slowdown, 100 * q.usage_share, 100 * q.demand_share);
    out += buf;
  }
  for (const auto& i : r.ignored) out += "ignored: " + i + "\n";
  return out;
}

}  // namespace berth::sim
