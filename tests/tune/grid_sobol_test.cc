#include <gtest/gtest.h>

#include <set>

#include "tune/sobol.h"
#include "tune_testing.h"

namespace berth::tune {
namespace {

using namespace tunetest;  // NOLINT

TEST(Grid, VisitsEveryCombinationOnceThenSaysExhausted) {
  SearchSpace space;
  space.params.push_back(Num("layers", 1, 3, tune::ParamType::kInt));
  Param lr = Num("lr", 0.1, 0.3);
  lr.step = 0.1;
  space.params.push_back(lr);
  space.params.push_back(Cat("opt", {"sgd", "adam"}));
  auto g = MakeSuggester("grid", {}, space);
  ASSERT_TRUE(g.ok()) << g.status().message();
  History h = RunTrials(
      **g, space, [](const Assignment&) { return 0.0; }, 100, 0, Goal::kMinimize, 5);
  ASSERT_EQ(h.trials.size(), 18u);  // 3 * 3 * 2
  std::set<Assignment> seen;
  for (const auto& t : h.trials) seen.insert(t.params);
  EXPECT_EQ(seen.size(), 18u);
  EXPECT_EQ(h.trials[0].params.at("lr"), "0.1");
  EXPECT_EQ(h.trials[17].params.at("lr"), "0.3");
  auto r = (*g)->Suggest(h, 3, 0);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->trials.empty());
  EXPECT_TRUE(r->exhausted);
  h.trials.resize(16);
  r = (*g)->Suggest(h, 5, 0);
  EXPECT_EQ(r->trials.size(), 2u);
  EXPECT_TRUE(r->exhausted);
}

TEST(Grid, ADoubleWithoutAStepAndSettingsAreRefused) {
  SearchSpace space;
  space.params.push_back(Num("lr", 0.1, 0.3));
  auto g = MakeSuggester("grid", {}, space);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("parameters[lr].feasibleSpace.step"), std::string::npos)
      << g.status().message();
  space.params[0].step = 1e-9;
  g = MakeSuggester("grid", {}, space);
  ASSERT_FALSE(g.ok());
  space.params[0].step = 0.1;
  g = MakeSuggester("grid", {{"order", "random"}}, space);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("algorithm.algorithmSettings.order"), std::string::npos);
}

TEST(Sobol, MatchesTheKnownFirstPointsAndFillsTheCubeEvenly) {
  // The first points of Joe and Kuo's sequence in two dimensions.
  std::vector<std::vector<double>> want = {{0, 0},       {0.5, 0.5},     {0.75, 0.25},
                                           {0.25, 0.75}, {0.375, 0.375}, {0.875, 0.875}};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(SobolPoint(i, 2), want[i]) << i;
  // 2^10 points: every cell of a 32x32 grid over the first two dimensions
  // holds exactly one (they form a (0, 10, 2)-net).
  std::set<std::pair<int, int>> cells;
  for (uint64_t i = 0; i < 1024; ++i) {
    auto p = SobolPoint(i, 8);
    cells.insert({static_cast<int>(p[0] * 32), static_cast<int>(p[1] * 32)});
  }
  EXPECT_EQ(cells.size(), 1024u);
}

TEST(Sobol, SuggestionsContinueTheSequenceAndComeNearTheSphereMinimum) {
  SearchSpace space = Box(3, -1, 1);
  auto s = MakeSuggester("sobol", {}, space);
  ASSERT_TRUE(s.ok());
  History h = RunTrials(**s, space, Sphere, 64, 0, Goal::kMinimize, 4);
  EXPECT_EQ(h.trials[0].params.at("x0"), "0");  // point 1: the centre
  std::set<Assignment> seen;
  for (const auto& t : h.trials) seen.insert(t.params);
  EXPECT_EQ(seen.size(), 64u);
  EXPECT_LT(Best(h), 0.15);
  auto again = (*s)->Suggest(h, 1, 123);  // the seed does not matter
  auto other = (*s)->Suggest(h, 1, 7);
  EXPECT_EQ(again->trials[0].params, other->trials[0].params);
  EXPECT_FALSE(MakeSuggester("sobol", {}, Box(41, 0, 1)).ok());
  EXPECT_FALSE(MakeSuggester("sobol", {{"scramble", "true"}}, space).ok());
}

}  // namespace
}  // namespace berth::tune
