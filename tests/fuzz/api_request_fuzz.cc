// Fuzzes what the API does with a request body before any controller sees it:
// POST /api/v1/pipelines/runs (a JSON body carrying a Pipeline document and
// parameters) and POST /api/v1/jobs (the body is the Job document), through
// to the JSON replies built from what is accepted.
#include <cstdint>
#include <string>

#include "model/job.h"
#include "model/pipeline.h"
#include "model/request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace berth::model;
  std::string body(reinterpret_cast<const char*>(data), size);
  auto req = ParsePipelineRunRequest(body);
  if (req.ok()) {
    auto spec = ParsePipelineSpec(req->spec);
    if (spec.ok()) {
      (void)CheckPipelineFanOut(*spec, kDefaultMaxFanOut);
      (void)ResolveParameters(*spec, req->parameters);
    }
    (void)DocumentKind(req->spec);
  }
  auto job = ParseJobSpec(body);
  if (job.ok()) {
    Job j;
    j.spec = *job;
    (void)JobToJson(j).dump();
  }
  return 0;
}
