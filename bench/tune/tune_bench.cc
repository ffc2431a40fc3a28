// The tuning benchmark: Berth's suggesters on the test functions of
// functions.h, printing CSV lines like optuna_bench.py's (see
// docs/experiments.md, "Algorithms and benchmarks").
//
//   berth_tune_bench best [--algorithms a,b] [--functions f,g] [--seeds 0-19]
//                         [--settings name=value,...]
//   berth_tune_bench latency [--algorithms a,b] [--trials 1000]
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <sstream>
#include <string>
#include <vector>

#include "functions.h"
#include "tune/suggester.h"

namespace berth::tune::bench {
namespace {

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(item);
  return out;
}

// CPU seconds of this thread: the benchmark shares a loaded machine, and
// wall time would count the other programs' turns.
double CpuNow() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Runs `trials` trials one at a time; calls `mark(i, best, seconds_in_suggest)` after each.
template <typename Mark>
bool Optimize(const std::string& algo, const Settings& settings, const TestFunction& fn,
              uint64_t seed, int trials, Mark mark) {
  auto s = MakeSuggester(algo, settings, fn.space);
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", algo.c_str(), s.status().message().c_str());
    return false;
  }
  History h;
  h.goal = Goal::kMinimize;
  h.space = fn.space;
  double best = 1e300;
  for (int i = 0; i < trials; ++i) {
    double t0 = CpuNow();
    auto r = (*s)->Suggest(h, 1, seed);
    double sec = CpuNow() - t0;
    if (!r.ok() || r->trials.empty()) {
      std::fprintf(stderr, "%s: no suggestion at trial %d\n", algo.c_str(), i);
      return false;
    }
    h.state = r->state;
    Trial t;
    t.id = i;
    t.params = r->trials[0].params;
    t.labels = r->trials[0].labels;
    t.state = TrialState::kSucceeded;
    t.objective = fn.f(t.params);
    best = std::min(best, *t.objective);
    h.trials.push_back(std::move(t));
    mark(i + 1, best, sec);
  }
  return true;
}

int Main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "best";
  std::string algos = "random,sobol,tpe,multivariate-tpe,cmaes,bayesianoptimization";
  std::string fns;
  int lo = 0, hi = 19, trials = 1000;
  Settings settings;  // for every algorithm run: name=value,name=value
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--algorithms") {
      algos = v;
    } else if (k == "--functions") {
      fns = v;
    } else if (k == "--seeds") {
      auto dash = v.find('-');
      lo = std::stoi(v.substr(0, dash));
      hi = dash == std::string::npos ? lo : std::stoi(v.substr(dash + 1));
    } else if (k == "--settings") {
      for (const auto& kv : Split(v)) {
        auto eq = kv.find('=');
        if (eq != std::string::npos) settings[kv.substr(0, eq)] = kv.substr(eq + 1);
      }
    } else if (k == "--trials") {
      trials = std::stoi(v);
    } else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  auto all = TestFunctions();
  if (mode == "latency") {
    // CPU milliseconds of one Suggest call as the history grows (median of
    // the ten calls before each mark), on Hartmann-6.
    std::printf("impl,algorithm,trials,cpu_ms_per_suggestion\n");
    const TestFunction& fn = all[1];
    for (const auto& algo : Split(algos)) {
      std::vector<double> times;
      if (!Optimize(algo, settings, fn, 0, trials,
                    [&](int, double, double sec) { times.push_back(sec); }))
        return 1;
      for (int n : {10, 100, 250, 500, 1000}) {
        if (n > trials) continue;
        std::vector<double> w(times.begin() + std::max(0, n - 10), times.begin() + n);
        std::sort(w.begin(), w.end());
        std::printf("berth,%s,%d,%.4f\n", algo.c_str(), n, 1e3 * w[w.size() / 2]);
        std::fflush(stdout);
      }
    }
    return 0;
  }
  std::printf("impl,algorithm,function,seed,best25,best50,best100,seconds\n");
  std::vector<std::string> wanted = Split(fns);
  for (const auto& fn : all) {
    if (!fns.empty() && std::find(wanted.begin(), wanted.end(), fn.name) == wanted.end()) continue;
    for (const auto& algo : Split(algos)) {
      for (int seed = lo; seed <= hi; ++seed) {
        double b25 = 0, b50 = 0, b100 = 0, total = 0;
        bool ok = Optimize(algo, settings, fn, seed, 100, [&](int n, double best, double sec) {
          total += sec;
          if (n == 25) b25 = best;
          if (n == 50) b50 = best;
          if (n == 100) b100 = best;
        });
        if (!ok) return 1;
        std::printf("berth,%s,%s,%d,%.9g,%.9g,%.9g,%.3f\n", algo.c_str(), fn.name.c_str(), seed,
                    b25, b50, b100, total);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}

}  // namespace
}  // namespace berth::tune::bench

int main(int argc, char** argv) { return berth::tune::bench::Main(argc, argv); }
