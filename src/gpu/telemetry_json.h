// JSON forms of GPU telemetry for the API (`berth gpus`, `berth get job`).
// Field names are lowerCamel like model/node.h; a reading that is not known
// is null (not 0), and memory is in MiB, power in milliwatts.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "gpu/history.h"
#include "gpu/sampler.h"
#include "gpu/telemetry.h"

namespace berth::gpu {

// {"node","index","uuid","model","pciBusId","lost","migEnabled","utilPercent",
//  "memUtilPercent","memoryTotalMiB","memoryUsedMiB","memoryFreeMiB",
//  "temperatureC","powerMilliwatts","smClockMHz",
//  "processes":[{"pid","usedMemoryMiB","pgid","job"}] or null, "errors":[...]}
nlohmann::json ToJson(const GpuSample& s);

// ToJson(sample) plus "time" (RFC 3339), "idleForMs",
// "holders":[{"job","user","queue","share"}] (share in GPUs, "0.5") and
// "health" (below).
nlohmann::json ToJson(const GpuStatus& g);

// {"fatal","reason","fatalSince" (null when not fatal),"lost","lastXid",
//  "xidCount","fatalXid","eccDbeVolatile","retiredPagesPending",
//  "rowRemapPending","rowRemapFailure","throttleReasons","throttle":[names],
//  "thermalThrottled","powerThrottled",
//  "unavailable":[{"check","reason","message"}]}; unknown readings are null.
nlohmann::json ToJson(const GpuHealth& h);

// {"avgUtilPercent" (null: no reading),"maxMemoryUsedMiB","samples"}
nlohmann::json ToJson(const RecentUsage& r);

// {"job","user","queue","active","firstTime","lastTime","avgUtilPercent",
//  "peakUtilPercent","avgMemoryMiB","peakMemoryMiB","allocatedGpuSeconds",
//  "idleGpuSeconds","violations"}
nlohmann::json ToJson(const JobUsage& u);

// {"time","util","utilMax","memoryUsedMiB","memoryMaxMiB","temperatureC",
//  "powerMilliwatts","smClockMHz","samples"}; unknown fields are null.
nlohmann::json ToJson(const HistoryPoint& p);
nlohmann::json ToJson(const std::vector<HistoryPoint>& points);

}  // namespace berth::gpu
