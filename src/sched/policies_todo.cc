#include "sched/policy.h"
namespace berth::sched {
Result<std::unique_ptr<Policy>> MakeBackfillPolicy(PolicyOptions& o) { return MakeFifoPolicy(o); }
Result<std::unique_ptr<Policy>> MakeTiresiasPolicy(PolicyOptions& o) { return MakeFifoPolicy(o); }
Result<std::unique_ptr<Policy>> MakeStaticPolicy(PolicyOptions& o) { return MakeFifoPolicy(o); }
Result<std::unique_ptr<Policy>> MakeFairSharePolicy(PolicyOptions& o) { return MakeFifoPolicy(o); }
Result<std::unique_ptr<Policy>> MakeSrtfOraclePolicy(PolicyOptions& o) { return MakeFifoPolicy(o); }
Result<std::unique_ptr<Policy>> MakeDynamicPolicy(PolicyOptions& o) { return MakeFifoPolicy(o); }
}
