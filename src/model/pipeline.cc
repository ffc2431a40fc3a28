#include "model/pipeline.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <set>

#include "model/cron.h"
#include "model/limits.h"
#include "model/spec_reader.h"

namespace berth::model {
namespace {

using nlohmann::json;

// Reads a list of maps at `key`, calling `each(reader, index)` for each.
Status ForEachItem(SpecReader& r, const std::string& key,
                   const std::function<Status(SpecReader&, size_t)>& each) {
  SpecReader list = r.Child(key);
  if (list.node().IsNull()) return Status::Ok();
  if (!list.node().IsSequence()) return r.Error(key, "must be a list");
  if (list.node().size() > kMaxSteps)
    return r.Error(key, "has " + std::to_string(list.node().size()) + " entries, the most is " +
                            std::to_string(kMaxSteps));
  for (size_t i = 0; i < list.node().size(); ++i) {
    SpecReader item(list.node()[i], list.path() + "[" + std::to_string(i) + "]");
    if (!item.IsMap()) return item.Error("", "must be a map");
    RETURN_IF_ERROR(each(item, i));
    RETURN_IF_ERROR(item.CheckNoUnknown());
  }
  return Status::Ok();
}

Status ReadStep(SpecReader& r, StepSpec* s, bool is_exit) {
  if (is_exit) {
    s->name = "onExit";
    std::string ignored;
    RETURN_IF_ERROR(r.String("name", &ignored));
    if (!ignored.empty()) s->name = ignored;
  } else {
    RETURN_IF_ERROR(r.String("name", &s->name, true));
    if (!ValidName(s->name))
      return r.Error("name", "must be 1-63 letters, digits, '-' or '_', got \"" + s->name + "\"");
  }
  std::vector<std::string> command, args;
  RETURN_IF_ERROR(r.StringList("command", &command));
  RETURN_IF_ERROR(r.StringList("args", &args));
  RETURN_IF_ERROR(r.String("script", &s->script));
  s->command = command;
  s->command.insert(s->command.end(), args.begin(), args.end());
  if (s->command.empty() && s->script.empty()) return r.Error("command", "is required (or script)");
  if (!s->command.empty() && !s->script.empty())
    return r.Error("script", "cannot be combined with command/args");
  RETURN_IF_ERROR(CheckCommand(s->command, r.ChildPath("command")));
  RETURN_IF_ERROR(CheckText(s->script, r.ChildPath("script"), kMaxArgBytes));
  RETURN_IF_ERROR(r.StringMap("env", &s->env));
  RETURN_IF_ERROR(CheckEnv(s->env, r.ChildPath("env")));
  RETURN_IF_ERROR(r.String("workingDir", &s->working_dir));
  RETURN_IF_ERROR(CheckText(s->working_dir, r.ChildPath("workingDir"), kMaxPathBytes));
  RETURN_IF_ERROR(r.String("queue", &s->queue));
  RETURN_IF_ERROR(CheckName(s->queue, r.ChildPath("queue")));
  RETURN_IF_ERROR(r.Int("priority", &s->priority));
  RETURN_IF_ERROR(ValidatePriority(s->priority, r.ChildPath("priority")));
  if (r.Has("priorityClassName")) {
    std::string cls;
    RETURN_IF_ERROR(r.String("priorityClassName", &cls));
    ASSIGN_OR_RETURN(s->priority_class, ParsePriorityClass(cls, r.ChildPath("priorityClassName")));
  }
  if (r.Has("resources")) {
    SpecReader res = r.Child("resources");
    RETURN_IF_ERROR(res.Milli("gpus", &s->resources.gpus));
    RETURN_IF_ERROR(res.Memory("gpuMemory", &s->resources.gpu_memory));
    RETURN_IF_ERROR(res.Milli("cpu", &s->resources.cpu));
    RETURN_IF_ERROR(res.Memory("memory", &s->resources.memory));
    RETURN_IF_ERROR(res.CheckNoUnknown());
    if (s->resources.gpus < 0) return res.Error("gpus", "must be >= 0");
  }
  if (!is_exit) {
    RETURN_IF_ERROR(r.StringList("dependencies", &s->dependencies));
    RETURN_IF_ERROR(r.String("when", &s->when));
    if (r.Has("withItems")) {
      SpecReader items = r.Child("withItems");
      if (!items.node().IsSequence()) return r.Error("withItems", "must be a list");
      RETURN_IF_ERROR(CheckFanOut(static_cast<int64_t>(items.node().size()), kMaxFanOut,
                                  r.ChildPath("withItems")));
      s->with_items = YamlToJson(items.node());
    }
    RETURN_IF_ERROR(r.String("withParam", &s->with_param));
    if (s->with_items && !s->with_param.empty())
      return r.Error("withParam", "cannot be combined with withItems");
    RETURN_IF_ERROR(r.Int("parallelism", &s->parallelism));
    if (s->parallelism < 0) return r.Error("parallelism", "must be >= 0");
    std::string rule;
    RETURN_IF_ERROR(r.String("triggerRule", &rule));
    if (rule.empty() || rule == "all_success")
      s->trigger = TriggerRule::kAllSuccess;
    else if (rule == "all_done")
      s->trigger = TriggerRule::kAllDone;
    else if (rule == "one_failed")
      s->trigger = TriggerRule::kOneFailed;
    else if (rule == "one_success")
      s->trigger = TriggerRule::kOneSuccess;
    else if (rule == "none_failed")
      s->trigger = TriggerRule::kNoneFailed;
    else
      return r.Error("triggerRule",
                     "must be all_success, all_done, one_failed, one_success or "
                     "none_failed, got \"" +
                         rule + "\"");
  }
  if (r.Has("inputs")) {
    SpecReader in = r.Child("inputs");
    RETURN_IF_ERROR(ForEachItem(in, "artifacts", [&](SpecReader& a, size_t) {
      ArtifactRef ref;
      RETURN_IF_ERROR(a.String("name", &ref.name, true));
      RETURN_IF_ERROR(a.String("from", &ref.from, true));
      RETURN_IF_ERROR(a.String("path", &ref.path, true));
      RETURN_IF_ERROR(CheckText(ref.path, a.ChildPath("path"), kMaxPathBytes));
      RETURN_IF_ERROR(CheckStepPath(ref.path, a.ChildPath("path")));
      s->input_artifacts.push_back(ref);
      return Status::Ok();
    }));
    RETURN_IF_ERROR(in.CheckNoUnknown());
  }
  if (r.Has("outputs")) {
    SpecReader out = r.Child("outputs");
    RETURN_IF_ERROR(ForEachItem(out, "parameters", [&](SpecReader& p, size_t) {
      OutputParameter op;
      RETURN_IF_ERROR(p.String("name", &op.name, true));
      if (!ValidName(op.name)) return p.Error("name", "must be letters, digits, '-' or '_'");
      SpecReader vf = p.Child("valueFrom");
      if (!vf.IsMap()) return p.Error("valueFrom", "is required: {path: FILE} or {stdout: true}");
      RETURN_IF_ERROR(vf.String("path", &op.path));
      RETURN_IF_ERROR(CheckText(op.path, vf.ChildPath("path"), kMaxPathBytes));
      if (!op.path.empty()) RETURN_IF_ERROR(CheckStepPath(op.path, vf.ChildPath("path")));
      RETURN_IF_ERROR(vf.Bool("stdout", &op.stdout));
      RETURN_IF_ERROR(vf.CheckNoUnknown());
      if (op.path.empty() == !op.stdout)
        return vf.Error("", "needs exactly one of path or stdout: true");
      s->output_parameters.push_back(op);
      return Status::Ok();
    }));
    RETURN_IF_ERROR(ForEachItem(out, "artifacts", [&](SpecReader& a, size_t) {
      ArtifactRef ref;
      RETURN_IF_ERROR(a.String("name", &ref.name, true));
      if (!ValidName(ref.name)) return a.Error("name", "must be letters, digits, '-' or '_'");
      RETURN_IF_ERROR(a.String("path", &ref.path, true));
      RETURN_IF_ERROR(CheckText(ref.path, a.ChildPath("path"), kMaxPathBytes));
      RETURN_IF_ERROR(CheckStepPath(ref.path, a.ChildPath("path")));
      s->output_artifacts.push_back(ref);
      return Status::Ok();
    }));
    RETURN_IF_ERROR(out.CheckNoUnknown());
  }
  if (r.Has("retryStrategy")) {
    SpecReader rs = r.Child("retryStrategy");
    RETURN_IF_ERROR(rs.Int("limit", &s->retry.limit));
    if (s->retry.limit < 0 || s->retry.limit > kMaxRetries)
      return rs.Error("limit", "must be in 0.." + std::to_string(kMaxRetries) + ", got " +
                                   std::to_string(s->retry.limit));
    std::string policy;
    RETURN_IF_ERROR(rs.String("retryPolicy", &policy));
    if (policy.empty() || policy == "Always")
      s->retry.policy = RetryPolicy::kAlways;
    else if (policy == "OnFailure")
      s->retry.policy = RetryPolicy::kOnFailure;
    else if (policy == "OnError")
      s->retry.policy = RetryPolicy::kOnError;
    else
      return rs.Error("retryPolicy",
                      "must be Always, OnFailure or OnError, got \"" + policy + "\"");
    if (rs.Has("backoff")) {
      SpecReader b = rs.Child("backoff");
      RETURN_IF_ERROR(b.Duration("duration", &s->retry.backoff));
      RETURN_IF_ERROR(b.Duration("maxDuration", &s->retry.max_backoff));
      if (b.Has("factor")) {
        std::string f;
        RETURN_IF_ERROR(b.String("factor", &f));
        char* end = nullptr;
        s->retry.factor = std::strtod(f.c_str(), &end);
        if (end == f.c_str() || *end ||
            !(s->retry.factor >= 1 && s->retry.factor <= kMaxBackoffFactor))
          return b.Error("factor", "must be a number from 1 to " +
                                       std::to_string(static_cast<int>(kMaxBackoffFactor)) +
                                       ", got \"" + f + "\"");
      }
      RETURN_IF_ERROR(b.CheckNoUnknown());
    }
    RETURN_IF_ERROR(rs.CheckNoUnknown());
  }
  // Backoffs grow by `factor` per attempt: without a cap of its own a
  // backoff stops growing at the longest duration, as every duration does.
  if (s->retry.max_backoff == 0) s->retry.max_backoff = kMaxDuration;
  RETURN_IF_ERROR(r.Duration("timeout", &s->timeout));
  if (r.Has("memoize")) {
    SpecReader m = r.Child("memoize");
    RETURN_IF_ERROR(m.String("key", &s->memoize_key, true));
    RETURN_IF_ERROR(m.Duration("maxAge", &s->memoize_max_age));
    RETURN_IF_ERROR(m.CheckNoUnknown());
  }
  return r.CheckNoUnknown();
}

// Why `ref` (a {{...}} name) cannot be used in `step`, or "" if it can.
std::string CheckRef(const PipelineSpec& spec, const StepSpec& step, bool is_exit,
                     const std::set<std::string>& ancestors, const std::string& ref,
                     bool allow_item) {
  auto parts = [&] {
    std::vector<std::string> out;
    size_t start = 0;
    for (;;) {
      size_t dot = ref.find('.', start);
      out.push_back(ref.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    return out;
  }();
  if (parts[0] == "item") {
    if (!allow_item || !step.FansOut())
      return "{{item}} is only defined in a step with withItems or withParam";
    return parts.size() <= 2 ? "" : "item has no field " + ref.substr(5);
  }
  if (parts[0] == "inputs" && parts.size() == 3 && parts[1] == "parameters") {
    for (const auto& p : spec.parameters)
      if (p.name == parts[2]) return "";
    return "no pipeline parameter named " + parts[2];
  }
  if (parts[0] == "pipeline" && parts.size() == 2) {
    if (parts[1] == "name" || parts[1] == "runId") return "";
    if (parts[1] == "status") return is_exit ? "" : "pipeline.status is only defined in onExit";
  }
  if (parts[0] == "steps" && parts.size() >= 3) {
    const StepSpec* s = spec.Step(parts[1]);
    if (!s) return "no step named " + parts[1];
    if (!is_exit && !ancestors.count(parts[1]))
      return "step " + parts[1] + " is not a dependency of " + step.name;
    if (parts.size() == 3 && (parts[2] == "status" || parts[2] == "exitCode")) return "";
    if (parts.size() == 4 && parts[2] == "outputs" && parts[3] == "result") return "";
    if (parts.size() == 5 && parts[2] == "outputs" && parts[3] == "parameters") {
      for (const auto& p : s->output_parameters)
        if (p.name == parts[4]) return "";
      return "step " + parts[1] + " has no output parameter " + parts[4];
    }
    if (parts.size() == 5 && parts[2] == "outputs" && parts[3] == "artifacts") {
      for (const auto& a : s->output_artifacts)
        if (a.name == parts[4]) return "";
      return "step " + parts[1] + " has no output artifact " + parts[4];
    }
  }
  return "unknown reference";
}

Status CheckTemplates(const PipelineSpec& spec, const StepSpec& step, const std::string& base,
                      bool is_exit, const std::set<std::string>& ancestors) {
  auto check = [&](const std::string& field, const std::string& text, bool allow_item) -> Status {
    if (text.find("{{") != std::string::npos && TemplateRefs(text).empty() &&
        text.find("}}") == std::string::npos)
      return InvalidArgument(base + "." + field + ": unterminated {{ in \"" + text + "\"");
    for (const std::string& ref : TemplateRefs(text)) {
      std::string why = CheckRef(spec, step, is_exit, ancestors, ref, allow_item);
      if (!why.empty())
        return InvalidArgument(base + "." + field + ": undefined reference {{" + ref +
                               "}}: " + why);
    }
    return Status::Ok();
  };
  for (size_t i = 0; i < step.command.size(); ++i)
    RETURN_IF_ERROR(check("command[" + std::to_string(i) + "]", step.command[i], true));
  RETURN_IF_ERROR(check("script", step.script, true));
  for (const auto& [k, v] : step.env) RETURN_IF_ERROR(check("env." + k, v, true));
  RETURN_IF_ERROR(check("workingDir", step.working_dir, true));
  RETURN_IF_ERROR(check("when", step.when, false));
  RETURN_IF_ERROR(check("withParam", step.with_param, false));
  RETURN_IF_ERROR(check("memoize.key", step.memoize_key, true));
  for (size_t i = 0; i < step.input_artifacts.size(); ++i) {
    const ArtifactRef& a = step.input_artifacts[i];
    std::string field = "inputs.artifacts[" + std::to_string(i) + "].from";
    auto refs = TemplateRefs(a.from);
    // Exactly one reference and nothing around it: the source is always an
    // artifact of this run, never a path the user named.
    std::string whole = a.from;
    while (!whole.empty() && (whole.back() == ' ' || whole.back() == '\t')) whole.pop_back();
    while (!whole.empty() && (whole[0] == ' ' || whole[0] == '\t')) whole.erase(0, 1);
    bool alone = whole.size() >= 4 && whole.rfind("{{", 0) == 0 &&
                 whole.compare(whole.size() - 2, 2, "}}") == 0 &&
                 whole.find("{{", 2) == std::string::npos;
    if (!alone || refs.size() != 1 || refs[0].rfind("steps.", 0) != 0 ||
        refs[0].find(".outputs.artifacts.") == std::string::npos)
      return InvalidArgument(base + "." + field +
                             ": must be {{steps.STEP.outputs.artifacts.NAME}}, got \"" + a.from +
                             "\"");
    RETURN_IF_ERROR(check(field, a.from, false));
  }
  if (!step.when.empty()) {
    std::string dummy = step.when;
    auto probe =
        Substitute(dummy, [](const std::string&) { return std::optional<std::string>("0"); });
    if (probe.ok()) {
      auto ok = EvaluateCondition(*probe);
      if (!ok.ok()) return InvalidArgument(base + ".when: " + ok.status().message());
    }
  }
  return Status::Ok();
}

Status Validate(PipelineSpec& spec) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < spec.steps.size(); ++i) {
    const StepSpec& s = spec.steps[i];
    std::string base = "spec.steps[" + std::to_string(i) + "](" + s.name + ")";
    if (!index.emplace(s.name, i).second)
      return InvalidArgument(base + ".name: duplicate step name \"" + s.name + "\"");
  }
  for (size_t i = 0; i < spec.steps.size(); ++i) {
    const StepSpec& s = spec.steps[i];
    std::string base = "spec.steps[" + std::to_string(i) + "](" + s.name + ")";
    for (size_t j = 0; j < s.dependencies.size(); ++j) {
      if (!index.count(s.dependencies[j]))
        return InvalidArgument(base + ".dependencies[" + std::to_string(j) + "]: unknown step \"" +
                               s.dependencies[j] + "\"");
      if (s.dependencies[j] == s.name)
        return InvalidArgument(base + ".dependencies[" + std::to_string(j) + "]: cycle: " + s.name +
                               " -> " + s.name);
    }
  }
  // Depth-first search for cycles; the order of finishing is a topological order.
  std::vector<int> color(spec.steps.size(), 0);  // 0 new, 1 on the stack, 2 done
  std::vector<size_t> stack, order;
  std::function<Status(size_t)> visit = [&](size_t i) -> Status {
    color[i] = 1;
    stack.push_back(i);
    for (const auto& dep : spec.steps[i].dependencies) {
      size_t j = index[dep];
      if (color[j] == 1) {
        std::string path;
        auto it = std::find(stack.begin(), stack.end(), j);
        for (; it != stack.end(); ++it) path += spec.steps[*it].name + " -> ";
        path += spec.steps[j].name;
        return InvalidArgument("spec.steps[" + std::to_string(i) + "](" + spec.steps[i].name +
                               ").dependencies: cycle: " + path);
      }
      if (color[j] == 0) RETURN_IF_ERROR(visit(j));
    }
    stack.pop_back();
    color[i] = 2;
    order.push_back(i);
    return Status::Ok();
  };
  for (size_t i = 0; i < spec.steps.size(); ++i)
    if (color[i] == 0) RETURN_IF_ERROR(visit(i));

  std::map<std::string, std::set<std::string>> ancestors;
  for (size_t i : order) {
    std::set<std::string>& a = ancestors[spec.steps[i].name];
    for (const auto& dep : spec.steps[i].dependencies) {
      a.insert(dep);
      a.insert(ancestors[dep].begin(), ancestors[dep].end());
    }
  }
  for (size_t i = 0; i < spec.steps.size(); ++i) {
    const StepSpec& s = spec.steps[i];
    std::string base = "spec.steps[" + std::to_string(i) + "](" + s.name + ")";
    RETURN_IF_ERROR(CheckTemplates(spec, s, base, false, ancestors[s.name]));
  }
  if (spec.on_exit) RETURN_IF_ERROR(CheckTemplates(spec, *spec.on_exit, "spec.onExit", true, {}));
  std::vector<StepSpec> sorted;
  for (size_t i : order) sorted.push_back(spec.steps[i]);
  spec.steps = std::move(sorted);
  return Status::Ok();
}

Result<PipelineSpec> ParseFromNode(const YAML::Node& root) {
  SpecReader doc(root, "");
  if (!doc.IsMap()) return InvalidArgument("document: must be a map");
  std::string api, kind;
  RETURN_IF_ERROR(doc.String("apiVersion", &api));
  if (!api.empty() && api != "berth/v1")
    return InvalidArgument("apiVersion: must be berth/v1, got \"" + api + "\"");
  RETURN_IF_ERROR(doc.String("kind", &kind, true));
  if (kind != "Pipeline") return InvalidArgument("kind: must be Pipeline, got \"" + kind + "\"");
  PipelineSpec spec;
  SpecReader meta = doc.Child("metadata");
  if (meta.IsMap()) {
    RETURN_IF_ERROR(meta.String("name", &spec.name));
    RETURN_IF_ERROR(meta.String("user", &spec.user));
    RETURN_IF_ERROR(CheckName(spec.user, "metadata.user"));
    RETURN_IF_ERROR(meta.StringMap("labels", &spec.labels));
    RETURN_IF_ERROR(CheckLabels(spec.labels, "metadata.labels"));
    RETURN_IF_ERROR(meta.CheckNoUnknown());
  }
  if (spec.name.empty()) spec.name = "pipeline";
  if (!ValidName(spec.name)) return meta.Error("name", "must be letters, digits, '-' or '_'");
  SpecReader s = doc.Child("spec");
  if (!s.IsMap()) return InvalidArgument("spec: is required");
  RETURN_IF_ERROR(ForEachItem(s, "parameters", [&](SpecReader& p, size_t) {
    PipelineParameter pp;
    RETURN_IF_ERROR(p.String("name", &pp.name, true));
    if (!ValidName(pp.name)) return p.Error("name", "must be letters, digits, '-' or '_'");
    if (p.Has("value")) {
      std::string v;
      RETURN_IF_ERROR(p.String("value", &v));
      RETURN_IF_ERROR(CheckText(v, p.ChildPath("value"), kMaxParameterBytes));
      pp.value = v;
    }
    std::string desc;
    RETURN_IF_ERROR(p.String("description", &desc));
    spec.parameters.push_back(pp);
    return Status::Ok();
  }));
  RETURN_IF_ERROR(s.Int("parallelism", &spec.parallelism));
  if (spec.parallelism < 0) return s.Error("parallelism", "must be >= 0");
  RETURN_IF_ERROR(s.Duration("timeout", &spec.timeout));
  RETURN_IF_ERROR(ForEachItem(s, "steps", [&](SpecReader& r, size_t) {
    StepSpec step;
    RETURN_IF_ERROR(ReadStep(r, &step, false));
    spec.steps.push_back(std::move(step));
    return Status::Ok();
  }));
  if (spec.steps.empty()) return s.Error("steps", "must list at least one step");
  if (s.Has("onExit")) {
    SpecReader e = s.Child("onExit");
    if (!e.IsMap()) return s.Error("onExit", "must be a step (a map)");
    StepSpec step;
    RETURN_IF_ERROR(ReadStep(e, &step, true));
    spec.on_exit = std::move(step);
  }
  RETURN_IF_ERROR(s.CheckNoUnknown());
  RETURN_IF_ERROR(doc.CheckNoUnknown());
  RETURN_IF_ERROR(Validate(spec));
  return spec;
}

}  // namespace

const char* TriggerRuleName(TriggerRule r) {
  switch (r) {
    case TriggerRule::kAllSuccess:
      return "all_success";
    case TriggerRule::kAllDone:
      return "all_done";
    case TriggerRule::kOneFailed:
      return "one_failed";
    case TriggerRule::kOneSuccess:
      return "one_success";
    case TriggerRule::kNoneFailed:
      return "none_failed";
  }
  return "?";
}

const char* ConcurrencyPolicyName(ConcurrencyPolicy p) {
  switch (p) {
    case ConcurrencyPolicy::kAllow:
      return "Allow";
    case ConcurrencyPolicy::kForbid:
      return "Forbid";
    case ConcurrencyPolicy::kReplace:
      return "Replace";
  }
  return "?";
}

const StepSpec* PipelineSpec::Step(const std::string& name) const {
  for (const auto& s : steps)
    if (s.name == name) return &s;
  return nullptr;
}

Status CheckStepPath(const std::string& path, const std::string& field) {
  if (path.empty()) return InvalidArgument(field + ": must not be empty");
  if (path.find('\0') != std::string::npos) return InvalidArgument(field + ": contains a NUL byte");
  if (path[0] == '/')
    return InvalidArgument(
        field + ": must be a path relative to the step's working directory, got \"" + path + "\"");
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    std::string c = path.substr(start, slash - start);
    if (c == "..")
      return InvalidArgument(
          field + ": must not leave the step's working directory (\"..\"), got \"" + path + "\"");
    if (c == "." || (c.empty() && slash != path.size()))
      return InvalidArgument(field + ": must not have empty or \".\" components, got \"" + path +
                             "\"");
    if (c.find("{{") != std::string::npos)
      return InvalidArgument(field + ": is not a template; got \"" + path + "\"");
    start = slash + 1;
  }
  return Status::Ok();
}

Result<PipelineSpec> ParsePipelineSpec(const std::string& text) {
  ASSIGN_OR_RETURN(YAML::Node root, ParseDocument(text));
  try {
    return ParseFromNode(root);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(std::string("pipeline: ") + e.what());
  }
}

Status CheckPipelineFanOut(const PipelineSpec& spec, int64_t cap) {
  for (size_t i = 0; i < spec.steps.size(); ++i) {
    const StepSpec& s = spec.steps[i];
    if (!s.with_items) continue;
    RETURN_IF_ERROR(CheckFanOut(static_cast<int64_t>(s.with_items->size()), cap,
                                "spec.steps(" + s.name + ").withItems"));
  }
  return Status::Ok();
}

Result<std::string> DocumentKind(const std::string& text) {
  ASSIGN_OR_RETURN(YAML::Node root, ParseDocument(text));
  if (!root.IsMap() || !root["kind"] || !root["kind"].IsScalar())
    return InvalidArgument("kind: is required");
  return root["kind"].Scalar();
}

Result<CronPipelineSpec> ParseCronPipelineSpec(const std::string& text) {
  ASSIGN_OR_RETURN(YAML::Node root, ParseDocument(text));
  try {
    SpecReader doc(root, "");
    if (!doc.IsMap()) return InvalidArgument("document: must be a map");
    std::string api, kind;
    RETURN_IF_ERROR(doc.String("apiVersion", &api));
    RETURN_IF_ERROR(doc.String("kind", &kind, true));
    if (kind != "CronPipeline")
      return InvalidArgument("kind: must be CronPipeline, got \"" + kind + "\"");
    CronPipelineSpec c;
    SpecReader meta = doc.Child("metadata");
    RETURN_IF_ERROR(meta.String("name", &c.name, true));
    if (!ValidName(c.name)) return meta.Error("name", "must be letters, digits, '-' or '_'");
    RETURN_IF_ERROR(meta.CheckNoUnknown());
    SpecReader s = doc.Child("spec");
    if (!s.IsMap()) return InvalidArgument("spec: is required");
    RETURN_IF_ERROR(s.String("schedule", &c.schedule, true));
    RETURN_IF_ERROR(s.String("timezone", &c.timezone));
    RETURN_IF_ERROR(CheckName(c.timezone, "spec.timezone"));
    auto cron = CronSchedule::Parse(c.schedule);
    if (!cron.ok()) return s.Error("schedule", cron.status().message());
    auto tz = TimeZone::Load(c.timezone);
    if (!tz.ok()) return s.Error("timezone", tz.status().message());
    std::string policy;
    RETURN_IF_ERROR(s.String("concurrencyPolicy", &policy));
    if (policy.empty() || policy == "Allow")
      c.concurrency = ConcurrencyPolicy::kAllow;
    else if (policy == "Forbid")
      c.concurrency = ConcurrencyPolicy::kForbid;
    else if (policy == "Replace")
      c.concurrency = ConcurrencyPolicy::kReplace;
    else
      return s.Error("concurrencyPolicy",
                     "must be Allow, Forbid or Replace, got \"" + policy + "\"");
    RETURN_IF_ERROR(s.Bool("suspend", &c.suspend));
    RETURN_IF_ERROR(s.StringMap("parameters", &c.parameters));
    SpecReader p = s.Child("pipeline");
    if (!p.IsMap()) return s.Error("pipeline", "is required: a Pipeline document");
    YAML::Emitter em;
    em << p.node();
    c.pipeline_text = em.c_str();
    auto ps = ParsePipelineSpec(c.pipeline_text);
    if (!ps.ok()) return InvalidArgument("spec.pipeline." + ps.status().message());
    c.pipeline_spec = std::move(*ps);
    auto params = ResolveParameters(c.pipeline_spec, c.parameters);
    if (!params.ok()) return s.Error("parameters", params.status().message());
    RETURN_IF_ERROR(s.CheckNoUnknown());
    RETURN_IF_ERROR(doc.CheckNoUnknown());
    return c;
  } catch (const YAML::Exception& e) {
    return InvalidArgument(std::string("cron pipeline: ") + e.what());
  }
}

Result<std::map<std::string, std::string>> ResolveParameters(
    const PipelineSpec& spec, const std::map<std::string, std::string>& given) {
  std::map<std::string, std::string> out;
  if (given.size() > kMaxParameters)
    return InvalidArgument("parameters: " + std::to_string(given.size()) + " given, the most is " +
                           std::to_string(kMaxParameters));
  for (const auto& [k, v] : given) {
    RETURN_IF_ERROR(CheckText(k, "parameters", kMaxNameBytes));
    RETURN_IF_ERROR(CheckText(v, "parameter " + k, kMaxParameterBytes));
    bool known = false;
    for (const auto& p : spec.parameters) known = known || p.name == k;
    if (!known)
      return InvalidArgument("parameter " + k + ": the pipeline declares no such parameter");
    out[k] = v;
  }
  for (const auto& p : spec.parameters) {
    if (out.count(p.name)) continue;
    if (!p.value)
      return InvalidArgument("parameter " + p.name + ": is required (no default value)");
    out[p.name] = *p.value;
  }
  return out;
}

}  // namespace berth::model
