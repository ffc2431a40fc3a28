// TPE, multivariate TPE, CMA-ES and GP-BO: deterministic given the seed,
// near the optimum of easy functions within a budget, settings checked.
#include <gtest/gtest.h>

#include "tune/linalg.h"
#include "tune/suggester.h"
#include "tune_testing.h"

namespace berth::tune {
namespace {

using namespace tunetest;  // NOLINT

struct Case {
  const char* algo;
  int budget;
  double sphere_below;  // best sphere value reached (random search: ~0.02 in 3-D at 60)
  double branin_below;  // Branin's minimum is 0.397887
};

class ModelBased : public ::testing::TestWithParam<Case> {};

TEST_P(ModelBased, SameSeedSameSuggestionsAndAnotherSeedOthers) {
  SearchSpace space = Box(3, -1, 1);
  space.params.push_back(Cat("opt", {"sgd", "adam", "lamb"}));
  space.params.push_back(Num("layers", 1, 6, tune::ParamType::kInt));
  auto a = MakeSuggester(GetParam().algo, {}, space);
  auto b = MakeSuggester(GetParam().algo, {}, space);
  ASSERT_TRUE(a.ok()) << a.status().message();
  History ha = RunTrials(**a, space, Sphere, 30, 11);
  History hb = RunTrials(**b, space, Sphere, 30, 11);
  for (size_t i = 0; i < ha.trials.size(); ++i) {
    EXPECT_EQ(ha.trials[i].params, hb.trials[i].params) << "trial " << i;
    EXPECT_EQ(ha.trials[i].labels, hb.trials[i].labels);
  }
  auto c = MakeSuggester(GetParam().algo, {}, space);
  History hc = RunTrials(**c, space, Sphere, 30, 12);
  EXPECT_NE(ha.trials.back().params, hc.trials.back().params);
  for (const auto& t : ha.trials) {
    int layers = std::stoi(t.params.at("layers"));
    EXPECT_GE(layers, 1);
    EXPECT_LE(layers, 6);
    EXPECT_TRUE(t.params.at("opt") == "sgd" || t.params.at("opt") == "adam" ||
                t.params.at("opt") == "lamb");
  }
}

TEST_P(ModelBased, FindsTheSphereMinimumAndBraninWithinTheBudget) {
  Case c = GetParam();
  SearchSpace space = Box(3, -1, 1);
  auto s = MakeSuggester(c.algo, {}, space);
  ASSERT_TRUE(s.ok());
  // Median over three seeds, so one unlucky start does not decide.
  std::vector<double> sphere, branin;
  for (uint64_t seed : {1, 2, 3}) {
    auto s1 = MakeSuggester(c.algo, {}, space);
    sphere.push_back(Best(RunTrials(**s1, space, Sphere, c.budget, seed)));
    auto s2 = MakeSuggester(c.algo, {}, BraninSpace());
    branin.push_back(Best(RunTrials(**s2, BraninSpace(), BraninFn, c.budget, seed)));
  }
  std::sort(sphere.begin(), sphere.end());
  std::sort(branin.begin(), branin.end());
  EXPECT_LT(sphere[1], c.sphere_below);
  EXPECT_LT(branin[1], c.branin_below);
}

TEST_P(ModelBased, MaximizeIsMinimizeOfTheNegation) {
  SearchSpace space = Box(2, -1, 1);
  auto s = MakeSuggester(GetParam().algo, {}, space);
  History h = RunTrials(
      **s, space, [](const Assignment& a) { return -Sphere(a); }, GetParam().budget, 5,
      Goal::kMaximize);
  EXPECT_GT(Best(h), -GetParam().sphere_below);
}

TEST_P(ModelBased, UnknownAndBadSettingsAreRefusedNamingTheSetting) {
  auto u = MakeSuggester(GetParam().algo, {{"no_such", "1"}}, Box(2, 0, 1));
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.status().message().find("algorithm.algorithmSettings.no_such"), std::string::npos)
      << u.status().message();
}

TEST_P(ModelBased, ParallelSuggestionsInOneCallDiffer) {
  SearchSpace space = Box(2, -1, 1);
  auto s = MakeSuggester(GetParam().algo, {}, space);
  History h = RunTrials(**s, space, Sphere, 30, 3);
  auto r = (*s)->Suggest(h, 4, 9);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->trials.size(), 4u);
  std::set<Assignment> distinct;
  for (const auto& t : r->trials) distinct.insert(t.params);
  EXPECT_EQ(distinct.size(), 4u);
}

INSTANTIATE_TEST_SUITE_P(Algorithms, ModelBased,
                         ::testing::Values(Case{"tpe", 80, 0.02, 0.6},
                                           Case{"multivariate-tpe", 80, 0.02, 0.7},
                                           Case{"cmaes", 120, 0.001, 0.45},
                                           Case{"bayesianoptimization", 40, 0.005, 0.45}),
                         [](const auto& info) {
                           std::string n = info.param.algo;
                           std::erase(n, '-');
                           return n;
                         });

TEST(Settings, ValuesOutOfRangeNameTheSettingAndTheReason) {
  struct Bad {
    const char* algo;
    const char* key;
    const char* value;
  };
  for (Bad b : {Bad{"tpe", "n_startup_trials", "-1"}, Bad{"tpe", "gamma", "0"},
                Bad{"tpe", "n_ei_candidates", "many"}, Bad{"multivariate-tpe", "gamma", "2"},
                Bad{"cmaes", "sigma", "0"}, Bad{"cmaes", "restart_strategy", "bipop2"},
                Bad{"cmaes", "popsize", "1"}, Bad{"bayesianoptimization", "acq_func", "ucb9"},
                Bad{"bayesianoptimization", "kernel", "linear"},
                Bad{"bayesianoptimization", "n_initial_points", "0"}}) {
    auto s = MakeSuggester(b.algo, {{b.key, b.value}}, Box(2, 0, 1));
    ASSERT_FALSE(s.ok()) << b.algo << " " << b.key;
    EXPECT_NE(s.status().message().find(std::string("algorithm.algorithmSettings.") + b.key),
              std::string::npos)
        << s.status().message();
  }
  EXPECT_TRUE(
      MakeSuggester("tpe", {{"n_startup_trials", "5"}, {"gamma", "0.25"}}, Box(2, 0, 1)).ok());
  EXPECT_TRUE(
      MakeSuggester("cmaes", {{"restart_strategy", "ipop"}, {"sigma", "0.3"}}, Box(2, 0, 1)).ok());
}

TEST(Cmaes, IpopRestartsKeepFindingTheSphere) {
  SearchSpace space = Box(2, -1, 1);
  auto s = MakeSuggester("cmaes", {{"restart_strategy", "ipop"}}, space);
  History h = RunTrials(**s, space, Sphere, 400, 1);
  EXPECT_LT(Best(h), 1e-8);
  int64_t last_gen = std::stoll(h.trials.back().labels.at("cmaes.generation"));
  EXPECT_GT(last_gen, 20);
}

TEST(Cmaes, ReplaysFromTheHistoryAloneAndSkipsFailedTrials) {
  SearchSpace space = Box(2, -1, 1);
  auto s = MakeSuggester("cmaes", {}, space);
  History h = RunTrials(**s, space, Sphere, 30, 4);
  h.trials[25].state = TrialState::kFailed;  // its generation waits for another sample
  h.trials[25].objective.reset();
  auto fresh = MakeSuggester("cmaes", {}, space);
  auto a = (*s)->Suggest(h, 2, 9);
  auto b = (*fresh)->Suggest(h, 2, 9);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->trials[0].params, b->trials[0].params);
  EXPECT_EQ(a->trials[0].labels.at("cmaes.generation"), h.trials[25].labels.at("cmaes.generation"));
}

TEST(LinearAlgebra, CholeskyAndJacobiReconstructTheMatrix) {
  int n = 3;
  Mat a = {4, 2, 0.6, 2, 5, 1, 0.6, 1, 3};
  Mat l;
  ASSERT_TRUE(Cholesky(a, n, &l));
  Vec b = {1, 2, 3};
  ForwardSolve(l, n, &b);
  BackwardSolve(l, n, &b);
  for (int i = 0; i < n; ++i) {
    double s = 0;
    for (int k = 0; k < n; ++k) s += a[i * n + k] * b[k];
    EXPECT_NEAR(s, i + 1.0, 1e-9);
  }
  Vec w;
  Mat v;
  SymmetricEigen(a, n, &w, &v);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      double s = 0;
      for (int k = 0; k < n; ++k) s += v[i * n + k] * w[k] * v[j * n + k];
      EXPECT_NEAR(s, a[i * n + j], 1e-9);
    }
  EXPECT_FALSE(Cholesky({1, 2, 2, 1}, 2, &l));
}

}  // namespace
}  // namespace berth::tune
