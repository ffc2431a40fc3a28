#include "tune/tpe.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "tune/sample.h"
#include "tune/util.h"

namespace berth::tune {
namespace {

constexpr double kEps = 1e-12;

double NormCdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

// One dimension of the model: a numeric parameter on [0, 1] (ToUnit) or a
// list parameter by index.
struct Dim {
  const Param* p;
  bool numeric;
  int k;  // choices when !numeric
};

// A Parzen mixture over some dimensions. Component c has, per dimension, a
// truncated normal (mu, sigma) on [0, 1] or a categorical distribution.
class Parzen {
 public:
  Parzen(const std::vector<Dim>& dims, const std::vector<std::vector<double>>& obs,
         const std::vector<double>& weights, const TpeOptions& o)
      : dims_(dims) {
    size_t n = obs.size();
    size_t nc = n + 1;  // + prior
    double total = std::accumulate(weights.begin(), weights.end(), 0.0) + o.prior_weight;
    logw_.resize(nc);
    for (size_t c = 0; c < n; ++c) logw_[c] = std::log(weights[c] / total);
    logw_[n] = std::log(o.prior_weight / total);
    size_t d = dims.size();
    mu_.assign(d, std::vector<double>(nc));
    sigma_.assign(d, std::vector<double>(nc));
    lognorm_.assign(d, std::vector<double>(nc));
    inv_sigma_.assign(d, std::vector<double>(nc));
    cat_.assign(d, {});
    for (size_t j = 0; j < d; ++j) {
      if (!dims[j].numeric) {
        int k = dims[j].k;
        cat_[j].assign(nc, std::vector<double>(k));
        for (size_t c = 0; c < n; ++c) {
          double base = o.prior_weight / k;
          int idx = static_cast<int>(obs[c][j]);
          for (int i = 0; i < k; ++i)
            cat_[j][c][i] = std::log((base + (i == idx ? 1.0 : 0.0)) / (o.prior_weight + 1.0));
        }
        for (int i = 0; i < k; ++i) cat_[j][n][i] = -std::log(static_cast<double>(k));
        continue;
      }
      for (size_t c = 0; c < n; ++c) mu_[j][c] = obs[c][j];
      mu_[j][n] = 0.5;
      double minsigma = 1.0 / std::min(100.0, 1.0 + nc);
      if (o.multivariate) {
        double s = 0.2 * std::pow(std::max<double>(n, 1), -1.0 / (d + 4));
        for (size_t c = 0; c < n; ++c) sigma_[j][c] = std::clamp(s, minsigma, 1.0);
      } else {
        // The larger gap to a neighbour (the prior's centre counts as one).
        std::vector<size_t> order(nc);
        std::iota(order.begin(), order.end(), 0);
        std::sort(order.begin(), order.end(),
                  [&](size_t a, size_t b) { return mu_[j][a] < mu_[j][b]; });
        for (size_t r = 0; r < nc; ++r) {
          double m = mu_[j][order[r]];
          double left = r == 0 ? m : m - mu_[j][order[r - 1]];
          double right = r + 1 == nc ? 1.0 - m : mu_[j][order[r + 1]] - m;
          double s = std::max(left, right);
          if (nc >= 2 && r == 0) s = right;  // the ends are not neighbours
          if (nc >= 2 && r + 1 == nc) s = left;
          sigma_[j][order[r]] = std::clamp(s, minsigma, 1.0);
        }
      }
      sigma_[j][n] = 1.0;
      for (size_t c = 0; c < nc; ++c) {
        inv_sigma_[j][c] = 1.0 / sigma_[j][c];
        double m = mu_[j][c], s = sigma_[j][c];
        double hi = (1 - m) / s, lo = (0 - m) / s;
        double mass = (hi > 9 && lo < -9) ? 1.0 : NormCdf(hi) - NormCdf(lo);
        // No -log(sigma): every kernel has the height of a unit normal, so
        // wide kernels (the prior's above all) weigh more (see tpe.h).
        lognorm_[j][c] = -std::log(std::max(mass, kEps)) - 0.5 * std::log(2 * M_PI);
      }
    }
  }

  std::vector<double> Sample(Rng& rng) const {
    std::uniform_real_distribution<double> u(0, 1);
    double r = u(rng), acc = 0;
    size_t c = logw_.size() - 1;
    for (size_t i = 0; i < logw_.size(); ++i) {
      acc += std::exp(logw_[i]);
      if (r < acc) {
        c = i;
        break;
      }
    }
    std::vector<double> x(dims_.size());
    for (size_t j = 0; j < dims_.size(); ++j) {
      if (!dims_[j].numeric) {
        double r2 = u(rng), a2 = 0;
        int k = dims_[j].k, pick = k - 1;
        for (int i = 0; i < k; ++i) {
          a2 += std::exp(cat_[j][c][i]);
          if (r2 < a2) {
            pick = i;
            break;
          }
        }
        x[j] = pick;
        continue;
      }
      std::normal_distribution<double> nd(mu_[j][c], sigma_[j][c]);
      double v = -1;
      for (int t = 0; t < 100 && (v < 0 || v > 1); ++t) v = nd(rng);
      x[j] = std::clamp(v, 0.0, 1.0);
    }
    return x;
  }

  double LogPdf(const std::vector<double>& x) const {
    // Two passes: every component's log density, then exp only for those
    // within 40 nats of the largest (the rest add less than e^-40).
    std::vector<double>& terms = scratch_;
    terms.assign(logw_.begin(), logw_.end());
    for (size_t j = 0; j < dims_.size(); ++j) {
      if (!dims_[j].numeric) {
        int idx = static_cast<int>(x[j]);
        for (size_t c = 0; c < terms.size(); ++c) terms[c] += cat_[j][c][idx];
        continue;
      }
      const double* mu = mu_[j].data();
      const double* inv = inv_sigma_[j].data();
      const double* ln = lognorm_[j].data();
      double xj = x[j];
      for (size_t c = 0; c < terms.size(); ++c) {
        double z = (xj - mu[c]) * inv[c];
        terms[c] += ln[c] - 0.5 * z * z;
      }
    }
    double m = *std::max_element(terms.begin(), terms.end());
    if (!std::isfinite(m)) return m;
    double sum = 0;
    for (double t : terms)
      if (t > m - 40) sum += std::exp(t - m);
    return m + std::log(sum);
  }

 private:
  std::vector<Dim> dims_;
  std::vector<double> logw_;
  std::vector<std::vector<double>> mu_, sigma_, inv_sigma_, lognorm_;  // [dim][component]
  mutable std::vector<double> scratch_;
  std::vector<std::vector<std::vector<double>>> cat_;  // [dim][component][choice], log
};

// Optuna's default weights: the 25 newest trials weigh 1, older ones ramp
// up from 1/n.
std::vector<double> Weights(size_t n) {
  std::vector<double> w(n, 1.0);
  if (n <= 25) return w;
  size_t ramp = n - 25;
  for (size_t i = 0; i < ramp; ++i)
    w[i] = ramp == 1 ? 1.0 / n : 1.0 / n + (1.0 - 1.0 / n) * i / (ramp - 1);
  return w;
}

}  // namespace

Result<std::unique_ptr<Suggester>> Tpe::Make(const Settings& settings, const SearchSpace& space,
                                             bool multivariate) {
  SettingsReader r(settings, multivariate ? "multivariate-tpe" : "tpe");
  TpeOptions o;
  o.multivariate = multivariate;
  ASSIGN_OR_RETURN(int64_t startup, r.Int("n_startup_trials", 10, 0, 100000));
  ASSIGN_OR_RETURN(int64_t cand, r.Int("n_ei_candidates", 24, 1, 10000));
  ASSIGN_OR_RETURN(double gamma, r.Double("gamma", 0.1, 0, 1, /*open_lo=*/true));
  ASSIGN_OR_RETURN(int64_t gmax, r.Int("gamma_max", 25, 1, 100000));
  ASSIGN_OR_RETURN(double prior, r.Double("prior_weight", 1.0, 0, 1e6, /*open_lo=*/true));
  ASSIGN_OR_RETURN(bool liar, r.Bool("constant_liar", false));
  RETURN_IF_ERROR(r.Finish());
  o.n_startup_trials = static_cast<int>(startup);
  o.n_ei_candidates = static_cast<int>(cand);
  o.gamma = gamma;
  o.gamma_max = static_cast<int>(gmax);
  o.prior_weight = prior;
  o.constant_liar = liar;
  return std::unique_ptr<Suggester>(new Tpe(space, o));
}

Result<Suggestions> Tpe::Suggest(const History& history, int count, uint64_t seed) {
  Rng rng = CallRng(seed, history, 0x7e);
  std::vector<Dim> dims;
  for (const Param& p : space_.params)
    dims.push_back({&p, IsNumeric(p), IsNumeric(p) ? 0 : NumChoices(p)});

  // Observations in model coordinates, with losses; running trials join the
  // bad set (with the worst loss) when constant_liar is on.
  std::vector<std::vector<double>> obs;
  std::vector<double> loss;
  double worst = -std::numeric_limits<double>::infinity();
  std::vector<size_t> running;
  auto encode = [&](const Trial& t, std::vector<double>* x) {
    x->resize(dims.size());
    for (size_t j = 0; j < dims.size(); ++j) {
      auto it = t.params.find(dims[j].p->name);
      if (it == t.params.end()) return false;
      if (dims[j].numeric) {
        double u = TextToUnit(*dims[j].p, it->second);
        if (u < 0) return false;
        (*x)[j] = u;
      } else {
        int i = ChoiceIndex(*dims[j].p, it->second);
        if (i < 0) return false;
        (*x)[j] = i;
      }
    }
    return true;
  };
  for (const Done& d : Finished(history)) {
    std::vector<double> x;
    if (!encode(history.trials[d.index], &x)) continue;
    obs.push_back(std::move(x));
    loss.push_back(d.loss);
    worst = std::max(worst, d.loss);
  }
  size_t n_done = obs.size();
  if (opt_.constant_liar && n_done > 0)
    for (const Trial& t : history.trials)
      if (!IsFinished(t.state)) {
        std::vector<double> x;
        if (encode(t, &x)) {
          obs.push_back(std::move(x));
          loss.push_back(worst);
        }
      }

  Suggestions out;
  if (static_cast<int>(n_done) < std::max(opt_.n_startup_trials, 1)) {
    for (int i = 0; i < count; ++i) {
      Suggestion s;
      for (const Param& p : space_.params) s.params[p.name] = SampleValue(p, rng);
      out.trials.push_back(std::move(s));
    }
    return out;
  }

  size_t n = obs.size();
  size_t n_below = std::min<size_t>(static_cast<size_t>(std::ceil(opt_.gamma * n)),
                                    static_cast<size_t>(opt_.gamma_max));
  n_below = std::clamp<size_t>(n_below, 1, n);
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return loss[a] < loss[b]; });
  std::vector<size_t> below(order.begin(), order.begin() + n_below);
  std::vector<size_t> above(order.begin() + n_below, order.end());
  std::sort(below.begin(), below.end());  // by age, for the weights
  std::sort(above.begin(), above.end());

  auto build = [&](const std::vector<size_t>& idx, const std::vector<size_t>& cols) {
    std::vector<Dim> ds;
    for (size_t c : cols) ds.push_back(dims[c]);
    std::vector<std::vector<double>> rows;
    for (size_t i : idx) {
      std::vector<double> r;
      for (size_t c : cols) r.push_back(obs[i][c]);
      rows.push_back(std::move(r));
    }
    return Parzen(ds, rows, Weights(idx.size()), opt_);
  };

  // Groups of dimensions modelled together: all of them, or one each.
  std::vector<std::vector<size_t>> groups;
  if (opt_.multivariate) {
    groups.emplace_back(dims.size());
    std::iota(groups[0].begin(), groups[0].end(), 0);
  } else {
    for (size_t j = 0; j < dims.size(); ++j) groups.push_back({j});
  }
  std::vector<Parzen> l, g;
  for (const auto& cols : groups) {
    l.push_back(build(below, cols));
    g.push_back(build(above, cols));
  }
  for (int i = 0; i < count; ++i) {
    Suggestion s;
    for (size_t gi = 0; gi < groups.size(); ++gi) {
      std::vector<double> best;
      double best_score = -std::numeric_limits<double>::infinity();
      for (int c = 0; c < opt_.n_ei_candidates; ++c) {
        auto x = l[gi].Sample(rng);
        double score = l[gi].LogPdf(x) - g[gi].LogPdf(x);
        if (score > best_score || best.empty()) {
          best_score = score;
          best = std::move(x);
        }
      }
      for (size_t k = 0; k < groups[gi].size(); ++k) {
        const Dim& d = dims[groups[gi][k]];
        s.params[d.p->name] =
            d.numeric ? FormatValue(*d.p, FromUnit(*d.p, best[k])) : d.p->list[best[k]];
      }
    }
    out.trials.push_back(std::move(s));
  }
  return out;
}

}  // namespace berth::tune
