#include "controllers/pipeline_controller.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/log.h"
#include "controllers/pipeline_internal.h"

namespace berth::controllers {
namespace {

using namespace pipeline_internal;

using nlohmann::json;
using store::NodeRecord;
using store::RunRecord;
namespace fs = std::filesystem;

}  // namespace

PipelineController::PipelineController(store::Store& store, store::PipelineStore& pstore,
                                       StepJobs jobs, const Clock& clock,
                                       PipelineControllerOptions options)
    : store_(store),
      pstore_(pstore),
      jobs_(std::move(jobs)),
      clock_(clock),
      options_(std::move(options)) {}

PipelineController::~PipelineController() { Stop(); }

Status PipelineController::Start() {
  std::lock_guard<std::mutex> l(mu_);
  std::error_code ec;
  fs::create_directories(options_.artifact_root, ec);
  if (ec) return IoError("artifact root " + options_.artifact_root + ": " + ec.message());
  ASSIGN_OR_RETURN(int64_t cursor, pstore_.GetCursor());
  cursor_ = cursor > 0 ? cursor : store_.LastEventSeq();
  saved_cursor_ = cursor_;
  ASSIGN_OR_RETURN(auto runs, pstore_.ListRuns(0, true));
  for (const auto& r : runs) {
    ASSIGN_OR_RETURN(RunRecord full, pstore_.GetRun(r.id));
    auto spec = model::ParsePipelineSpec(full.spec);
    auto rs = std::make_unique<RunState>();
    rs->rec = std::move(full);
    if (!spec.ok()) {
      rs->rec.state = "Failed";
      rs->rec.message = "spec no longer valid: " + spec.status().message();
      rs->rec.ended = clock_.Now();
      Save(*rs);
      continue;
    }
    rs->spec = std::move(*spec);
    for (auto& [name, n] : rs->rec.nodes)
      if (n.state == "Running" && n.job_id) job_index_[n.job_id] = {rs->rec.id, name};
    active_[rs->rec.id] = std::move(rs);
  }
  // Jobs that ended while the daemon was down: their events may be before the cursor.
  for (auto& [id, rs] : active_) {
    for (auto& [name, n] : rs->rec.nodes) {
      if (n.state != "Running" || !n.job_id) continue;
      auto job = store_.GetJob(n.job_id);
      if (job.ok() && model::IsTerminal(job->state)) OnJobEnded(*rs, name, *job);
    }
    Advance(*rs);
  }
  ASSIGN_OR_RETURN(auto crons, pstore_.ListCrons());
  for (const auto& c : crons) {
    auto cs = LoadCron(c);
    if (cs.ok())
      crons_.emplace(c.name, std::move(*cs));
    else
      spdlog::warn("cron pipeline {}: {}", c.name, cs.status().message());
  }
  stop_ = false;
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void PipelineController::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void PipelineController::Loop() {
  while (!stop_) {
    int64_t seen;
    {
      std::lock_guard<std::mutex> l(mu_);
      PassLocked();
      seen = cursor_;
    }
    store_.WaitForEvent(seen, options_.tick);
  }
}

void PipelineController::RunOnce() {
  std::lock_guard<std::mutex> l(mu_);
  PassLocked();
}

void PipelineController::PassLocked() {
  ProcessEventsLocked();
  TimeMs now = clock_.Now();
  for (auto it = active_.begin(); it != active_.end();) {
    RunState& rs = *it->second;
    // Timers: retries' backoff and timeouts are checked on every pass.
    Advance(rs);
    if (RunTerminal(rs.rec.state))
      it = active_.erase(it);
    else
      ++it;
  }
  (void)now;
  CronTickLocked();
}

void PipelineController::ProcessEventsLocked() {
  for (;;) {
    auto events = store_.EventsSince(cursor_, 4096);
    if (!events.ok() || events->empty()) return;
    bool relevant = false;
    for (const auto& e : *events) {
      cursor_ = e.seq;
      if (!e.job) continue;
      auto it = job_index_.find(e.job);
      if (it == job_index_.end()) continue;
      relevant = true;
      auto run = active_.find(it->second.first);
      if (run == active_.end()) continue;
      if (e.type == "JobStarted") {
        auto n = run->second->rec.nodes.find(it->second.second);
        if (n != run->second->rec.nodes.end()) {
          n->second.start_time = e.time;
          run->second->dirty.insert(n->first);
        }
        continue;
      }
      if (e.state != "Succeeded" && e.state != "Failed" && e.state != "Cancelled") continue;
      auto job = store_.GetJob(e.job);
      if (!job.ok() || !model::IsTerminal(job->state)) continue;
      // A copy: OnJobEnded erases the job_index_ entry that holds the name.
      std::string node = it->second.second;
      OnJobEnded(*run->second, node, *job);
    }
    for (auto& [id, rs] : active_) Save(*rs);
    // The cursor only saves re-reading events after a restart (Start
    // reconciles running steps with their jobs anyway), so it is written
    // when pipeline jobs moved or every 10,000 events, not on every event.
    if (relevant || cursor_ - saved_cursor_ >= 10000) {
      Status st = pstore_.PutCursor(cursor_);
      if (st.ok())
        saved_cursor_ = cursor_;
      else
        spdlog::warn("pipelines: {}", st.message());
    }
    if (events->size() < 4096) return;
  }
}

const model::StepSpec* PipelineController::StepOf(const RunState& rs, const NodeRecord& n) const {
  if (n.name == kExitNode && rs.spec.on_exit) return &*rs.spec.on_exit;
  return rs.spec.Step(n.step);
}

void PipelineController::OnJobEnded(RunState& rs, const std::string& name, const model::Job& job) {
  job_index_.erase(job.id);
  auto it = rs.rec.nodes.find(name);
  if (it == rs.rec.nodes.end()) return;
  NodeRecord& n = it->second;
  if (n.state != "Running" || n.job_id != job.id) return;
  const model::StepSpec* step = StepOf(rs, n);
  rs.dirty.insert(name);
  n.end_time = job.end_time ? job.end_time : clock_.Now();
  if (job.start_time) n.start_time = job.start_time;
  if (job.exit_code)
    n.exit_code = *job.exit_code;
  else
    n.exit_code.reset();
  std::string gpus;
  for (int g : job.placement.gpus) gpus += (gpus.empty() ? "" : ",") + std::to_string(g);
  n.gpus = gpus;
  if (!step) {
    n.state = "Failed";
    n.message = "step spec missing";
    return;
  }
  if (job.state == model::JobState::kSucceeded) {
    Status st = CollectOutputs(rs, n, *step, job);
    if (!st.ok()) return FailOrRetry(rs, n, *step, st.message(), true);
    n.state = "Succeeded";
    n.message = "";
    if (!step->memoize_key.empty() && n.outputs.contains("memoKey")) {
      Status ms = pstore_.PutMemo(n.outputs["memoKey"].get<std::string>(), n.outputs, clock_.Now(),
                                  rs.rec.id, n.name);
      if (!ms.ok()) spdlog::warn("pipelines: memo: {}", ms.message());
    }
    return;
  }
  if (!rs.rec.stopping.empty() || job.state == model::JobState::kCancelled) {
    n.state = job.state == model::JobState::kCancelled ? "Cancelled" : "Failed";
    n.message = rs.rec.stopping == "timeout" ? "pipeline timeout" : job.message;
    if (n.message.empty())
      n.message = job.state == model::JobState::kCancelled ? "cancelled" : "failed";
    if (rs.rec.stopping.empty()) return FailOrRetry(rs, n, *step, "job cancelled", false);
    return;
  }
  // The job's own message already says how it ended ("exited with code 4",
  // "killed by SIGKILL"); the exit code alone only when it has none.
  std::string msg = job.message;
  if (msg.empty() && job.exit_code) msg = "exit code " + std::to_string(*job.exit_code);
  // A task that could not be started (command not found, bad working
  // directory) ends without ever having run (no start time) and with exit
  // code 127: that is an error (retryPolicy OnError), not a failure of a
  // process that ran (OnFailure).
  bool process_ran = job.exit_code.has_value() && job.start_time > 0;
  FailOrRetry(rs, n, *step, msg.empty() ? "failed" : msg, process_ran);
}

void PipelineController::FailOrRetry(RunState& rs, NodeRecord& n, const model::StepSpec& step,
                                     const std::string& message, bool process_ran) {
  rs.dirty.insert(n.name);
  const auto& r = step.retry;
  bool policy_ok = r.policy == model::RetryPolicy::kAlways ||
                   (r.policy == model::RetryPolicy::kOnFailure && process_ran) ||
                   (r.policy == model::RetryPolicy::kOnError && !process_ran);
  if (rs.rec.stopping.empty() && policy_ok && n.attempts <= r.limit) {
    double backoff =
        static_cast<double>(r.backoff) * std::pow(r.factor, static_cast<double>(n.attempts - 1));
    if (r.max_backoff > 0) backoff = std::min(backoff, static_cast<double>(r.max_backoff));
    n.state = "Pending";
    n.job_id = 0;
    n.next_at = clock_.Now() + static_cast<DurationMs>(backoff);
    n.message = "attempt " + std::to_string(n.attempts) + " failed (" + message + "); retrying";
    return;
  }
  n.state = "Failed";
  n.message = message;
  if (!n.end_time) n.end_time = clock_.Now();
}

void PipelineController::Launch(RunState& rs, NodeRecord& n, const model::StepSpec& step) {
  rs.dirty.insert(n.name);
  n.attempts++;
  n.next_at = 0;
  n.exit_code.reset();
  auto lookup = Lookup(rs, n);
  auto sub = [&](const std::string& field, const std::string& text) -> Result<std::string> {
    auto r = model::Substitute(text, lookup);
    if (!r.ok())
      return InvalidArgument(field + ": " + r.status().message() + " (not produced at run time)");
    return r;
  };
  auto fail = [&](const std::string& msg) {
    n.state = "Failed";
    n.message = msg;
    n.start_time = n.end_time = clock_.Now();
  };
  model::JobSpec js;
  if (!step.script.empty()) {
    auto s = sub("script", step.script);
    if (!s.ok()) return fail(s.status().message());
    js.command = {"/bin/sh", "-c", *s};
  } else {
    for (size_t i = 0; i < step.command.size(); ++i) {
      auto s = sub("command[" + std::to_string(i) + "]", step.command[i]);
      if (!s.ok()) return fail(s.status().message());
      js.command.push_back(*s);
    }
  }
  for (const auto& [k, v] : step.env) {
    auto s = sub("env." + k, v);
    if (!s.ok()) return fail(s.status().message());
    js.env[k] = *s;
  }
  std::string workdir = rs.rec.artifact_dir + "/work/" + n.name;
  if (!step.working_dir.empty()) {
    auto s = sub("workingDir", step.working_dir);
    if (!s.ok()) return fail(s.status().message());
    workdir = *s;
  }
  std::error_code ec;
  fs::create_directories(workdir, ec);
  if (ec) return fail("workingDir " + workdir + ": " + ec.message());
  for (const auto& a : step.input_artifacts) {
    auto src = sub("inputs.artifacts." + a.name, a.from);
    if (!src.ok()) return fail(src.status().message());
    std::string dst = Resolve(workdir, a.path);
    fs::remove_all(dst, ec);
    fs::create_directories(fs::path(dst).parent_path(), ec);
    fs::copy(*src, dst, fs::copy_options::recursive | fs::copy_options::overwrite_existing, ec);
    if (ec)
      return fail("inputs.artifacts." + a.name + ": copy " + *src + " to " + dst + ": " +
                  ec.message());
  }
  js.name = rs.rec.name + "-" + std::to_string(rs.rec.id) + "-" + n.name;
  for (char& c : js.name)
    if (c == '(' || c == ')') c = '-';
  while (!js.name.empty() && js.name.back() == '-') js.name.pop_back();
  js.user = rs.rec.user;
  js.queue = step.queue;
  js.priority = step.priority;
  js.priority_class = step.priority_class;
  js.working_dir = workdir;
  js.resources = step.resources;
  js.time_limit = step.timeout;
  js.env["BERTH_PIPELINE_RUN"] = std::to_string(rs.rec.id);
  js.env["BERTH_PIPELINE_STEP"] = n.step;
  js.env["BERTH_PIPELINE_NODE"] = n.name;
  js.env["BERTH_ARTIFACT_DIR"] = rs.rec.artifact_dir;
  js.labels["berth.pipeline/run"] = std::to_string(rs.rec.id);
  js.labels["berth.pipeline/step"] = n.step;
  js.labels["berth.pipeline/node"] = n.name;
  n.state = "Running";
  n.job_id = 0;  // set by FlushSubmits at the end of this pass
  n.start_time = 0;
  n.end_time = 0;
  n.message = "";
  rs.to_submit.emplace_back(n.name, std::move(js));
}

void PipelineController::FlushSubmits(RunState& rs) {
  if (rs.to_submit.empty()) return;
  auto batch = std::move(rs.to_submit);
  rs.to_submit.clear();
  std::vector<std::optional<Result<model::Job>>> results(batch.size());
  if (batch.size() == 1) {
    results[0] = jobs_.submit(batch[0].second);
  } else {
    std::atomic<size_t> next{0};
    std::vector<std::thread> workers;
    size_t n = std::min<size_t>(batch.size(), 32);
    for (size_t w = 0; w < n; ++w)
      workers.emplace_back([&] {
        for (size_t i; (i = next++) < batch.size();) results[i] = jobs_.submit(batch[i].second);
      });
    for (auto& t : workers) t.join();
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    NodeRecord& node = rs.rec.nodes[batch[i].first];
    rs.dirty.insert(node.name);
    const Result<model::Job>& job = *results[i];
    if (!job.ok()) {
      node.start_time = node.end_time = clock_.Now();
      const model::StepSpec* step = StepOf(rs, node);
      node.state = "Failed";
      if (step) FailOrRetry(rs, node, *step, "submit: " + job.status().message(), false);
      continue;
    }
    node.job_id = job->id;
    job_index_[job->id] = {rs.rec.id, node.name};
  }
}

void PipelineController::Advance(RunState& rs) {
  for (int i = 0; i < 1000; ++i) {
    bool more = AdvanceOnce(rs);
    FlushSubmits(rs);
    if (!more) break;
  }
  Save(rs);
}

// One pass over the run's nodes; true if something changed that may let more happen.
bool PipelineController::AdvanceOnce(RunState& rs) {
  if (RunTerminal(rs.rec.state)) return false;
  TimeMs now = clock_.Now();
  bool progress = false;
  auto& nodes = rs.rec.nodes;
  if (rs.rec.stopping.empty() && rs.spec.timeout > 0 && rs.rec.started > 0 &&
      now >= rs.rec.started + rs.spec.timeout) {
    rs.rec.stopping = "timeout";
    rs.rec.message = "pipeline timeout after " + FormatDuration(rs.spec.timeout);
    rs.changed = true;
    for (auto& [name, n] : nodes)
      if (n.state == "Running" && n.job_id && name != kExitNode) (void)jobs_.cancel(n.job_id);
  }
  const bool stopping = !rs.rec.stopping.empty();
  // Children of fan-out steps, and how many leaf nodes run now.
  std::map<std::string, std::vector<NodeRecord*>> children;
  int64_t running = 0;
  for (auto& [name, n] : nodes) {
    if (n.index >= 0) children[n.step].push_back(&n);
    if (n.state == "Running" && n.job_id) ++running;
  }
  for (auto& [step, list] : children)
    std::sort(list.begin(), list.end(), [](auto* a, auto* b) { return a->index < b->index; });
  auto can_launch = [&] {
    return !stopping && !rs.rec.suspended &&
           (rs.spec.parallelism <= 0 || running < rs.spec.parallelism);
  };
  auto mark = [&](NodeRecord& n, const std::string& state, const std::string& msg) {
    n.state = state;
    n.message = msg;
    if (!n.end_time) n.end_time = now;
    rs.dirty.insert(n.name);
    progress = true;
  };
  auto launch = [&](NodeRecord& n, const model::StepSpec& step) {
    // Memoization: a recent enough success under the same key is reused.
    if (!step.memoize_key.empty()) {
      auto key = model::Substitute(step.memoize_key, Lookup(rs, n));
      if (key.ok()) {
        auto hit = pstore_.GetMemo(*key);
        if (hit.ok() && *hit &&
            (step.memoize_max_age <= 0 || now - (*hit)->second <= step.memoize_max_age)) {
          n.outputs = (*hit)->first;
          n.cached = true;
          n.start_time = now;
          mark(n, "Succeeded", "memoized result reused");
          return;
        }
        n.outputs["memoKey"] = *key;
      }
    }
    Launch(rs, n, step);
    if (n.state == "Running") ++running;
    progress = true;
  };

  for (const model::StepSpec& step : rs.spec.steps) {
    NodeRecord& n = nodes[step.name];
    if (n.name.empty()) {
      n.name = n.step = step.name;
      rs.dirty.insert(n.name);
    }
    if (Terminal(n.state)) continue;
    if (n.state == "Running" && n.index < 0 && n.outputs.contains("children")) {
      // An expanded fan-out group: launch children, then sum them up.
      auto& kids = children[step.name];
      bool all_done = true, any_failed = false;
      int64_t kids_running =
          std::count_if(kids.begin(), kids.end(), [](auto* k) { return k->state == "Running"; });
      for (NodeRecord* c : kids) {
        if (stopping && c->state == "Pending") mark(*c, "Cancelled", "run " + rs.rec.stopping);
        if (c->state == "Pending" && c->next_at <= now && can_launch() &&
            (step.parallelism <= 0 || kids_running < step.parallelism)) {
          launch(*c, step);
          if (c->state == "Running") ++kids_running;
        }
        if (!Terminal(c->state)) all_done = false;
        if (c->state == "Failed" || c->state == "Cancelled") any_failed = true;
      }
      if (all_done) {
        json params = json::object(), results = json::array();
        for (const auto& p : step.output_parameters) {
          json list = json::array();
          for (NodeRecord* c : kids)
            if (c->outputs.contains("parameters") && c->outputs["parameters"].contains(p.name))
              list.push_back(c->outputs["parameters"][p.name]);
          params[p.name] = list.dump();
        }
        for (NodeRecord* c : kids) results.push_back(c->outputs.value("result", ""));
        n.outputs["parameters"] = params;
        n.outputs["result"] = results.dump();
        mark(n, any_failed ? "Failed" : "Succeeded",
             any_failed ? "some fan-out children failed" : "");
      }
      continue;
    }
    if (n.state == "Running") continue;
    // Pending: are the dependencies done, and does the trigger rule let it run?
    if (stopping) {
      mark(n, "Cancelled", "run " + rs.rec.stopping);
      continue;
    }
    if (n.job_id == 0 && n.attempts > 0) {  // waiting to retry
      if (n.next_at <= now && can_launch()) launch(n, step);
      continue;
    }
    int total = 0, done = 0, succeeded = 0, failed = 0, upstream_failed = 0;
    for (const auto& d : step.dependencies) {
      const NodeRecord& dn = nodes[d];
      ++total;
      if (Terminal(dn.state)) ++done;
      if (dn.state == "Succeeded") ++succeeded;
      if (dn.state == "Failed" || dn.state == "Cancelled") ++failed;
      if (dn.state == "Omitted") ++upstream_failed;
    }
    bool ready = false;
    switch (step.trigger) {
      case model::TriggerRule::kAllSuccess:
        if (failed + upstream_failed > 0) {
          mark(n, "Omitted", "upstream step failed");
          continue;
        }
        ready = done == total;
        break;
      case model::TriggerRule::kNoneFailed:
        if (failed > 0) {
          mark(n, "Omitted", "upstream step failed");
          continue;
        }
        ready = done == total;
        break;
      case model::TriggerRule::kAllDone:
        ready = done == total;
        break;
      case model::TriggerRule::kOneFailed:
        if (failed > 0)
          ready = true;
        else if (done == total) {
          mark(n, "Skipped", "no upstream step failed (triggerRule one_failed)");
          continue;
        }
        break;
      case model::TriggerRule::kOneSuccess:
        if (succeeded > 0)
          ready = true;
        else if (done == total) {
          mark(n, "Omitted", "no upstream step succeeded (triggerRule one_success)");
          continue;
        }
        break;
    }
    if (!ready || !can_launch()) continue;
    if (!step.when.empty()) {
      auto expr = model::Substitute(step.when, Lookup(rs, n));
      if (!expr.ok()) {
        mark(n, "Failed", "when: " + expr.status().message());
        continue;
      }
      auto v = model::EvaluateCondition(*expr);
      if (!v.ok()) {
        mark(n, "Failed", "when: " + v.status().message());
        continue;
      }
      if (!*v) {
        n.start_time = now;
        mark(n, "Skipped", "when \"" + *expr + "\" is false");
        continue;
      }
    }
    if (step.FansOut()) {
      json items;
      if (step.with_items) {
        items = *step.with_items;
      } else {
        auto text = model::Substitute(step.with_param, Lookup(rs, n));
        if (!text.ok()) {
          mark(n, "Failed", "withParam: " + text.status().message());
          continue;
        }
        try {
          items = json::parse(*text);
        } catch (const json::exception& e) {
          mark(n, "Failed", "withParam: not a JSON list: " + *text);
          continue;
        }
        if (!items.is_array()) {
          mark(n, "Failed", "withParam: not a JSON list: " + *text);
          continue;
        }
      }
      if (Status cap = model::CheckFanOut(static_cast<int64_t>(items.size()), options_.max_fan_out,
                                          step.with_items ? "withItems" : "withParam");
          !cap.ok()) {
        mark(n, "Failed", cap.message());
        continue;
      }
      n.state = "Running";
      n.start_time = now;
      n.outputs["children"] = items.size();
      rs.dirty.insert(n.name);
      progress = true;
      for (size_t i = 0; i < items.size(); ++i) {
        NodeRecord c;
        c.name = ChildName(step.name, static_cast<int64_t>(i));
        c.step = step.name;
        c.index = static_cast<int64_t>(i);
        c.item = items[i].dump();
        nodes[c.name] = c;
        rs.dirty.insert(c.name);
      }
      continue;  // children launch on the next pass
    }
    n.start_time = now;
    launch(n, step);
  }

  // All DAG nodes done: the exit handler, then the run's end.
  bool dag_done = true;
  for (const auto& [name, n] : nodes)
    if (name != kExitNode && !Terminal(n.state)) dag_done = false;
  if (!dag_done) return progress;
  if (rs.spec.on_exit) {
    NodeRecord& e = nodes[kExitNode];
    if (e.name.empty()) {
      e.name = e.step = kExitNode;
      rs.dirty.insert(e.name);
    }
    if (e.state == "Pending" && !(e.attempts > 0 && e.next_at > now)) {
      Launch(rs, e, *rs.spec.on_exit);
      return true;
    }
    if (!Terminal(e.state)) return progress;
  }
  Finish(rs);
  return false;
}

void PipelineController::Finish(RunState& rs) {
  bool failed = false;
  std::string why;
  for (const auto& [name, n] : rs.rec.nodes)
    if (n.state == "Failed" && n.index < 0) {
      failed = true;
      if (why.empty()) why = "step " + name + " failed: " + n.message;
    }
  if (rs.rec.stopping == "cancel") {
    rs.rec.state = "Cancelled";
    if (rs.rec.message.empty()) rs.rec.message = "cancelled";
  } else if (rs.rec.stopping == "timeout" || failed) {
    rs.rec.state = "Failed";
    if (rs.rec.message.empty()) rs.rec.message = why;
  } else {
    rs.rec.state = "Succeeded";
    rs.rec.message = "";
  }
  rs.rec.ended = clock_.Now();
  rs.changed = true;
  Event(rs, "PipelineRun" + rs.rec.state, rs.rec.message);
  Save(rs);
}

void PipelineController::Save(RunState& rs) {
  if (rs.dirty.empty() && !rs.changed && rs.events.empty()) return;
  std::vector<std::string> names(rs.dirty.begin(), rs.dirty.end());
  AnnounceSteps(rs, names);
  // The run's changes and its events in one transaction; on failure both
  // stay pending for the next Save.
  Status st = pstore_.SaveRun(rs.rec, names, rs.events, clock_.Now());
  if (!st.ok()) {
    spdlog::error("pipelines: run {}: {}", rs.rec.id, st.message());
    return;
  }
  rs.dirty.clear();
  rs.changed = false;
  rs.events.clear();
}

}  // namespace berth::controllers
