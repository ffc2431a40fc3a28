#include "tune/random_search.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>

namespace berth::tune {
namespace {

Param Range(const std::string& name, ParamType type, double min, double max,
            Distribution d = Distribution::kUniform) {
  Param p;
  p.name = name;
  p.type = type;
  p.min = min;
  p.max = max;
  p.distribution = d;
  return p;
}

Param List(const std::string& name, ParamType type, std::vector<std::string> list) {
  Param p;
  p.name = name;
  p.type = type;
  p.list = std::move(list);
  return p;
}

SearchSpace Space() {
  SearchSpace s;
  s.params.push_back(Range("lr", ParamType::kDouble, 1e-5, 1e-1, Distribution::kLogUniform));
  s.params.push_back(Range("layers", ParamType::kInt, 1, 4));
  s.params.push_back(List("opt", ParamType::kCategorical, {"sgd", "adam"}));
  s.params.push_back(List("bs", ParamType::kDiscrete, {"16", "32", "64"}));
  return s;
}

TEST(RandomSearch, DrawsEveryValueInsideItsSpaceAndIsDeterministicGivenTheSeed) {
  auto sug = MakeSuggester("random", {}, Space());
  ASSERT_TRUE(sug.ok()) << sug.status().message();
  History h;
  h.space = Space();
  auto a = (*sug)->Suggest(h, 400, 7);
  auto b = (*sug)->Suggest(h, 400, 7);
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a->trials.size(), 400u);
  std::set<std::string> layers;
  int small_lr = 0;
  for (size_t i = 0; i < a->trials.size(); ++i) {
    const auto& p = a->trials[i].params;
    EXPECT_EQ(p, b->trials[i].params);
    double lr = std::stod(p.at("lr"));
    EXPECT_GE(lr, 1e-5);
    EXPECT_LE(lr, 1e-1);
    if (lr < 1e-3) ++small_lr;  // half the log range
    layers.insert(p.at("layers"));
    EXPECT_TRUE(p.at("opt") == "sgd" || p.at("opt") == "adam");
    EXPECT_TRUE(p.at("bs") == "16" || p.at("bs") == "32" || p.at("bs") == "64");
  }
  EXPECT_EQ(layers, (std::set<std::string>{"1", "2", "3", "4"}));
  EXPECT_GT(small_lr, 150);  // log-uniform: about 200 of 400, a uniform draw gives ~4
  EXPECT_LT(small_lr, 250);
  auto c = (*sug)->Suggest(h, 1, 8);
  EXPECT_NE(c->trials[0].params, a->trials[0].params);
}

TEST(RandomSearch, BadSpacesAndNamesAreRefusedNamingTheField) {
  SearchSpace bad = Space();
  bad.params[0].min = 0;  // log over a range that includes 0
  auto s = MakeSuggester("random", {}, bad);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("parameters[lr].feasibleSpace.min"), std::string::npos)
      << s.status().message();
  auto u = MakeSuggester("annealing", {}, Space());
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.status().message().find("algorithm.algorithmName"), std::string::npos);
  auto st = MakeSuggester("random", {{"random_state", "1"}}, Space());
  EXPECT_FALSE(st.ok());
}

}  // namespace
}  // namespace berth::tune
