#include "cli/job_gpus.h"

namespace berth::cli {
namespace {

using nlohmann::json;

std::string Field(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_string()) return "";
  return j[key].get<std::string>();
}

// The per-task request in the document (servers without the totals).
std::string SpecGpus(const json& job) {
  try {
    return job.at("spec").at("spec").at("resources").at("gpus").get<std::string>();
  } catch (const std::exception&) {
    return "";
  }
}

// "2-4" for an elastic job, else the total.
std::string Range(const json& job) {
  std::string max = Field(job, "gpusRequested"), min = Field(job, "gpusRequestedMin");
  if (max.empty()) return SpecGpus(job);
  return min.empty() || min == max ? max : min + "-" + max;
}

}  // namespace

std::string GpusColumn(const json& job) {
  std::string range = Range(job);
  std::string held = GpusHeld(job);
  if (Field(job, "gpusRequestedMin").empty() || held.empty()) return range;
  return held + " (" + range + ")";
}

std::string GpusAsked(const json& job) {
  std::string range = Range(job);
  std::string per = Field(job, "gpusPerWorker");
  if (per.empty()) return range;
  std::string workers;
  try {
    const json& s = job.at("spec").at("spec");
    workers = s.contains("elasticPolicy") ? s["elasticPolicy"].at("minReplicas").dump() + "-" +
                                                s["elasticPolicy"].at("maxReplicas").dump()
                                          : s.at("workers").dump();
  } catch (const std::exception&) {
    return range;
  }
  return range + " (" + workers + " workers x " + per + ")";
}

std::string GpusHeld(const json& job) {
  std::string held = Field(job, "gpusHeld");
  return held == "0" ? "" : held;
}

}  // namespace berth::cli
