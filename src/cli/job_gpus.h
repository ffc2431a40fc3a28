// How the CLI shows a job's GPUs, from the API's totals (gpusRequested,
// gpusHeld, gpusPerWorker, gpusRequestedMin): a training job counts every
// worker, so `berth ps` and `berth get` agree with the API JSON.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace berth::cli {

// The GPUS column of `berth ps`: the job's total ("2" for 2 workers of 1
// GPU); an elastic job shows its range, and while it holds GPUs, what it
// holds first ("3 (2-4)").
std::string GpusColumn(const nlohmann::json& job);

// `berth get`'s "GPUs asked:": the total, with the per-worker request for
// training jobs ("2 (2 workers x 1)", "2-4 (2-4 workers x 1)").
std::string GpusAsked(const nlohmann::json& job);

// `berth get`'s "GPUs held:": what the job holds now ("" when nothing).
std::string GpusHeld(const nlohmann::json& job);

}  // namespace berth::cli
