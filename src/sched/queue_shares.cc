#include "sched/queue_shares.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace berth::sched {

Result<QueueShares> QueueShares::FromOptions(PolicyOptions& options, bool weights) {
  QueueShares s;
  s.weights_ = weights;
  double sum = 0;
  for (const auto& [key, value] : options.WithPrefix("queue.")) {
    const std::string suffix = ".share";
    if (key.size() <= 6 + suffix.size() ||
        key.compare(key.size() - suffix.size(), suffix.size(), suffix) != 0) {
      return InvalidArgument("option " + key + ": expected queue.<name>.share");
    }
    std::string name = key.substr(6, key.size() - 6 - suffix.size());
    double v = 0;
    try {
      size_t used = 0;
      v = std::stod(value, &used);
      if (used != value.size() || v < 0 || !std::isfinite(v)) throw std::invalid_argument("");
    } catch (const std::exception&) {
      return InvalidArgument("option " + key + ": expected a number >= 0, got \"" + value + "\"");
    }
    s.given_[name] = v;
    sum += v;
  }
  if (!weights && sum > 1.0 + 1e-4) {
    return InvalidArgument("options queue.*.share: fractions add up to " + std::to_string(sum) +
                           ", more than 1");
  }
  return s;
}

void QueueShares::Compute(const CycleContext& ctx, MilliGpu capacity) {
  // The cycle's queues in name order (sums are added in that order).
  std::vector<int> seen(ctx.queues.size());
  for (int i = 0; i < ctx.queues.size(); ++i) seen[i] = i;
  std::sort(seen.begin(), seen.end(),
            [&](int a, int b) { return ctx.queues.name(a) < ctx.queues.name(b); });
  guarantee_.assign(ctx.queues.size(), 0);
  auto given = [&](int q, double fallback) {
    auto it = given_.find(ctx.queues.name(q));
    return it == given_.end() ? fallback : it->second;
  };
  if (weights_) {
    // Weights of the queues that want something now; unlisted queues weigh 1.
    double total = 0;
    for (int q : seen) total += given(q, 1.0);
    for (int q : seen) {
      double w = given(q, 1.0);
      guarantee_[q] = total > 0 ? static_cast<MilliGpu>(std::floor(capacity * w / total)) : 0;
    }
    return;
  }
  double listed = 0;
  int unlisted = 0;
  for (const auto& [q, v] : given_) listed += v;
  for (int q : seen) unlisted += given_.count(ctx.queues.name(q)) ? 0 : 1;
  double rest = unlisted > 0 ? std::max(0.0, 1.0 - listed) / unlisted : 0;
  for (int q : seen) guarantee_[q] = static_cast<MilliGpu>(std::floor(capacity * given(q, rest)));
}

}  // namespace berth::sched
