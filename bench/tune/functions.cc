#include "functions.h"

#include <algorithm>
#include <cmath>

namespace berth::tune::bench {
namespace {

Param Num(const std::string& name, double lo, double hi, ParamType type = ParamType::kDouble,
          bool log = false) {
  Param p;
  p.name = name;
  p.type = type;
  p.min = lo;
  p.max = hi;
  p.distribution = log ? Distribution::kLogUniform : Distribution::kUniform;
  return p;
}

SearchSpace Box(int n, double lo, double hi) {
  SearchSpace s;
  for (int i = 0; i < n; ++i) s.params.push_back(Num("x" + std::to_string(i), lo, hi));
  return s;
}

std::vector<double> Xs(const Assignment& a, int n) {
  std::vector<double> x(n);
  for (int i = 0; i < n; ++i) x[i] = std::stod(a.at("x" + std::to_string(i)));
  return x;
}

double Branin(const Assignment& a) {
  auto v = Xs(a, 2);
  double x = v[0], y = v[1];
  double b = 5.1 / (4 * M_PI * M_PI), c = 5 / M_PI, t = 1 / (8 * M_PI);
  return std::pow(y - b * x * x + c * x - 6, 2) + 10 * (1 - t) * std::cos(x) + 10;
}

double Hartmann6(const Assignment& a) {
  static const double A[4][6] = {{10, 3, 17, 3.5, 1.7, 8},
                                 {0.05, 10, 17, 0.1, 8, 14},
                                 {3, 3.5, 1.7, 10, 17, 8},
                                 {17, 8, 0.05, 10, 0.1, 14}};
  static const double P[4][6] = {{1312, 1696, 5569, 124, 8283, 5886},
                                 {2329, 4135, 8307, 3736, 1004, 9991},
                                 {2348, 1451, 3522, 2883, 3047, 6650},
                                 {4047, 8828, 8732, 5743, 1091, 381}};
  static const double alpha[4] = {1.0, 1.2, 3.0, 3.2};
  auto x = Xs(a, 6);
  double s = 0;
  for (int i = 0; i < 4; ++i) {
    double inner = 0;
    for (int j = 0; j < 6; ++j) inner += A[i][j] * std::pow(x[j] - P[i][j] * 1e-4, 2);
    s -= alpha[i] * std::exp(-inner);
  }
  return s;
}

double Rosenbrock(const Assignment& a) {
  auto x = Xs(a, 10);
  double s = 0;
  for (int i = 0; i < 9; ++i)
    s += 100 * std::pow(x[i + 1] - x[i] * x[i], 2) + std::pow(1 - x[i], 2);
  return s;
}

double Ackley(const Assignment& a) {
  auto x = Xs(a, 5);
  double s1 = 0, s2 = 0;
  for (double v : x) {
    s1 += v * v;
    s2 += std::cos(2 * M_PI * v);
  }
  s1 /= x.size();
  s2 /= x.size();
  return -20 * std::exp(-0.2 * std::sqrt(s1)) - std::exp(s2) + 20 + M_E;
}

double StyblinskiTang(const Assignment& a) {
  auto x = Xs(a, 8);
  double s = 0;
  for (double v : x) s += v * v * v * v - 16 * v * v + 5 * v;
  return s / 2;
}

double Mixed(const Assignment& a) {
  const std::string& act = a.at("act");
  double off = act == "relu" ? 1.0 : act == "gelu" ? 0.0 : act == "tanh" ? 0.5 : 2.0;
  double x = std::stod(a.at("x")), y = std::stod(a.at("y")), n = std::stod(a.at("units"));
  return off + std::pow((n - 13) / 5.0, 2) + std::pow(x - 1.5, 2) + 0.5 * std::pow(y + 2, 2) +
         0.3 * std::sin(3 * x);
}

double LrWd(const Assignment& a) {
  double p = std::log10(std::stod(a.at("lr"))) + 2.5;
  double q = std::log10(std::stod(a.at("wd"))) + 4.0;
  double over = std::max(0.0, p - 1.0);
  return 0.1 + 0.05 * p * p + 0.02 * q * q + 0.02 * p * q + 0.3 * over * over;
}

}  // namespace

std::vector<TestFunction> TestFunctions() {
  std::vector<TestFunction> out;
  SearchSpace branin;
  branin.params = {Num("x0", -5, 10), Num("x1", 0, 15)};
  out.push_back({"branin", branin, Branin});
  out.push_back({"hartmann6", Box(6, 0, 1), Hartmann6});
  out.push_back({"rosenbrock10", Box(10, -5, 10), Rosenbrock});
  out.push_back({"ackley5", Box(5, -10, 30), Ackley});  // optimum at 0, off the centre (10)
  out.push_back({"styblinski8", Box(8, -5, 5), StyblinskiTang});
  SearchSpace mixed;
  Param act;
  act.name = "act";
  act.type = ParamType::kCategorical;
  act.list = {"relu", "gelu", "tanh", "sigmoid"};
  mixed.params = {act, Num("units", 1, 32, ParamType::kInt), Num("x", -5, 5), Num("y", -5, 5)};
  out.push_back({"mixed", mixed, Mixed});
  SearchSpace lr;
  lr.params = {Num("lr", 1e-5, 1, ParamType::kDouble, true),
               Num("wd", 1e-6, 0.1, ParamType::kDouble, true)};
  out.push_back({"lr_wd", lr, LrWd});
  return out;
}

}  // namespace berth::tune::bench
