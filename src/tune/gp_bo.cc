#include "tune/gp_bo.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "tune/linalg.h"
#include "tune/sample.h"
#include "tune/util.h"

namespace berth::tune {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

double NormCdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }
double NormPdf(double z) { return std::exp(-0.5 * z * z) / std::sqrt(2 * M_PI); }

struct Gp {
  bool matern = true;
  Vec ls;  // per input
  double noise = 1e-6;
  std::vector<Vec> x;
  Vec y;
  Mat L;
  Vec alpha;
  int n = 0;

  double K(const Vec& a, const Vec& b) const {
    double r2 = 0;
    for (size_t d = 0; d < a.size(); ++d) {
      double t = (a[d] - b[d]) / ls[d];
      r2 += t * t;
    }
    if (!matern) return std::exp(-0.5 * r2);
    double r = std::sqrt(5 * r2);
    return (1 + r + r * r / 3) * std::exp(-r);
  }

  // Factorises the kernel matrix; the log marginal likelihood, -inf on failure.
  double Fit() {
    n = static_cast<int>(x.size());
    Mat k(static_cast<size_t>(n) * n);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j <= i; ++j) k[i * n + j] = k[j * n + i] = K(x[i], x[j]);
    for (int i = 0; i < n; ++i) k[i * n + i] += noise;
    if (!Cholesky(k, n, &L)) return -kInf;
    alpha = y;
    ForwardSolve(L, n, &alpha);
    double quad = 0, logdet = 0;
    for (int i = 0; i < n; ++i) {
      quad += alpha[i] * alpha[i];
      logdet += std::log(L[i * n + i]);
    }
    BackwardSolve(L, n, &alpha);
    return -0.5 * quad - logdet;
  }

  void Predict(const Vec& q, double* mean, double* sd) const {
    Vec ks(n);
    for (int i = 0; i < n; ++i) ks[i] = K(q, x[i]);
    double m = 0;
    for (int i = 0; i < n; ++i) m += ks[i] * alpha[i];
    ForwardSolve(L, n, &ks);
    double v = 1 + noise;
    for (double t : ks) v -= t * t;
    *mean = m;
    *sd = std::sqrt(std::max(v, 1e-12));
  }
};

}  // namespace

Result<std::unique_ptr<Suggester>> GpBo::Make(const Settings& settings, const SearchSpace& space) {
  SettingsReader r(settings, "bayesianoptimization");
  GpOptions o;
  ASSIGN_OR_RETURN(int64_t init, r.Int("n_initial_points", 10, 1, 100000));
  ASSIGN_OR_RETURN(std::string acq, r.Choice("acq_func", "ei", {"ei", "pi", "lcb"}));
  ASSIGN_OR_RETURN(std::string kernel, r.Choice("kernel", "matern", {"matern", "rbf"}));
  ASSIGN_OR_RETURN(double xi, r.Double("xi", 0.01, 0, 1e6));
  ASSIGN_OR_RETURN(double kappa, r.Double("kappa", 1.96, 0, 1e6));
  ASSIGN_OR_RETURN(int64_t cand, r.Int("n_candidates", 2000, 1, 1000000));
  RETURN_IF_ERROR(r.Finish());
  o.n_initial_points = static_cast<int>(init);
  o.acq = acq;
  o.matern = kernel == "matern";
  o.xi = xi;
  o.kappa = kappa;
  o.n_candidates = static_cast<int>(cand);
  return std::unique_ptr<Suggester>(new GpBo(space, o));
}

Result<Suggestions> GpBo::Suggest(const History& history, int count, uint64_t seed) {
  Rng rng = CallRng(seed, history, 0x9b0);
  std::uniform_real_distribution<double> U(0, 1);
  const auto& ps = space_.params;
  // Model coordinates: one per numeric parameter, k per list parameter.
  int dims = 0;
  for (const Param& p : ps) dims += IsNumeric(p) ? 1 : NumChoices(p);
  // A point as per-parameter units (list: the index), and its model input.
  auto input = [&](const Vec& u) {
    Vec in;
    in.reserve(dims);
    for (size_t j = 0; j < ps.size(); ++j) {
      if (IsNumeric(ps[j])) {
        in.push_back(u[j]);
      } else {
        for (int c = 0; c < NumChoices(ps[j]); ++c) in.push_back(c == u[j] ? 1.0 : 0.0);
      }
    }
    return in;
  };
  auto encode = [&](const Trial& t, Vec* u) {
    u->resize(ps.size());
    for (size_t j = 0; j < ps.size(); ++j) {
      auto it = t.params.find(ps[j].name);
      if (it == t.params.end()) return false;
      double v = IsNumeric(ps[j]) ? TextToUnit(ps[j], it->second) : ChoiceIndex(ps[j], it->second);
      if (v < 0) return false;
      (*u)[j] = v;
    }
    return true;
  };
  // Snap a point onto the grid the trial will really run with.
  auto snap = [&](Vec* u) {
    for (size_t j = 0; j < ps.size(); ++j)
      if (IsNumeric(ps[j])) (*u)[j] = ToUnit(ps[j], FromUnit(ps[j], (*u)[j]));
  };
  auto random_point = [&]() {
    Vec u(ps.size());
    for (size_t j = 0; j < ps.size(); ++j)
      u[j] = IsNumeric(ps[j]) ? U(rng)
                              : std::uniform_int_distribution<int>(0, NumChoices(ps[j]) - 1)(rng);
    return u;
  };
  auto emit = [&](const Vec& u) {
    Suggestion s;
    for (size_t j = 0; j < ps.size(); ++j)
      s.params[ps[j].name] = IsNumeric(ps[j]) ? FormatValue(ps[j], FromUnit(ps[j], u[j]))
                                              : ps[j].list[static_cast<int>(u[j])];
    return s;
  };

  std::vector<Vec> xs;
  Vec loss;
  for (const Done& d : Finished(history)) {
    Vec u;
    if (!encode(history.trials[d.index], &u)) continue;
    xs.push_back(std::move(u));
    loss.push_back(d.loss);
  }
  Suggestions out;
  if (static_cast<int>(xs.size()) < opt_.n_initial_points) {
    for (int i = 0; i < count; ++i) {
      Suggestion s;
      for (const Param& p : ps) s.params[p.name] = SampleValue(p, rng);
      out.trials.push_back(std::move(s));
    }
    return out;
  }
  if (xs.size() > 300) {  // the 150 best and the 150 newest
    std::vector<size_t> idx(xs.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return loss[a] < loss[b]; });
    std::vector<bool> keep(xs.size(), false);
    for (size_t i = 0; i < 150; ++i) keep[idx[i]] = true;
    for (size_t i = xs.size() - 150; i < xs.size(); ++i) keep[i] = true;
    std::vector<Vec> x2;
    Vec l2;
    for (size_t i = 0; i < xs.size(); ++i)
      if (keep[i]) {
        x2.push_back(xs[i]);
        l2.push_back(loss[i]);
      }
    xs = std::move(x2);
    loss = std::move(l2);
  }
  double mean = std::accumulate(loss.begin(), loss.end(), 0.0) / loss.size();
  double var = 0;
  for (double l : loss) var += (l - mean) * (l - mean);
  double sd = std::sqrt(var / loss.size());
  if (!(sd > 0)) sd = 1;

  Gp gp;
  gp.matern = opt_.matern;
  for (const Vec& u : xs) gp.x.push_back(input(u));
  for (double l : loss) gp.y.push_back((l - mean) / sd);
  // Hyperparameters: an isotropic grid, then each length scale halved or doubled.
  double best_ll = -kInf;
  Vec best_ls(dims, 0.3);
  double best_noise = 1e-6;
  for (double l : {0.05, 0.1, 0.2, 0.4, 0.8, 1.6})
    for (double nz : {1e-6, 1e-3, 1e-1}) {
      gp.ls.assign(dims, l);
      gp.noise = nz;
      double ll = gp.Fit();
      if (ll > best_ll) {
        best_ll = ll;
        best_ls = gp.ls;
        best_noise = nz;
      }
    }
  gp.noise = best_noise;
  for (int pass = 0; pass < 2; ++pass)
    for (int d = 0; d < dims; ++d)
      for (double f : {0.5, 2.0}) {
        gp.ls = best_ls;
        gp.ls[d] = std::clamp(gp.ls[d] * f, 0.01, 20.0);
        double ll = gp.Fit();
        if (ll > best_ll) {
          best_ll = ll;
          best_ls = gp.ls;
        }
      }
  gp.ls = best_ls;

  // Pending points: running trials, valued at the model's mean.
  std::vector<Vec> pending;
  for (const Trial& t : history.trials)
    if (!IsFinished(t.state)) {
      Vec u;
      if (encode(t, &u)) pending.push_back(u);
    }
  double ybest = *std::min_element(gp.y.begin(), gp.y.end());
  std::vector<size_t> top(xs.size());
  std::iota(top.begin(), top.end(), 0);
  std::stable_sort(top.begin(), top.end(), [&](size_t a, size_t b) { return loss[a] < loss[b]; });
  top.resize(std::min<size_t>(5, top.size()));

  for (int i = 0; i < count; ++i) {
    // Refit with the pending points added (believer values).
    Gp model = gp;
    model.Fit();
    for (const Vec& u : pending) {
      Vec in = input(u);
      double m, s;
      model.Predict(in, &m, &s);
      model.x.push_back(in);
      model.y.push_back(m);
    }
    if (!pending.empty()) model.Fit();
    auto acq = [&](const Vec& u) {
      double m, s;
      model.Predict(input(u), &m, &s);
      if (opt_.acq == "lcb") return -(m - opt_.kappa * s);
      double z = (ybest - m - opt_.xi) / s;
      if (opt_.acq == "pi") return NormCdf(z);
      return (ybest - m - opt_.xi) * NormCdf(z) + s * NormPdf(z);
    };
    auto perturb = [&](const Vec& c, double scale) {
      Vec u = c;
      std::normal_distribution<double> nd(0, scale);
      for (size_t j = 0; j < ps.size(); ++j) {
        if (IsNumeric(ps[j])) {
          u[j] = std::clamp(u[j] + nd(rng), 0.0, 1.0);
        } else if (U(rng) < 0.2) {
          u[j] = std::uniform_int_distribution<int>(0, NumChoices(ps[j]) - 1)(rng);
        }
      }
      return u;
    };
    Vec best;
    double best_a = -kInf;
    auto consider = [&](Vec u) {
      snap(&u);
      double a = acq(u);
      if (a > best_a || best.empty()) {
        best_a = a;
        best = std::move(u);
      }
    };
    int n_local = opt_.n_candidates / 4;
    for (int c = 0; c < opt_.n_candidates - n_local; ++c) consider(random_point());
    for (int c = 0; c < n_local; ++c) consider(perturb(xs[top[c % top.size()]], 0.05));
    for (double scale : {0.02, 0.005}) {
      Vec centre = best;
      for (int c = 0; c < 50; ++c) consider(perturb(centre, scale));
    }
    out.trials.push_back(emit(best));
    pending.push_back(best);
  }
  return out;
}

}  // namespace berth::tune
