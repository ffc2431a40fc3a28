// Hyperband, ASHA, PBT and the early stoppers (medianstop, asha).
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "tune/suggester.h"
#include "tune_testing.h"

namespace berth::tune {
namespace {

using namespace tunetest;  // NOLINT

// A learning curve: the loss at budget b of x is (x-0.3)^2 + 1/b.
double Curve(const Assignment& a, double budget) {
  double x = std::stod(a.at("x")) - 0.3;
  return x * x + 1.0 / budget;
}

SearchSpace OneD() {
  SearchSpace s;
  s.params.push_back(Num("x", -1, 1));
  s.params.push_back(Num("epochs", 1, 100, tune::ParamType::kInt));
  return s;
}

// Runs trials in batches; each ends with Curve at its budget label.
History RunBudgeted(Suggester& s, const SearchSpace& space, const std::string& budget_label,
                    int budget, uint64_t seed, int batch) {
  History h;
  h.goal = Goal::kMinimize;
  h.space = space;
  while (static_cast<int>(h.trials.size()) < budget) {
    auto r = s.Suggest(h, batch, seed);
    EXPECT_TRUE(r.ok()) << r.status().message();
    if (!r.ok() || r->trials.empty()) break;
    for (const auto& sug : r->trials) {
      Trial t;
      t.id = static_cast<int64_t>(h.trials.size());
      t.params = sug.params;
      t.labels = sug.labels;
      t.state = TrialState::kSucceeded;
      t.objective = Curve(sug.params, std::stod(sug.labels.at(budget_label)));
      h.trials.push_back(std::move(t));
    }
  }
  return h;
}

TEST(Hyperband, BracketsRungsAndPromotionsFollowThePaper) {
  SearchSpace space = OneD();
  auto s =
      MakeSuggester("hyperband", {{"r_l", "9"}, {"eta", "3"}, {"resource_name", "epochs"}}, space);
  ASSERT_TRUE(s.ok()) << s.status().message();
  // One full iteration: bracket 0 (9@1, 3@3, 1@9), 1 (5@3, 1@9), 2 (3@9) = 22 trials.
  History h = RunBudgeted(**s, space, "hyperband.budget", 22, 1, 1);
  std::map<std::tuple<std::string, std::string, std::string>, int> count;
  for (const auto& t : h.trials) {
    count[{t.labels.at("hyperband.bracket"), t.labels.at("hyperband.rung"),
           t.labels.at("hyperband.budget")}]++;
    EXPECT_EQ(t.params.at("epochs"), t.labels.at("hyperband.budget"));
    if (t.labels.count("hyperband.parent")) {
      const Trial& parent = h.trials[std::stoll(t.labels.at("hyperband.parent"))];
      EXPECT_EQ(parent.params.at("x"), t.params.at("x"));
      EXPECT_EQ(std::stoi(parent.labels.at("hyperband.rung")) + 1,
                std::stoi(t.labels.at("hyperband.rung")));
    }
  }
  std::map<std::tuple<std::string, std::string, std::string>, int> want = {
      {{"0", "0", "1"}, 9}, {{"0", "1", "3"}, 3}, {{"0", "2", "9"}, 1},
      {{"1", "0", "3"}, 5}, {{"1", "1", "9"}, 1}, {{"2", "0", "9"}, 3}};
  EXPECT_EQ(count, want);
  // The rung-1 trials of bracket 0 are the three best of its rung 0.
  std::vector<double> rung0;
  std::set<std::string> promoted_x;
  for (const auto& t : h.trials) {
    if (t.labels.at("hyperband.bracket") != "0") continue;
    if (t.labels.at("hyperband.rung") == "0") rung0.push_back(*t.objective);
    if (t.labels.at("hyperband.rung") == "1") promoted_x.insert(t.params.at("x"));
  }
  std::sort(rung0.begin(), rung0.end());
  for (const auto& t : h.trials)
    if (t.labels.at("hyperband.bracket") == "0" && t.labels.at("hyperband.rung") == "0")
      EXPECT_EQ(promoted_x.count(t.params.at("x")) > 0, *t.objective <= rung0[2]);
  auto again = MakeSuggester("hyperband", {{"r_l", "9"}, {"resource_name", "epochs"}}, space);
  History h2 = RunBudgeted(**again, space, "hyperband.budget", 22, 1, 1);
  for (size_t i = 0; i < h.trials.size(); ++i) EXPECT_EQ(h.trials[i].params, h2.trials[i].params);
}

TEST(Hyperband, ARungWaitsForItsLastTrialWhileLaterBracketsStart) {
  SearchSpace space = OneD();
  auto s = MakeSuggester("hyperband", {{"r_l", "9"}}, space);
  History h;
  h.space = space;
  h.goal = Goal::kMinimize;
  auto r = (*s)->Suggest(h, 12, 3);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->trials.size(), 12u);  // 9 of bracket 0, then 3 of bracket 1
  EXPECT_EQ(r->trials[9].labels.at("hyperband.bracket"), "1");
  for (int i = 0; i < 12; ++i) {
    Trial t;
    t.id = i;
    t.params = r->trials[i].params;
    t.labels = r->trials[i].labels;
    t.state = i == 4 ? TrialState::kRunning : TrialState::kSucceeded;
    if (i != 4) t.objective = Curve(t.params, 1);
    h.trials.push_back(t);
  }
  auto more = (*s)->Suggest(h, 3, 3);
  ASSERT_TRUE(more.ok());
  for (const auto& t : more->trials) EXPECT_NE(t.labels.at("hyperband.bracket"), "0");
  h.trials[4].state = TrialState::kFailed;  // ends without a value: not promoted
  more = (*s)->Suggest(h, 1, 3);
  ASSERT_EQ(more->trials.size(), 1u);
  EXPECT_EQ(more->trials[0].labels.at("hyperband.rung"), "1");
  EXPECT_NE(more->trials[0].labels.at("hyperband.parent"), "4");
}

TEST(Hyperband, SettingsAreCheckedNamingTheSetting) {
  auto need = MakeSuggester("hyperband", {}, OneD());
  ASSERT_FALSE(need.ok());
  EXPECT_NE(need.status().message().find("algorithm.algorithmSettings.r_l"), std::string::npos);
  auto res = MakeSuggester("hyperband", {{"r_l", "9"}, {"resource_name", "steps"}}, OneD());
  ASSERT_FALSE(res.ok());
  EXPECT_NE(res.status().message().find("resource_name"), std::string::npos);
  EXPECT_FALSE(MakeSuggester("hyperband", {{"r_l", "9"}, {"eta", "1"}}, OneD()).ok());
  EXPECT_FALSE(MakeSuggester("hyperband", {{"r_l", "2"}}, OneD()).ok());
}

TEST(Asha, PromotesTheTopQuarterOfEachRungAndFindsTheMinimum) {
  SearchSpace space = OneD();
  auto s = MakeSuggester(
      "asha", {{"max_length", "16"}, {"mode", "aggressive"}, {"resource_name", "epochs"}}, space);
  ASSERT_TRUE(s.ok()) << s.status().message();
  History h = RunBudgeted(**s, space, "asha.budget", 120, 2, 4);
  std::map<std::string, int> per_budget;
  double best_top = 1e9;
  for (const auto& t : h.trials) {
    per_budget[t.labels.at("asha.budget")]++;
    EXPECT_EQ(t.params.at("epochs"), t.labels.at("asha.budget"));
    if (t.labels.at("asha.rung") == "2") best_top = std::min(best_top, *t.objective);
    if (t.labels.count("asha.parent")) {
      const Trial& p = h.trials[std::stoll(t.labels.at("asha.parent"))];
      EXPECT_EQ(p.params.at("x"), t.params.at("x"));
    }
  }
  EXPECT_GT(per_budget["1"], per_budget["4"]);
  EXPECT_GT(per_budget["4"], per_budget["16"]);
  EXPECT_GE(per_budget["16"], 2);
  // A promotion needs the top quarter of the rung at that moment; trials
  // promoted early may later drop out of it, so a little over a quarter.
  EXPECT_LE(per_budget["4"], per_budget["1"] / 3);
  EXPECT_LT(best_top, 1.0 / 16 + 0.01);
}

TEST(Asha, ModesSetTheBracketsAndSettingsAreChecked) {
  SearchSpace space = OneD();
  auto c = MakeSuggester("asha", {{"max_length", "64"}, {"mode", "conservative"}}, space);
  ASSERT_TRUE(c.ok());
  History h;
  h.space = space;
  auto r = (*c)->Suggest(h, 4, 1);
  std::set<std::string> starts;
  for (const auto& t : r->trials) starts.insert(t.labels.at("asha.budget"));
  EXPECT_EQ(starts, (std::set<std::string>{"1", "4", "16", "64"}));
  auto need = MakeSuggester("asha", {{"mode", "aggressive"}}, space);
  ASSERT_FALSE(need.ok());
  EXPECT_NE(need.status().message().find("algorithm.algorithmSettings.max_length"),
            std::string::npos);
  auto bad = MakeSuggester("asha", {{"max_length", "64"}, {"mode", "wild"}}, space);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("algorithm.algorithmSettings.mode"), std::string::npos);
  EXPECT_FALSE(MakeSuggester("asha", {{"max_length", "64"}, {"divisor", "1"}}, space).ok());
}

Trial Curved(int64_t id, TrialState state, std::vector<double> values) {
  Trial t;
  t.id = id;
  t.state = state;
  for (size_t i = 0; i < values.size(); ++i)
    t.intermediate.push_back({static_cast<int64_t>(i + 1), values[i]});
  if (state == TrialState::kSucceeded) t.objective = values.back();
  return t;
}

TEST(MedianStop, StopsATrialWorseThanTheMedianOnlyAfterStartStepAndEnoughTrials) {
  auto m = MakeEarlyStopper("medianstop", {{"min_trials_required", "3"}, {"start_step", "3"}});
  ASSERT_TRUE(m.ok()) << m.status().message();
  History h;
  h.goal = Goal::kMaximize;  // accuracy
  h.trials.push_back(Curved(0, TrialState::kSucceeded, {0.5, 0.6, 0.7, 0.8}));
  h.trials.push_back(Curved(1, TrialState::kSucceeded, {0.4, 0.5, 0.6, 0.7}));
  h.trials.push_back(Curved(2, TrialState::kRunning, {0.1, 0.1, 0.2}));  // poor
  h.trials.push_back(Curved(3, TrialState::kRunning, {0.6, 0.7, 0.8}));  // good
  EXPECT_FALSE((*m)->ShouldStop(h, 2));                                  // only two finished trials
  h.trials.push_back(Curved(4, TrialState::kSucceeded, {0.45, 0.55, 0.65, 0.75}));
  EXPECT_TRUE((*m)->ShouldStop(h, 2));
  EXPECT_FALSE((*m)->ShouldStop(h, 3));
  h.trials[2].intermediate.resize(2);  // before start_step
  EXPECT_FALSE((*m)->ShouldStop(h, 2));
  EXPECT_FALSE((*m)->ShouldStop(h, 99));
  auto bad = MakeEarlyStopper("medianstop", {{"start_step", "-1"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("earlyStopping.algorithmSettings.start_step"),
            std::string::npos);
  EXPECT_FALSE(MakeEarlyStopper("medianstop", {{"min_trials", "3"}}).ok());
  EXPECT_FALSE(MakeEarlyStopper("patience", {}).ok());
}

TEST(AshaStopper, KeepsTheTopQuarterAtEachRung) {
  auto a = MakeEarlyStopper("asha", {{"min_length", "1"}, {"divisor", "2"}});
  ASSERT_TRUE(a.ok()) << a.status().message();
  History h;
  h.goal = Goal::kMinimize;
  // Rung steps 1, 2, 4: at step 2, the better half of the trials there go on.
  h.trials.push_back(Curved(0, TrialState::kSucceeded, {1.0, 0.9, 0.8, 0.7}));
  h.trials.push_back(Curved(1, TrialState::kEarlyStopped, {2.0, 1.9}));
  h.trials.push_back(Curved(2, TrialState::kRunning, {1.5, 1.6}));  // worst half at step 2
  h.trials.push_back(Curved(3, TrialState::kRunning, {0.5, 0.4}));  // best
  EXPECT_TRUE((*a)->ShouldStop(h, 2));
  EXPECT_FALSE((*a)->ShouldStop(h, 3));
  h.trials[2].intermediate.resize(1);  // rung 0: 1.5 is not in the better half of 1, 2, 1.5, 0.5
  EXPECT_TRUE((*a)->ShouldStop(h, 2));
  h.trials.resize(3);
  h.trials[2].intermediate = {{1, 0.1}};
  EXPECT_FALSE((*a)->ShouldStop(h, 2));
  EXPECT_FALSE(MakeEarlyStopper("asha", {{"divisor", "0"}}).ok());
}

TEST(Pbt, BottomMembersCopyATopMemberAndResumeFromItsCheckpoint) {
  SearchSpace space;
  space.params.push_back(Num("lr", 1e-4, 1, tune::ParamType::kDouble, Distribution::kLogUniform));
  space.params.push_back(Cat("opt", {"sgd", "adam", "lamb"}));
  auto s = MakeSuggester(
      "pbt",
      {{"n_population", "5"}, {"truncation_threshold", "0.2"}, {"resample_probability", "0"}},
      space);
  ASSERT_TRUE(s.ok()) << s.status().message();
  // Loss: |log10(lr) + 2| plus what the checkpoint carried over, less for longer chains.
  History h;
  h.goal = Goal::kMinimize;
  h.space = space;
  for (int round = 0; round < 8; ++round) {
    auto r = (*s)->Suggest(h, 5, 7);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->trials.size(), 5u);  // every member ended, so each gets its next trial
    for (const auto& sug : r->trials) {
      Trial t;
      t.id = static_cast<int64_t>(h.trials.size());
      t.params = sug.params;
      t.labels = sug.labels;
      t.state = TrialState::kSucceeded;
      t.objective = std::fabs(std::log10(std::stod(sug.params.at("lr"))) + 2);
      h.trials.push_back(t);
    }
    auto busy = (*s)->Suggest(h, 5, 7);
    EXPECT_EQ(busy->trials.size(), 5u);
  }
  int exploits = 0;
  for (const auto& t : h.trials) {
    if (t.labels.at("pbt.generation") == "0") {
      EXPECT_EQ(t.labels.count("pbt.parent"), 0u);
      continue;
    }
    const Trial& parent = h.trials[std::stoll(t.labels.at("pbt.parent"))];
    if (parent.labels.at("pbt.member") != t.labels.at("pbt.member")) {
      ++exploits;
      EXPECT_NE(parent.params.at("lr"), t.params.at("lr"));  // perturbed
    } else {
      EXPECT_EQ(parent.params, t.params);
    }
  }
  EXPECT_GE(exploits, 7);  // one per generation at least
  EXPECT_LT(Best(h), 0.1);
  // A running member gets nothing new.
  h.trials.back().state = TrialState::kRunning;
  auto r = (*s)->Suggest(h, 5, 7);
  EXPECT_EQ(r->trials.size(), 4u);
  EXPECT_FALSE(MakeSuggester("pbt", {{"truncation_threshold", "0.9"}}, space).ok());
  EXPECT_FALSE(MakeSuggester("pbt", {{"n_population", "1"}}, space).ok());
}

TEST(Names, EveryAlgorithmIsMadeByItsKatibName) {
  SearchSpace space = OneD();
  space.params[0].step = 0.5;
  Settings need = {};
  for (const auto& n : SuggesterNames()) {
    Settings s;
    if (n == "hyperband") s = {{"r_l", "9"}};
    if (n == "asha") s = {{"max_length", "9"}};
    auto m = MakeSuggester(n, s, space);
    EXPECT_TRUE(m.ok()) << n << ": " << m.status().message();
  }
  for (const auto& n : EarlyStopperNames()) EXPECT_TRUE(MakeEarlyStopper(n, {}).ok()) << n;
}

}  // namespace
}  // namespace berth::tune
