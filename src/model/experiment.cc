#include "model/experiment.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "model/limits.h"
#include "model/spec_reader.h"

namespace berth::model {
namespace {

using nlohmann::json;

bool ParseDouble(const std::string& s, double* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (*end != '\0' || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

Status Number(SpecReader& r, const std::string& key, std::optional<double>* out) {
  std::string s;
  RETURN_IF_ERROR(r.String(key, &s));
  if (!r.Has(key)) return Status::Ok();
  double v;
  if (!ParseDouble(s, &v)) return r.Error(key, "must be a finite number, got \"" + s + "\"");
  *out = v;
  return Status::Ok();
}

// A list of maps at `key`, each handed to `each` with its index.
Status ForEach(SpecReader& r, const std::string& key, size_t max,
               const std::function<Status(SpecReader&, size_t)>& each) {
  SpecReader list = r.Child(key);
  if (!list.node().IsDefined() || list.node().IsNull()) return Status::Ok();
  if (!list.node().IsSequence()) return list.Error("", "must be a list");
  if (list.node().size() > max)
    return list.Error("", "has " + std::to_string(list.node().size()) + " items, at most " +
                              std::to_string(max) + " are allowed");
  for (size_t i = 0; i < list.node().size(); ++i) {
    SpecReader item(list.node()[i], list.path() + "[" + std::to_string(i) + "]");
    if (!item.IsMap()) return item.Error("", "must be a map");
    RETURN_IF_ERROR(each(item, i));
    RETURN_IF_ERROR(item.CheckNoUnknown());
  }
  return Status::Ok();
}

// algorithmSettings: [{name, value}] (Katib), or a plain map.
Status ReadSettings(SpecReader& r, const std::string& key, tune::Settings* out) {
  if (r.Has(key) && r.node()[key].IsMap()) return r.StringMap(key, out);
  return ForEach(r, key, 100, [&](SpecReader& item, size_t) -> Status {
    std::string name, value;
    RETURN_IF_ERROR(item.String("name", &name, true));
    RETURN_IF_ERROR(item.String("value", &value));
    RETURN_IF_ERROR(CheckText(name, item.ChildPath("name"), kMaxNameBytes));
    RETURN_IF_ERROR(CheckText(value, item.ChildPath("value"), kMaxLabelValueBytes));
    (*out)[name] = value;
    return Status::Ok();
  });
}

Status ReadCondition(SpecReader& r, const std::string& key, TrialCondition* out) {
  std::string text;
  RETURN_IF_ERROR(r.String(key, &text));
  RETURN_IF_ERROR(CheckText(text, r.ChildPath(key), kMaxLabelValueBytes));
  size_t pos = 0;
  while (pos <= text.size() && !text.empty()) {
    size_t bar = text.find("||", pos);
    std::string term = text.substr(pos, bar == std::string::npos ? std::string::npos : bar - pos);
    static const std::regex kTerm(R"(^\s*(exitCode|state)\s*(==|!=)\s*([A-Za-z0-9+-]+)\s*$)");
    std::smatch m;
    if (!std::regex_match(term, m, kTerm))
      return r.Error(key, "\"" + term +
                              "\" is not a condition (write `exitCode == N`, `exitCode != N` "
                              "or `state == Succeeded`, joined by ||)");
    TrialCondition::Term t{m[1], m[2] == "==", m[3]};
    if (t.field == "exitCode") {
      double v;
      if (!ParseDouble(t.value, &v) || v != std::floor(v))
        return r.Error(key, "exitCode is compared with a whole number, got \"" + t.value + "\"");
    } else if (!ParseJobState(t.value).ok()) {
      return r.Error(key, "unknown job state \"" + t.value + "\"");
    }
    out->any.push_back(t);
    if (bar == std::string::npos) break;
    pos = bar + 2;
  }
  return Status::Ok();
}

Status ReadObjective(SpecReader& s, ExperimentSpec* e) {
  SpecReader o = s.Child("objective");
  if (!o.IsMap()) return o.Error("", "is required (a map with type and objectiveMetricName)");
  std::string type;
  RETURN_IF_ERROR(o.String("type", &type, true));
  if (type == "maximize")
    e->goal = tune::Goal::kMaximize;
  else if (type == "minimize")
    e->goal = tune::Goal::kMinimize;
  else
    return o.Error("type", "must be maximize or minimize, got \"" + type + "\"");
  RETURN_IF_ERROR(Number(o, "goal", &e->goal_value));
  RETURN_IF_ERROR(o.String("objectiveMetricName", &e->objective_metric, true));
  static const std::regex kMetric(R"(^[A-Za-z_][A-Za-z0-9_./-]{0,127}$)");
  if (!std::regex_match(e->objective_metric, kMetric))
    return o.Error("objectiveMetricName",
                   "must be a letter or '_' followed by letters, digits, '_', '.', '/' or '-' "
                   "(at most 128)");
  RETURN_IF_ERROR(o.StringList("additionalMetricNames", &e->additional_metrics));
  if (static_cast<int64_t>(e->additional_metrics.size()) > kMaxMetricNames)
    return o.Error("additionalMetricNames", "at most " + std::to_string(kMaxMetricNames));
  std::set<std::string> names = {e->objective_metric};
  for (size_t i = 0; i < e->additional_metrics.size(); ++i) {
    const std::string& m = e->additional_metrics[i];
    std::string f = "additionalMetricNames[" + std::to_string(i) + "]";
    if (!std::regex_match(m, kMetric)) return o.Error(f, "\"" + m + "\" is not a metric name");
    if (!names.insert(m).second) return o.Error(f, "\"" + m + "\" appears twice");
  }
  RETURN_IF_ERROR(
      ForEach(o, "metricStrategies", kMaxMetricNames + 1, [&](SpecReader& item, size_t) -> Status {
        std::string name, value;
        RETURN_IF_ERROR(item.String("name", &name, true));
        RETURN_IF_ERROR(item.String("value", &value, true));
        if (!names.count(name))
          return item.Error("name", "\"" + name +
                                        "\" is not the objective or an "
                                        "additional metric");
        MetricStrategy st;
        if (value == "min")
          st = MetricStrategy::kMin;
        else if (value == "max")
          st = MetricStrategy::kMax;
        else if (value == "latest")
          st = MetricStrategy::kLatest;
        else
          return item.Error("value", "must be min, max or latest, got \"" + value + "\"");
        e->strategies[name] = st;
        return Status::Ok();
      }));
  // Katib's defaults: the objective by its direction, the others latest.
  if (!e->strategies.count(e->objective_metric))
    e->strategies[e->objective_metric] =
        e->goal == tune::Goal::kMaximize ? MetricStrategy::kMax : MetricStrategy::kMin;
  for (const auto& m : e->additional_metrics)
    if (!e->strategies.count(m)) e->strategies[m] = MetricStrategy::kLatest;
  return o.CheckNoUnknown();
}

Status ReadAlgorithm(SpecReader& s, const std::string& key, bool required, std::string* name,
                     tune::Settings* settings) {
  SpecReader a = s.Child(key);
  if (!a.node().IsDefined() || a.node().IsNull()) {
    if (required) return a.Error("", "is required (a map with algorithmName)");
    return Status::Ok();
  }
  if (!a.IsMap()) return a.Error("", "must be a map");
  RETURN_IF_ERROR(a.String("algorithmName", name, true));
  RETURN_IF_ERROR(CheckName(*name, a.ChildPath("algorithmName")));
  RETURN_IF_ERROR(ReadSettings(a, "algorithmSettings", settings));
  return a.CheckNoUnknown();
}

Status ReadParameters(SpecReader& s, ExperimentSpec* e) {
  if (!s.Has("parameters")) return s.Error("parameters", "is required (at least one parameter)");
  return ForEach(s, "parameters", kMaxExperimentParameters, [&](SpecReader& p, size_t) -> Status {
    tune::Param param;
    RETURN_IF_ERROR(p.String("name", &param.name, true));
    RETURN_IF_ERROR(CheckName(param.name, p.ChildPath("name")));
    std::string type;
    RETURN_IF_ERROR(p.String("parameterType", &type, true));
    if (type == "int")
      param.type = tune::ParamType::kInt;
    else if (type == "double")
      param.type = tune::ParamType::kDouble;
    else if (type == "categorical")
      param.type = tune::ParamType::kCategorical;
    else if (type == "discrete")
      param.type = tune::ParamType::kDiscrete;
    else
      return p.Error("parameterType",
                     "must be int, double, categorical or discrete, got \"" + type + "\"");
    SpecReader fs = p.Child("feasibleSpace");
    if (!fs.IsMap()) return fs.Error("", "is required (a map)");
    std::optional<double> min, max, step;
    RETURN_IF_ERROR(Number(fs, "min", &min));
    RETURN_IF_ERROR(Number(fs, "max", &max));
    RETURN_IF_ERROR(Number(fs, "step", &step));
    RETURN_IF_ERROR(fs.StringList("list", &param.list));
    std::string dist = "uniform";
    RETURN_IF_ERROR(fs.String("distribution", &dist));
    if (dist == "uniform")
      param.distribution = tune::Distribution::kUniform;
    else if (dist == "logUniform")
      param.distribution = tune::Distribution::kLogUniform;
    else if (dist == "normal")
      param.distribution = tune::Distribution::kNormal;
    else if (dist == "logNormal")
      param.distribution = tune::Distribution::kLogNormal;
    else
      return fs.Error("distribution",
                      "must be uniform, logUniform, normal or logNormal, got \"" + dist + "\"");
    RETURN_IF_ERROR(fs.CheckNoUnknown());
    bool numeric = param.type == tune::ParamType::kInt || param.type == tune::ParamType::kDouble;
    if (numeric) {
      if (!min) return fs.Error("min", "is required for a parameter of type " + type);
      if (!max) return fs.Error("max", "is required for a parameter of type " + type);
      if (!param.list.empty()) return fs.Error("list", "is for categorical and discrete only");
      if (param.type == tune::ParamType::kInt &&
          (*min != std::floor(*min) || *max != std::floor(*max) ||
           (step && *step != std::floor(*step))))
        return fs.Error("min", "min, max and step of an int parameter must be whole numbers");
      if (std::fabs(*min) > 1e15 || std::fabs(*max) > 1e15)
        return fs.Error("max", "must be within +-1e15");
      if (*min > *max) return fs.Error("min", "must not be above max");
      param.min = *min;
      param.max = *max;
      param.step = step;
    } else {
      if (min || max || step)
        return fs.Error(min   ? "min"
                        : max ? "max"
                              : "step",
                        "is for int and double parameters; give a list");
      if (param.list.empty()) return fs.Error("list", "is required for type " + type);
      if (static_cast<int64_t>(param.list.size()) > kMaxParameterListItems)
        return fs.Error("list", "at most " + std::to_string(kMaxParameterListItems) + " values");
      std::set<std::string> seen;
      for (size_t i = 0; i < param.list.size(); ++i) {
        std::string f = "list[" + std::to_string(i) + "]";
        RETURN_IF_ERROR(CheckText(param.list[i], fs.ChildPath(f), kMaxLabelValueBytes));
        if (!seen.insert(param.list[i]).second)
          return fs.Error(f, "\"" + param.list[i] + "\" appears twice");
      }
    }
    e->space.params.push_back(std::move(param));
    return Status::Ok();
  });
}

Status ReadCollector(SpecReader& s, ExperimentSpec* e) {
  SpecReader m = s.Child("metricsCollectorSpec");
  if (!m.node().IsDefined() || m.node().IsNull()) return Status::Ok();
  if (!m.IsMap()) return m.Error("", "must be a map");
  SpecReader c = m.Child("collector");
  if (c.node().IsDefined() && !c.node().IsNull()) {
    if (!c.IsMap()) return c.Error("", "must be a map");
    std::string kind = "StdOut";
    RETURN_IF_ERROR(c.String("kind", &kind));
    if (kind == "StdOut")
      e->collector.kind = CollectorKind::kStdOut;
    else if (kind == "File")
      e->collector.kind = CollectorKind::kFile;
    else if (kind == "Push")
      e->collector.kind = CollectorKind::kPush;
    else if (kind == "None")
      e->collector.kind = CollectorKind::kNone;
    else
      return c.Error("kind", "must be StdOut, File, Push or None, got \"" + kind + "\"");
    RETURN_IF_ERROR(c.CheckNoUnknown());
  }
  SpecReader src = m.Child("source");
  if (src.node().IsDefined() && !src.node().IsNull()) {
    if (!src.IsMap()) return src.Error("", "must be a map");
    SpecReader f = src.Child("filter");
    if (f.node().IsDefined() && !f.node().IsNull()) {
      if (!f.IsMap()) return f.Error("", "must be a map");
      std::vector<std::string> formats;
      RETURN_IF_ERROR(f.StringList("metricsFormat", &formats));
      if (formats.size() > 1)
        return f.Error("metricsFormat", "one regular expression is supported, got " +
                                            std::to_string(formats.size()));
      if (!formats.empty()) {
        if (formats[0].size() > kMaxRegexBytes)
          return f.Error("metricsFormat[0]",
                         "at most " + std::to_string(kMaxRegexBytes) + " bytes");
        try {
          std::regex re(formats[0]);
          if (re.mark_count() < 2)
            return f.Error("metricsFormat[0]", "needs two groups: the metric's name and its value");
        } catch (const std::regex_error& ex) {
          return f.Error("metricsFormat[0]", std::string("not a regular expression: ") + ex.what());
        }
        e->collector.regex = formats[0];
      }
      RETURN_IF_ERROR(f.CheckNoUnknown());
    }
    SpecReader fp = src.Child("fileSystemPath");
    if (fp.node().IsDefined() && !fp.node().IsNull()) {
      if (!fp.IsMap()) return fp.Error("", "must be a map");
      RETURN_IF_ERROR(fp.String("path", &e->collector.path));
      RETURN_IF_ERROR(CheckText(e->collector.path, fp.ChildPath("path"), kMaxPathBytes));
      if (!e->collector.path.empty() && e->collector.path[0] != '/')
        return fp.Error("path", "must be absolute");
      std::string kind = "File", format = "TEXT";
      RETURN_IF_ERROR(fp.String("kind", &kind));
      if (kind != "File") return fp.Error("kind", "must be File, got \"" + kind + "\"");
      RETURN_IF_ERROR(fp.String("format", &format));
      if (format != "TEXT" && format != "JSON")
        return fp.Error("format", "must be TEXT or JSON, got \"" + format + "\"");
      e->collector.json_lines = format == "JSON";
      RETURN_IF_ERROR(fp.CheckNoUnknown());
    }
    RETURN_IF_ERROR(src.CheckNoUnknown());
  }
  return m.CheckNoUnknown();
}

// Replaces every `${trialParameters.NAME}` and `${trialSpec.Name}` in
// `text` (JSON) by its value, escaped for a JSON string.
Result<std::string> Substitute(const ExperimentSpec& e, const std::string& text,
                               const tune::Assignment& params, const std::string& job_name) {
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t at = text.find("${", pos);
    if (at == std::string::npos) break;
    out.append(text, pos, at - pos);
    size_t end = text.find('}', at);
    if (end == std::string::npos) {
      out.append(text, at, std::string::npos);
      pos = text.size();
      break;
    }
    std::string ref = text.substr(at + 2, end - at - 2);
    std::string value;
    if (ref == "trialSpec.Name") {
      value = job_name;
    } else if (ref.rfind("trialParameters.", 0) == 0) {
      std::string name = ref.substr(16);
      const TrialParameter* tp = nullptr;
      for (const auto& t : e.trial_parameters)
        if (t.name == name) tp = &t;
      if (!tp)
        return InvalidArgument("spec.trialTemplate.trialSpec: ${" + ref +
                               "} names no entry of spec.trialTemplate.trialParameters");
      auto it = params.find(tp->reference);
      if (it == params.end())
        return InvalidArgument("spec.trialTemplate.trialParameters[" + name +
                               "].reference: no value for parameter \"" + tp->reference + "\"");
      value = it->second;
    } else {
      // Not ours ("${HOME}" in a shell command): left as written.
      out.append(text, at, end + 1 - at);
      pos = end + 1;
      continue;
    }
    std::string quoted = json(value).dump();
    out += quoted.substr(1, quoted.size() - 2);
    pos = end + 1;
  }
  out.append(text, pos, std::string::npos);
  return out;
}

Status ReadTrialTemplate(SpecReader& s, ExperimentSpec* e) {
  SpecReader t = s.Child("trialTemplate");
  if (!t.IsMap()) return t.Error("", "is required (a map with trialParameters and trialSpec)");
  std::set<std::string> params;
  for (const auto& p : e->space.params) params.insert(p.name);
  std::set<std::string> seen;
  RETURN_IF_ERROR(ForEach(
      t, "trialParameters", kMaxExperimentParameters, [&](SpecReader& item, size_t) -> Status {
        TrialParameter tp;
        RETURN_IF_ERROR(item.String("name", &tp.name, true));
        RETURN_IF_ERROR(CheckName(tp.name, item.ChildPath("name")));
        RETURN_IF_ERROR(item.String("description", &tp.description));
        RETURN_IF_ERROR(
            CheckText(tp.description, item.ChildPath("description"), kMaxLabelValueBytes));
        RETURN_IF_ERROR(item.String("reference", &tp.reference, true));
        if (!params.count(tp.reference))
          return item.Error("reference", "\"" + tp.reference +
                                             "\" is not the name of one of "
                                             "spec.parameters");
        if (!seen.insert(tp.name).second)
          return item.Error("name", "\"" + tp.name + "\" appears twice");
        e->trial_parameters.push_back(std::move(tp));
        return Status::Ok();
      }));
  std::string ignored;
  RETURN_IF_ERROR(t.String("primaryContainerName", &ignored));
  RETURN_IF_ERROR(ReadCondition(t, "successCondition", &e->success_condition));
  RETURN_IF_ERROR(ReadCondition(t, "failureCondition", &e->failure_condition));
  SpecReader ts = t.Child("trialSpec");
  if (!ts.IsMap()) return ts.Error("", "is required (a Job or TrainingJob document)");
  json doc = YamlToJson(ts.node());
  std::string kind =
      doc.contains("kind") && doc["kind"].is_string() ? doc["kind"].get<std::string>() : "";
  if (kind == "Pipeline")
    return ts.Error("kind", "Pipeline trials are not supported yet; use a Job or TrainingJob");
  if (kind != "Job" && kind != "TrainingJob")
    return ts.Error("kind", "must be Job or TrainingJob, got \"" + kind + "\"");
  if (!doc.contains("apiVersion")) doc["apiVersion"] = "berth/v1";
  e->trial_kind = kind;
  e->trial_spec_json = doc.dump();
  return t.CheckNoUnknown();
}

}  // namespace

const char* MetricStrategyName(MetricStrategy s) {
  switch (s) {
    case MetricStrategy::kMin:
      return "min";
    case MetricStrategy::kMax:
      return "max";
    case MetricStrategy::kLatest:
      return "latest";
  }
  return "latest";
}

const char* CollectorKindName(CollectorKind k) {
  switch (k) {
    case CollectorKind::kStdOut:
      return "StdOut";
    case CollectorKind::kFile:
      return "File";
    case CollectorKind::kPush:
      return "Push";
    case CollectorKind::kNone:
      return "None";
  }
  return "None";
}

bool TrialCondition::Holds(const Job& job) const {
  for (const auto& t : any) {
    bool eq;
    if (t.field == "exitCode")
      eq = job.exit_code && *job.exit_code == std::atoi(t.value.c_str());
    else
      eq = ParseJobState(t.value).ok() && *ParseJobState(t.value) == job.state;
    if (eq == t.equal) return true;
  }
  return false;
}

Result<ExperimentSpec> ParseExperimentSpec(const std::string& text) {
  ASSIGN_OR_RETURN(YAML::Node root, ParseDocument(text));
  ExperimentSpec e;
  try {
    SpecReader doc(root, "");
    if (!doc.IsMap()) return InvalidArgument("document: must be a map");
    std::string api, kind;
    RETURN_IF_ERROR(doc.String("apiVersion", &api, true));
    if (api != "berth/v1" && api != "kubeflow.org/v1beta1")
      return doc.Error("apiVersion",
                       "must be berth/v1 (or kubeflow.org/v1beta1), got \"" + api + "\"");
    RETURN_IF_ERROR(doc.String("kind", &kind, true));
    if (kind != "Experiment") return doc.Error("kind", "must be Experiment, got \"" + kind + "\"");
    SpecReader meta = doc.Child("metadata");
    if (!meta.IsMap()) return meta.Error("", "is required (a map with name)");
    RETURN_IF_ERROR(meta.String("name", &e.name, true));
    if (!ValidName(e.name))
      return meta.Error("name", "must be 1 to 63 letters, digits, '-' or '_'");
    RETURN_IF_ERROR(meta.String("user", &e.user));
    std::string ns;
    RETURN_IF_ERROR(meta.String("namespace", &ns));  // Katib's; Berth has none
    RETURN_IF_ERROR(meta.CheckNoUnknown());
    SpecReader s = doc.Child("spec");
    if (!s.IsMap()) return s.Error("", "is required (a map)");
    RETURN_IF_ERROR(ReadObjective(s, &e));
    RETURN_IF_ERROR(ReadAlgorithm(s, "algorithm", true, &e.algorithm, &e.algorithm_settings));
    RETURN_IF_ERROR(
        ReadAlgorithm(s, "earlyStopping", false, &e.early_stopping, &e.early_stopping_settings));
    RETURN_IF_ERROR(ReadParameters(s, &e));
    RETURN_IF_ERROR(ReadTrialTemplate(s, &e));
    RETURN_IF_ERROR(s.Int("parallelTrialCount", &e.parallel_trials));
    if (e.parallel_trials < 1 || e.parallel_trials > kMaxParallelTrials)
      return s.Error("parallelTrialCount", "must be 1 to " + std::to_string(kMaxParallelTrials) +
                                               ", got " + std::to_string(e.parallel_trials));
    RETURN_IF_ERROR(s.Int("maxTrialCount", &e.max_trials));
    if (e.max_trials < 0 || e.max_trials > kMaxTrialCount)
      return s.Error("maxTrialCount", "must be 0 (no limit) to " + std::to_string(kMaxTrialCount) +
                                          ", got " + std::to_string(e.max_trials));
    RETURN_IF_ERROR(s.Int("maxFailedTrialCount", &e.max_failed_trials));
    if (s.Has("maxFailedTrialCount") &&
        (e.max_failed_trials < 0 || e.max_failed_trials > kMaxTrialCount))
      return s.Error("maxFailedTrialCount", "must be 0 to " + std::to_string(kMaxTrialCount) +
                                                ", got " + std::to_string(e.max_failed_trials));
    RETURN_IF_ERROR(ReadCollector(s, &e));
    RETURN_IF_ERROR(s.String("resumePolicy", &e.resume_policy));
    if (e.resume_policy != "Never" && e.resume_policy != "LongRunning" &&
        e.resume_policy != "FromVolume")
      return s.Error("resumePolicy",
                     "must be Never, LongRunning or FromVolume, got \"" + e.resume_policy + "\"");
    RETURN_IF_ERROR(s.CheckNoUnknown());
    RETURN_IF_ERROR(doc.CheckNoUnknown());
  } catch (const YAML::Exception& ex) {
    return InvalidArgument(std::string("document: ") + ex.what());
  }
  // The algorithms check the space and their settings (errors name the field).
  Status st = tune::ValidateSpace(e.space);
  if (!st.ok()) return InvalidArgument("spec." + st.message());
  auto suggester = tune::MakeSuggester(e.algorithm, e.algorithm_settings, e.space);
  if (!suggester.ok()) return InvalidArgument("spec." + suggester.status().message());
  if (!e.early_stopping.empty()) {
    auto stopper = tune::MakeEarlyStopper(e.early_stopping, e.early_stopping_settings);
    if (!stopper.ok()) return InvalidArgument("spec." + stopper.status().message());
  }
  // A trial made from the template must be a valid job: try one with each
  // parameter at its first value.
  tune::Assignment sample;
  for (const auto& p : e.space.params)
    sample[p.name] = p.list.empty() ? tune::FormatValue(p, p.min) : p.list.front();
  ASSIGN_OR_RETURN(JobSpec job, MakeTrialJob(e, sample, e.name + "-trial-0"));
  if (!job.user.empty() && !e.user.empty() && job.user != e.user)
    return InvalidArgument("spec.trialTemplate.trialSpec.metadata.user: \"" + job.user +
                           "\" is not the experiment's user");
  return e;
}

Result<JobSpec> MakeTrialJob(const ExperimentSpec& spec, const tune::Assignment& params,
                             const std::string& job_name) {
  ASSIGN_OR_RETURN(std::string text, Substitute(spec, spec.trial_spec_json, params, job_name));
  auto job = ParseJobSpec(text);
  if (!job.ok()) return InvalidArgument("spec.trialTemplate.trialSpec." + job.status().message());
  job->name = job_name;
  Status st = ValidateJobSpec(*job);
  if (!st.ok()) return InvalidArgument("spec.trialTemplate.trialSpec: " + st.message());
  return job;
}

MetricParser::MetricParser(std::vector<std::string> names, bool json_lines,
                           const std::string& regex)
    : names_(std::move(names)), json_lines_(json_lines), regex_(regex) {}

std::vector<MetricRecord> MetricParser::Lines(const std::string& text) {
  std::vector<MetricRecord> out;
  std::regex re;
  if (!json_lines_) {
    try {
      re = std::regex(regex_);
    } catch (const std::regex_error&) {
      return out;
    }
  }
  auto wanted = [&](const std::string& n) {
    for (const auto& w : names_)
      if (w == n) return true;
    return false;
  };
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    if (line.size() > 65536) continue;
    std::map<std::string, double> values;
    std::optional<int64_t> step;
    // A JSON line is read as one in either format (a File collector's
    // default format is TEXT, and programs write JSON lines as often).
    size_t first = line.find_first_not_of(" \t");
    if (json_lines_ || (first != std::string::npos && line[first] == '{')) {
      json j = json::parse(line, nullptr, false);
      if (!j.is_object()) continue;
      for (auto it = j.begin(); it != j.end(); ++it) {
        double v;
        if (it.value().is_number())
          v = it.value().get<double>();
        else if (!(it.value().is_string() && ParseDouble(it.value().get<std::string>(), &v)))
          continue;
        if (!std::isfinite(v)) continue;
        if (it.key() == "step" || it.key() == "epoch")
          step = static_cast<int64_t>(v);
        else if (wanted(it.key()))
          values[it.key()] = v;
      }
    } else {
      if (line.find('=') == std::string::npos && regex_ == kDefaultMetricsRegex) continue;
      for (std::sregex_iterator it(line.begin(), line.end(), re), end; it != end; ++it) {
        if (it->size() < 3) continue;
        std::string name = (*it)[1];
        double v;
        if (!ParseDouble((*it)[2], &v)) continue;
        if (name == "step" || name == "epoch")
          step = static_cast<int64_t>(v);
        else if (wanted(name))
          values[name] = v;
      }
    }
    for (const auto& [name, v] : values) {
      int64_t s = step ? *step : (last_step_.count(name) ? last_step_[name] + 1 : 0);
      last_step_[name] = s;
      out.push_back({name, s, v});
    }
  }
  return out;
}

}  // namespace berth::model
